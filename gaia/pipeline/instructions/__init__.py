"""Timed-text sidecars read at measure time (paper, appendix E: instructions spoken off-screen,
matched with the actions that follow them by timestamps).

A video ``X.mp4`` may have ``X.cues.json``, ``X.srt`` or ``X.vtt`` beside it
(``sidecar``: found and read under a size cap; ``decode``: its text encoding; ``srt``,
``vtt``, ``cues_json``: one parser each; ``markup``: tags, override blocks and entities
stripped; ``tidy``: every cue checked, sorted and given a reason when unusable). Sidecars are
untrusted input: nothing in them stops a video from being measured. The cues go into the
video's status record (``gaia.schemas.cues``); ``backfill`` adds them to videos measured before
gaia read sidecars.
"""
