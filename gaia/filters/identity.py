"""The identity filter: a change of person inside a run splits it.

``identity_distance`` is the face embedding's distance to the previous embedding of the same
track (dlib's ResNet: under 0.6 is the same person); a larger one drops that frame.
"""

from __future__ import annotations

from dataclasses import dataclass

from gaia.filters.base import Measures, Verdict, column


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
