"""Whose clip it is: the run-wide identity of a clip's main face, for the train/val split
(paper, section 4: no person in both splits).

A clip can show more than one person over its frames (a track lost and found again). It goes
by the person seen in most of its frames (metrics' ``person``), mapped to the run-wide identity
of ``identities.parquet``. Where there is no such identity (a run measured before embeddings
were stored, or a clip with no embedded face) the caller falls back to the source folder.
"""

from __future__ import annotations

import numpy as np

from gaia.filters.segments import Segment
from gaia.schemas.identities import identity_name


def main_person(persons: np.ndarray, segment: Segment) -> int | None:
    """The person id seen in most of the segment's frames (the lower id on a tie); None when
    no frame of it has one."""
    inside = np.asarray(persons[segment.start:segment.stop])
    inside = inside[np.isfinite(inside) & (inside >= 0)].astype(np.int64)
    if not len(inside):
        return None
    return int(np.argmax(np.bincount(inside)))


def clip_identity(identities: dict[tuple[str, int], int] | None, video_id: str,
                  persons: np.ndarray | None, segment: Segment) -> str | None:
    """The shards' ``identity`` of the clip (``person-0000042``), or None (fall back)."""
    if identities is None or persons is None:
        return None
    person = main_person(persons, segment)
    if person is None or (video_id, person) not in identities:
        return None
    return identity_name(identities[(video_id, person)])
