"""The mask / hand lower-face occlusion filter (paper, appendix A.1).

Two measures (docs/measures.md): ``occlusion``, the share of the lower face whose colour is not
the face's skin (a mask drives it toward 1; a hand the colour of the face does not), and
``hand_cover``, the share of the lower face a detected hand covers. Either over its limit makes
the frame ``occluded``.
"""

from __future__ import annotations

from dataclasses import dataclass

from gaia.filters.base import Measures, Verdict, column
from gaia.filters.spec import FilterSpec, Grid, Slider, ThresholdKey


@dataclass(frozen=True)
class OcclusionThresholds:
    """max_occlusion: largest share of non-skin lower face kept.
    max_hand_cover: a frame whose lower face is covered by a hand over this share is dropped
        (0.25: fingertips over one corner of the mouth read 0.26-0.5 on real video, a hand
        resting on the cheek below it).
    """

    enabled: bool = True
    max_occlusion: float = 0.35
    max_hand_cover: float = 0.25

    def __post_init__(self) -> None:
        if not 0 < self.max_occlusion <= 1:
            raise ValueError("occlusion.max_occlusion must be in (0, 1]")
        if not 0 <= self.max_hand_cover <= 1:
            raise ValueError("occlusion.max_hand_cover must be in [0, 1]")


def occlusion_filter(measures: Measures, thresholds: OcclusionThresholds) -> Verdict:
    keep = ~(column(measures, "occlusion") > thresholds.max_occlusion)
    keep &= ~(column(measures, "hand_cover") >= thresholds.max_hand_cover)
    return Verdict.from_mask(keep | (not thresholds.enabled), "occluded")


SPEC = FilterSpec(
    name="occlusion", thresholds=OcclusionThresholds, run=occlusion_filter,
    reasons=("occluded",), title="occlusion",
    rule="lower-face occlusion > `max_occlusion`, or a hand over >= `max_hand_cover` of it",
    keys=(ThresholdKey("max_occlusion", "occlusion", ">", "lower-face occlusion (share)",
                       Slider(0.01, 1.0, 0.01), Grid(1e-4), plot=(0.0, 1.0)),
          ThresholdKey("max_hand_cover", "hand_cover", ">=", "lower face under a hand (share)",
                       Slider(0.0, 1.0, 0.01), Grid(1e-4), plot=(0.0, 1.0))),
)
