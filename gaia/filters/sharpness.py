"""The sharpness filter: drop frames whose face is out of focus or motion-blurred.

``sharpness`` (``pipeline.face.sharpness``) is the Laplacian's spread over the contrast of the
face crop at a fixed size; blurred faces teach the VAE blurred appearance (paper, section 4).
"""

from __future__ import annotations

from dataclasses import dataclass

from gaia.filters.base import Measures, Verdict, column
from gaia.filters.spec import FilterSpec, Grid, Slider, ThresholdKey


@dataclass(frozen=True)
class SharpnessThresholds:
    """min_sharpness: see the module docstring."""

    enabled: bool = True
    min_sharpness: float = 0.12

    def __post_init__(self) -> None:
        if self.min_sharpness < 0:
            raise ValueError("sharpness.min_sharpness must not be negative")


def sharpness_filter(measures: Measures, thresholds: SharpnessThresholds) -> Verdict:
    values = column(measures, "sharpness")
    fails = values < thresholds.min_sharpness  # NaN (no face, no measure) never fails here
    return Verdict.from_mask(~fails | (not thresholds.enabled), "blurry")


SPEC = FilterSpec(
    name="sharpness", thresholds=SharpnessThresholds, run=sharpness_filter, reasons=("blurry",),
    title="sharpness", rule="face sharpness < `min_sharpness`",
    keys=(ThresholdKey("min_sharpness", "sharpness", "<", "face sharpness",
                       Slider(0.0, 1.0, 0.01), Grid(1e-4)),),
)
