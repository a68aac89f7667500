"""The face-size filter: drop frames whose face is too small to crop for training.

GAIA trains at 256 x 256 on a crop about twice the face: a face of ``min_face_px`` source
pixels is enlarged 256 / (1.8 * min_face_px) times, and detail it never had is blur the model
learns.
"""

from __future__ import annotations

from dataclasses import dataclass

from gaia.filters.base import Measures, Verdict, column
from gaia.filters.spec import FilterSpec, Grid, Slider, ThresholdKey


@dataclass(frozen=True)
class FaceSizeThresholds:
    """min_face_px: see the module docstring."""

    enabled: bool = True
    min_face_px: float = 64.0

    def __post_init__(self) -> None:
        if self.min_face_px < 0:
            raise ValueError("face_size.min_face_px must not be negative")


def face_size_filter(measures: Measures, thresholds: FaceSizeThresholds) -> Verdict:
    values = column(measures, "face_px")
    fails = values < thresholds.min_face_px  # NaN (no face, no measure) never fails here
    return Verdict.from_mask(~fails | (not thresholds.enabled), "small_face")


SPEC = FilterSpec(
    name="face_size", thresholds=FaceSizeThresholds, run=face_size_filter,
    reasons=("small_face",), title="face size",
    rule="face narrower than `min_face_px` source pixels",
    keys=(ThresholdKey("min_face_px", "face_px", "<", "face width (source px)",
                       Slider(0.0, 600.0, 1.0), Grid(0.1)),),
)
