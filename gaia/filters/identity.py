"""The identity filter: a change of person inside a run splits it.

``identity_distance`` is the face embedding's distance to the previous embedding of the same
track (dlib's ResNet: under 0.6 is the same person); a larger one drops that frame.
"""

from __future__ import annotations

from dataclasses import dataclass

from gaia.filters.base import Measures, Verdict, column
from gaia.filters.spec import FilterSpec, Grid, Slider, ThresholdKey


@dataclass(frozen=True)
class IdentityThresholds:
    """max_distance: see the module docstring."""

    enabled: bool = True
    max_distance: float = 0.6

    def __post_init__(self) -> None:
        if self.max_distance < 0:
            raise ValueError("identity.max_distance must not be negative")


def identity_filter(measures: Measures, thresholds: IdentityThresholds) -> Verdict:
    values = column(measures, "identity_distance")
    fails = values > thresholds.max_distance  # NaN (no face, no measure) never fails here
    return Verdict.from_mask(~fails | (not thresholds.enabled), "identity_change")


SPEC = FilterSpec(
    name="identity", thresholds=IdentityThresholds, run=identity_filter,
    reasons=("identity_change",), title="identity",
    rule="embedding distance to the track's previous one > `max_distance`",
    keys=(ThresholdKey("max_distance", "identity_distance", ">", "identity distance",
                       Slider(0.05, 1.0, 0.01), Grid(1e-4), plot=(0.0, 1.0)),),
)
