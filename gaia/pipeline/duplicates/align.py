"""Two videos' stored series, aligned on a time offset: which frames meet, how far apart.

A candidate's offset comes from keys winnowed out of frame hashes, to within a bin; the exact
offset is the one where the two videos' series disagree least, searched in two passes
(``coarse_offset``: every fifth frame at every second offset over ``search_s``;
``fine_offset``: every frame at the offsets around the best). The disagreement of a frame is
measured in units of re-encoding noise (``weights``): the Hamming distance of the hashes (a
squared distance on bits) and the squared differences of yaw, pitch, roll and mouth opening.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from gaia.pipeline.duplicates.settings import FindSettings
from gaia.pipeline.media.frame_hash import hamming

MEASURES = ("yaw_deg", "pitch_deg", "roll_deg", "mouth_open")
SERIES = 1 + len(MEASURES)  # the hash, then each measure
COARSE_FRAMES = 5  # the first pass reads every fifth frame
SEEN = 0.25  # a measure seen on fewer of the aligned frames is left out of the comparison


@dataclass(frozen=True)
class Series:
    """What alignment reads of one video: its frames' times, hashes and measures."""

    times: np.ndarray  # float64
    hashes: np.ndarray  # int64
    measures: np.ndarray  # (n, 4) float64, MEASURES in order, NaN where no face
    step: float  # the median frame duration


def series(times: np.ndarray, hashes: np.ndarray, measures: np.ndarray) -> Series:
    step = float(np.median(np.diff(times))) if len(times) > 1 else 0.04
    return Series(np.asarray(times, np.float64), np.asarray(hashes, np.int64),
                  np.asarray(measures, np.float64), step)


def read_series(path: Path) -> Series:
    """A metrics file's series; frames without a hash are left out."""
    table = pq.read_table(path, columns=["time_s", "frame_hash", *MEASURES])
    valid = ~np.asarray(table.column("frame_hash").is_null())
    values = np.stack([table.column(m).to_numpy(zero_copy_only=False).astype(np.float64)
                       for m in MEASURES], axis=1)
    return series(table.column("time_s").to_numpy()[valid],
                  table.column("frame_hash").fill_null(0).to_numpy()[valid], values[valid])


def weights(settings: FindSettings) -> np.ndarray:
    """Per unit of noise: the hash (bits, already a squared distance), then each measure."""
    pose, roll, mouth = settings.noise_pose_deg, settings.noise_roll_deg, settings.noise_mouth
    return np.array([1 / settings.noise_hash_bits, pose ** -2, pose ** -2, roll ** -2,
                     mouth ** -2])


def aligned(better: Series, worse: Series, offset: float, frames: np.ndarray | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
    """Frames of ``worse`` (of ``frames``, default all) that have a frame of ``better`` at
    their time + ``offset``, within half a frame; and those frames of ``better``."""
    mine = np.arange(len(worse.times)) if frames is None else frames
    target = worse.times[mine] + offset
    last = len(better.times) - 1
    after = np.clip(np.searchsorted(better.times, target), 0, last)
    before = np.clip(after - 1, 0, last)
    nearest = np.where(np.abs(better.times[before] - target)
                       <= np.abs(better.times[after] - target), before, after)
    close = np.abs(better.times[nearest] - target) <= 0.5 * better.step + 1e-6
    return mine[close], nearest[close]


def costs(better: Series, worse: Series, mine: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """``(frames, SERIES)``: per aligned frame the squared disagreement of each series, the
    hash first; NaN where a measure is missing in either video."""
    out = np.empty((len(mine), SERIES))
    out[:, 0] = hamming(worse.hashes[mine], better.hashes[theirs])
    out[:, 1:] = np.square(worse.measures[mine] - better.measures[theirs])
    return out


def mean_cost(disagreement: np.ndarray, weights: np.ndarray) -> float:
    """The weighted sum of the series' mean disagreements (a measure seen on fewer than
    ``SEEN`` of the frames is left out)."""
    seen = np.isfinite(disagreement)
    count = seen.sum(axis=0)
    means = np.where(count >= SEEN * len(disagreement),
                     np.where(seen, disagreement, 0.0).sum(axis=0) / np.maximum(count, 1), 0.0)
    return float(weights @ means)


def _cost(better: Series, worse: Series, at: float, frames: np.ndarray | None,
          settings: FindSettings) -> float:
    mine, theirs = aligned(better, worse, at, frames)
    stride = 1 if frames is None else COARSE_FRAMES
    if len(mine) * stride * worse.step < settings.min_overlap_s:
        return math.inf
    return mean_cost(costs(better, worse, mine, theirs), weights(settings))


def coarse_offset(better: Series, worse: Series, offset: float, settings: FindSettings
                  ) -> float | None:
    """The first pass (module docstring): the best of every second offset within
    ``search_s``, on every fifth frame; None when none aligns ``min_overlap_s``."""
    step = min(better.step, worse.step)
    reach = int(math.ceil(settings.search_s / step))
    sample = coarse_frames(worse)
    cost, at = min((_cost(better, worse, offset + k * step, sample, settings), offset + k * step)
                   for k in range(-reach, reach + 1, 2))
    return at if math.isfinite(cost) else None


def fine_offset(better: Series, worse: Series, offset: float, settings: FindSettings
                ) -> float | None:
    """The second pass: the best of the offsets up to two frames either side (the first
    pass stepped by two), on every frame."""
    step = min(better.step, worse.step)
    cost, at = min((_cost(better, worse, offset + k * step, None, settings), offset + k * step)
                   for k in range(-2, 3))
    return at if math.isfinite(cost) else None


def coarse_frames(worse: Series) -> np.ndarray:
    """The frames the first pass reads."""
    return np.arange(0, len(worse.times), COARSE_FRAMES)
