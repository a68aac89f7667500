"""The lip-sync filter (paper, appendix A.1: "lip movements and speech are not aligned"), in
SyncNet's own units.

With SyncNet weights given to measure (``--syncnet-weights``, the published ``syncnet_v2``
layout: ``pipeline.speech.syncnet``), every frame carries SyncNet's offset and confidence over
the window around it (``syncnet_offset_frames``, ``syncnet_lag_frames`` = its size,
``syncnet_confidence``). This filter keeps frames whose confidence reaches
``min_syncnet_confidence`` and whose lag is within ``max_syncnet_lag_frames``: LatentSync's
curation rule (confidence >= 3, |offset| <= 6 frames at 25 fps), the defaults; extract then
shifts the clip's audio by SyncNet's offset. Without weights the columns are null and nothing is
dropped here: the weightless rule of the silence filter (``visible_speaker``) stands alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from gaia.filters.base import Measures, Verdict, column
from gaia.filters.spec import FilterSpec, Grid, Slider, ThresholdKey


@dataclass(frozen=True)
class LipSyncThresholds:
    """min_syncnet_confidence: least SyncNet confidence kept (LatentSync: 3).
    max_syncnet_lag_frames: largest SyncNet offset kept, frames at 25 fps (LatentSync: 6)."""

    enabled: bool = True
    min_syncnet_confidence: float = 3.0
    max_syncnet_lag_frames: float = 6.0

    def __post_init__(self) -> None:
        if not self.max_syncnet_lag_frames >= 0:
            raise ValueError("lip_sync.max_syncnet_lag_frames must be zero or more")


def lip_sync_filter(measures: Measures, thresholds: LipSyncThresholds) -> Verdict:
    confidence = column(measures, "syncnet_confidence")
    lag = column(measures, "syncnet_lag_frames")
    # Null (no SyncNet measure) compares False both ways: kept.
    fails = (confidence < thresholds.min_syncnet_confidence) | (
        lag > thresholds.max_syncnet_lag_frames)
    return Verdict.from_mask(~fails | (not thresholds.enabled), "out_of_sync")


SPEC = FilterSpec(
    name="lip_sync", thresholds=LipSyncThresholds, run=lip_sync_filter,
    reasons=("out_of_sync",), title="lip sync (SyncNet)",
    rule="SyncNet confidence under `min_syncnet_confidence` or its offset past "
         "`max_syncnet_lag_frames` (only where measure had SyncNet weights)",
    keys=(ThresholdKey("min_syncnet_confidence", "syncnet_confidence", "<",
                       "SyncNet confidence", Slider(0.0, 12.0, 0.1), Grid(1e-3, low=-5.0)),
          ThresholdKey("max_syncnet_lag_frames", "syncnet_lag_frames", ">",
                       "SyncNet offset (frames, either way)", Slider(0.0, 15.0, 1.0),
                       Grid(0.5))),
)
