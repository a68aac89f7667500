"""The jitter filter (paper, appendix A.1): drop frames where the face jumps between frames.

Camera shake, cuts and tracking failures show as large landmark or face-box motion relative to
the face's size. The first frame of a face track has no previous frame (NaN) and is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from gaia.filters.base import Measures, Verdict, column
from gaia.filters.spec import FilterSpec, Grid, Slider, ThresholdKey


@dataclass(frozen=True)
class JitterThresholds:
    """max_landmarks: largest mean landmark step / inter-ocular distance kept.
    max_box: largest face-box centre shift or size change / box size kept."""

    enabled: bool = True
    max_landmarks: float = 0.06
    max_box: float = 0.08

    def __post_init__(self) -> None:
        if self.max_landmarks <= 0 or self.max_box <= 0:
            raise ValueError("jitter.max_landmarks and jitter.max_box must be positive")


def jitter_filter(measures: Measures, thresholds: JitterThresholds) -> Verdict:
    landmarks = column(measures, "jitter_landmarks")
    box = column(measures, "jitter_box")
    shaky = (landmarks > thresholds.max_landmarks) | (box > thresholds.max_box)
    return Verdict.from_mask(~shaky | (not thresholds.enabled), "jitter")


SPEC = FilterSpec(
    name="jitter", thresholds=JitterThresholds, run=jitter_filter, reasons=("jitter",),
    title="jitter", rule="landmark or box jitter over its maximum",
    keys=(ThresholdKey("max_landmarks", "jitter_landmarks", ">",
                       "landmark jitter (per inter-ocular)", Slider(0.005, 0.3, 0.005),
                       Grid(1e-4), plot=(0.0, 0.3)),
          ThresholdKey("max_box", "jitter_box", ">", "face-box jitter (per box size)",
                       Slider(0.005, 0.3, 0.005), Grid(1e-4), plot=(0.0, 0.3))),
)
