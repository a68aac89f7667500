"""The frontal-angle filter (paper, appendix A.1): keep faces that look at the camera.

``frontal_angle_deg`` is 180 for a frontal, upright face and leaves it with yaw and roll
(DESIGN.md section 4); frames further than ``max_deviation_deg`` from 180 are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaia.filters.base import Measures, Verdict, column


@dataclass(frozen=True)
class FrontalThresholds:
    """max_deviation_deg: largest |frontal angle - 180| kept, in degrees."""

    enabled: bool = True
    max_deviation_deg: float = 20.0

    def __post_init__(self) -> None:
        if not 0 < self.max_deviation_deg <= 180:
            raise ValueError("frontal.max_deviation_deg must be in (0, 180]")


def frontal_filter(measures: Measures, thresholds: FrontalThresholds) -> Verdict:
    deviation = np.abs(column(measures, "frontal_angle_deg") - 180.0)
    keep = ~(deviation > thresholds.max_deviation_deg)  # NaN (no face) is the face rule's call
    return Verdict.from_mask(keep | (not thresholds.enabled), "not_frontal")
