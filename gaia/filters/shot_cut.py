"""The shot-cut filter: a clip never spans a cut (paper, appendix A.1: continuous runs).

``cut_score`` (``pipeline.media.shot_cut``) is the colour-histogram change from the previous
frame; the frame at a cut is dropped, so the run of passing frames ends there.
"""

from __future__ import annotations

from dataclasses import dataclass

from gaia.filters.base import Measures, Verdict, column
from gaia.filters.spec import FilterSpec, Grid, Slider, ThresholdKey

# The cut_score at which a frame starts a new shot: the filter's default threshold, and where
# measuring's tracker rescans for faces (``pipeline.measure.config``, ``pipeline.media.shot_cut``).
CUT_SCORE = 0.5


@dataclass(frozen=True)
class ShotCutThresholds:
    """max_cut_score: see the module docstring."""

    enabled: bool = True
    max_cut_score: float = CUT_SCORE

    def __post_init__(self) -> None:
        if self.max_cut_score < 0:
            raise ValueError("shot_cut.max_cut_score must not be negative")


def shot_cut_filter(measures: Measures, thresholds: ShotCutThresholds) -> Verdict:
    values = column(measures, "cut_score")
    fails = values >= thresholds.max_cut_score  # NaN (no face, no measure) never fails here
    return Verdict.from_mask(~fails | (not thresholds.enabled), "shot_cut")


SPEC = FilterSpec(
    name="shot_cut", thresholds=ShotCutThresholds, run=shot_cut_filter, reasons=("shot_cut",),
    title="shot cut", rule="`cut_score` >= `max_cut_score` (a clip never spans a cut)",
    keys=(ThresholdKey("max_cut_score", "cut_score", ">=", "shot-cut score",
                       Slider(0.05, 1.0, 0.01), Grid(1e-4), plot=(0.0, 1.0)),),
)
