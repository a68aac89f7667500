"""Cues for videos measured before gaia read timed-text sidecars.

Reading a sidecar costs nothing beside measuring, so a run measured before this existed does
not need measuring again for the ``instruct`` preset: ``gaia curate measure`` on the same
inputs and ``--out`` skips the measured videos as always, and this adds the sidecar fields
(``gaia.schemas.cues``) to their status records, which ``videos.parquet`` is rebuilt from.
"""

from __future__ import annotations

from collections.abc import Callable

from gaia.pipeline.instructions.sidecar import sidecar_columns
from gaia.pipeline.run_dir import RunDir


def add_missing_cues(run: RunDir, records: dict[str, dict], uris: dict[str, str],
                     log: Callable[[str], None] = lambda _: None) -> int:
    """Read the sidecars of the finished ``records`` (by video id) that have no cue fields,
    from their input in ``uris`` (by video id), and write their records again; returns how
    many. Records of videos not among the inputs are left as they are."""
    added = 0
    for video_id, record in sorted(records.items()):
        if record.get("timed_text_status") is not None or video_id not in uris:
            continue
        run.write_status({**record, **sidecar_columns(uris[video_id])})
        added += 1
    if added:
        log(f"read the timed-text sidecars of {added} video(s) measured before gaia read them "
            "(not measured again)")
    return added
