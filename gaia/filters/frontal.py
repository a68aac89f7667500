"""The frontal-angle filter (paper, appendix A.1): keep faces that look at the camera.

The paper sums the angles from the nose to the two outer eye corners: 180 for a frontal face.
Read against the image's horizontal (``reading: image``, the paper's literal words) the sum
also moves by twice the roll, so an upright face tilted 10 degrees deviates 20 while yaw and
roll of opposite signs cancel. The default reads it against the eye line (``frontal_angle_deg``:
roll does not count) and checks the head's yaw by PnP as well (``max_yaw_deg``), so a turned
face fails even where the landmark fit flattens the turn. Frames further than
``max_deviation_deg`` from 180 are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaia.filters.base import Measures, Verdict, column
from gaia.filters.spec import FilterSpec, Grid, Slider, ThresholdKey

READINGS = {"eye_line": "frontal_angle_deg", "image": "frontal_angle_image_deg"}


@dataclass(frozen=True)
class FrontalThresholds:
    """max_deviation_deg: largest |frontal angle - 180| kept, in degrees.
    reading: ``eye_line`` (roll does not count) or ``image`` (the paper's literal reading).
    max_yaw_deg: largest |PnP yaw| kept (180 turns the check off)."""

    enabled: bool = True
    max_deviation_deg: float = 20.0
    reading: str = "eye_line"
    max_yaw_deg: float = 30.0

    def __post_init__(self) -> None:
        if not 0 < self.max_deviation_deg <= 180:
            raise ValueError("frontal.max_deviation_deg must be in (0, 180]")
        if self.reading not in READINGS:
            raise ValueError(f"frontal.reading must be one of {sorted(READINGS)}")
        if not 0 < self.max_yaw_deg <= 180:
            raise ValueError("frontal.max_yaw_deg must be in (0, 180]")


def frontal_filter(measures: Measures, thresholds: FrontalThresholds) -> Verdict:
    deviation = np.abs(column(measures, READINGS[thresholds.reading]) - 180.0)
    turned = np.abs(column(measures, "yaw_deg")) > thresholds.max_yaw_deg
    keep = ~(deviation > thresholds.max_deviation_deg) & ~turned  # NaN: the face rule's call
    return Verdict.from_mask(keep | (not thresholds.enabled), "not_frontal")


SPEC = FilterSpec(
    name="frontal", thresholds=FrontalThresholds, run=frontal_filter, reasons=("not_frontal",),
    title="frontal",
    rule="|frontal angle - 180| > `max_deviation_deg` (`reading`: `eye_line` or `image`), "
         "or |PnP yaw| > `max_yaw_deg`",
    keys=(ThresholdKey("max_deviation_deg", READINGS["eye_line"], ">",
                       "frontal angle: |sum - 180| (deg)", Slider(1.0, 90.0, 0.5), Grid(0.01),
                       transform="abs180", columns=tuple(READINGS.items()), chosen_by="reading",
                       plot=(0.0, 90.0)),
          ThresholdKey("max_yaw_deg", "yaw_deg", ">", "|yaw| (deg)", Slider(1.0, 90.0, 0.5),
                       Grid(0.01), transform="abs", plot=(0.0, 90.0))),
)
