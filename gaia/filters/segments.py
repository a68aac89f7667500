"""Segmenting (paper, appendix A.1): runs of consecutive passing frames become clips.

One function, used by ``tune`` to count and by ``extract`` to cut, so what tune reports is
exactly what gets cut. A run shorter than ``min_s`` is dropped (``short_run``); a run longer
than ``max_s`` is split into the fewest equal pieces no longer than ``max_s`` (each is then at
least ``max_s / 2 >= min_s`` long, so splitting never makes a clip too short).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SegmentRules:
    """min_s: shortest clip kept, seconds (the paper keeps >= 3 s).
    max_s: longest clip; longer runs are split evenly."""

    min_s: float = 3.0
    max_s: float = 10.0

    def __post_init__(self) -> None:
        if self.min_s <= 0:
            raise ValueError("segments.min_s must be positive")
        if self.max_s < 2 * self.min_s:
            raise ValueError(
                f"segments.max_s ({self.max_s}) must be at least twice segments.min_s "
                f"({self.min_s}), so that splitting a long run never leaves a piece too short"
            )


@dataclass(frozen=True)
class Segment:
    """Frames ``start`` (inclusive) to ``stop`` (exclusive), and their times in seconds."""

    start: int
    stop: int
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def frame_durations(times_s: np.ndarray, fps: float) -> np.ndarray:
    """How long each frame is shown: up to the next frame, the last one for ``1 / fps``."""
    if len(times_s) == 0:
        return np.zeros(0)
    return np.diff(times_s, append=times_s[-1] + 1.0 / fps)


def find_segments(keep: np.ndarray, times_s: np.ndarray, fps: float,
                  rules: SegmentRules) -> list[Segment]:
    """Clips from the runs of True in ``keep`` (see the module docstring)."""
    keep = np.asarray(keep, bool)
    ends = times_s + frame_durations(times_s, fps)
    edges = np.diff(np.concatenate([[0], keep.astype(np.int8), [0]]))
    segments: list[Segment] = []
    for start, stop in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        length = ends[stop - 1] - times_s[start]
        if length + 1e-6 < rules.min_s:
            continue
        pieces = max(1, math.ceil(length / rules.max_s - 1e-9))
        # Cut at the frames nearest to equal time steps.
        cuts = np.searchsorted(times_s[start:stop],
                               times_s[start] + length * np.arange(1, pieces) / pieces) + start
        bounds = [start, *cuts.tolist(), stop]
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            segments.append(Segment(int(a), int(b), float(times_s[a]), float(ends[b - 1])))
    return segments
