"""Raw cues made usable: text cleaned, times checked, sorted, overlaps resolved.

Every cue read is kept, with ``reason`` ``""`` when usable, else the first that applies
(``gaia.schemas.cues.CUE_REASONS``): the parser's own (``bad_cue``, ``bad_time``), then
``bad_time`` (missing, not finite, negative, or an end not after the start), ``empty_text``,
``long_text``. Usable cues are put in time order (sidecars are often unordered after edits;
order alone is no fault). Of two overlapping usable cues the later-starting one is dropped
(``overlapping_cue``): an action window opens at a cue's end and closes at the next cue's
start, so overlapping cues would give windows that contradict each other, and the earlier
one was heard first. Cues that only touch (one ends as the next starts) do not overlap.
"""

from __future__ import annotations

import math

from gaia.pipeline.instructions.markup import clean_text
from gaia.pipeline.instructions.raw import RawCue, SidecarError
from gaia.schemas.cues import MAX_CUES, Cue
from gaia.schemas.instruction import MAX_TEXT_CHARS

EPS = 1e-6


def _time_ok(start: float | None, end: float | None) -> bool:
    return (start is not None and end is not None and math.isfinite(start)
            and math.isfinite(end) and 0 <= start < end)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _checked(raw: RawCue) -> Cue:
    text = clean_text(raw.text)
    reason = raw.reason
    if not reason and not _time_ok(raw.start_s, raw.end_s):
        reason = "bad_time"
    if not reason and not text:
        reason = "empty_text"
    if not reason and len(text) > MAX_TEXT_CHARS:
        reason = "long_text"
    # Stored bounded: a dropped cue's text is for a person reading the table.
    return Cue(_finite(raw.start_s), _finite(raw.end_s), text[:MAX_TEXT_CHARS], reason)


def tidy_cues(raw: list[RawCue]) -> tuple[Cue, ...]:
    """Every cue of ``raw``, checked, usable ones in time order first (module docstring);
    ``SidecarError("sidecar_too_many_cues")`` past ``MAX_CUES``."""
    if len(raw) > MAX_CUES:
        raise SidecarError("sidecar_too_many_cues", f"{len(raw)} cues, more than {MAX_CUES}: "
                           "split the video or keep only the instructions")
    cues = [_checked(r) for r in raw]
    usable = sorted((i for i, cue in enumerate(cues) if cue.usable),
                    key=lambda i: (cues[i].start_s, cues[i].end_s, i))
    kept: list[Cue] = []
    overlapping: list[Cue] = []
    for i in usable:
        cue = cues[i]
        if kept and cue.start_s < kept[-1].end_s - EPS:
            overlapping.append(Cue(cue.start_s, cue.end_s, cue.text, "overlapping_cue"))
        else:
            kept.append(cue)
    dropped = [cue for cue in cues if not cue.usable]
    return tuple(kept + overlapping + dropped)
