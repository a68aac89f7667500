"""The face-count rule (paper, appendix A.1): keep frames with exactly one face in view.

A second face means the speaker may not be the one we crop; no face means nothing to learn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaia.filters.base import KEPT, Measures, Verdict, code, column
from gaia.filters.spec import FilterSpec, ThresholdKey


@dataclass(frozen=True)
class FaceCountThresholds:
    """max_faces: frames with more faces than this are dropped (``multiple_faces``); frames
    with none are always dropped (``no_face``)."""

    enabled: bool = True
    max_faces: int = 1

    def __post_init__(self) -> None:
        if self.max_faces < 1:
            raise ValueError("face_count.max_faces must be at least 1")


def face_count_filter(measures: Measures, thresholds: FaceCountThresholds) -> Verdict:
    faces = np.nan_to_num(column(measures, "num_faces"), nan=0.0)
    if not thresholds.enabled:
        return Verdict.keep_all(len(faces))
    reasons = np.full(len(faces), KEPT, np.uint8)
    reasons[faces > thresholds.max_faces] = code("multiple_faces")
    reasons[faces < 1] = code("no_face")
    return Verdict(reasons)


SPEC = FilterSpec(
    name="face_count", thresholds=FaceCountThresholds, run=face_count_filter,
    reasons=("no_face", "multiple_faces"), fused="face_count", title="face count",
    rule="no face, or more than `max_faces`",
    keys=(ThresholdKey("max_faces", "num_faces", ">", "faces in view", slider=None,
                       exact="int8"),),
)
