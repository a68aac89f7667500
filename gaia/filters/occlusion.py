"""The mask / lower-face occlusion filter (paper, appendix A.1).

``occlusion`` is the share of the lower face whose colour is not the face's skin
(docs/measures.md); a mask or a hand over the mouth drives it toward 1.
"""

from __future__ import annotations

from dataclasses import dataclass

from gaia.filters.base import Measures, Verdict, column
from gaia.filters.spec import FilterSpec, Grid, Slider, ThresholdKey


@dataclass(frozen=True)
class OcclusionThresholds:
    """max_occlusion: largest share of non-skin lower face kept."""

    enabled: bool = True
    max_occlusion: float = 0.35

    def __post_init__(self) -> None:
        if not 0 < self.max_occlusion <= 1:
            raise ValueError("occlusion.max_occlusion must be in (0, 1]")


def occlusion_filter(measures: Measures, thresholds: OcclusionThresholds) -> Verdict:
    keep = ~(column(measures, "occlusion") > thresholds.max_occlusion)
    return Verdict.from_mask(keep | (not thresholds.enabled), "occluded")


SPEC = FilterSpec(
    name="occlusion", thresholds=OcclusionThresholds, run=occlusion_filter,
    reasons=("occluded",), title="occlusion", rule="lower-face occlusion > `max_occlusion`",
    keys=(ThresholdKey("max_occlusion", "occlusion", ">", "lower-face occlusion (share)",
                       Slider(0.01, 1.0, 0.01), Grid(1e-4), plot=(0.0, 1.0)),),
)
