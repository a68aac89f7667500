"""Segmenting (paper, appendix A.1): runs of consecutive passing frames become clips.

One function, used by ``tune`` to count and by ``extract`` to cut, so what tune reports is
exactly what gets cut. A run shorter than ``min_s`` is dropped (``short_run``); a run longer
than ``max_s`` is split into the fewest equal pieces no longer than ``max_s`` (each is then at
least ``max_s / 2 >= min_s`` long, so splitting never makes a clip too short).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaia.filters.spec import Slider


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


# The rules' sliders on the tune page: (key, label, slider).
SLIDERS = (("min_s", "shortest clip (s)", Slider(1.0, 10.0, 0.5)),)


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


def find_segments(keep: np.ndarray, times_s: np.ndarray, fps: float, rules: SegmentRules,
                  durations: np.ndarray | None = None) -> list[Segment]:
    """Clips from the runs of True in ``keep`` (see the module docstring).

    Vectorised over runs: a long video has thousands of them, and tune runs this on every
    video of a corpus. ``durations`` (from ``frame_durations``) may be passed to save work.
    """
    keep = np.asarray(keep, bool)
    times_s = np.asarray(times_s, np.float64)
    ends = times_s + (frame_durations(times_s, fps) if durations is None else durations)
    edges = np.diff(keep.astype(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    lengths = ends[stops - 1] - times_s[starts] if len(starts) else np.zeros(0)
    long_enough = lengths + 1e-6 >= rules.min_s
    starts, stops, lengths = starts[long_enough], stops[long_enough], lengths[long_enough]
    pieces = np.maximum(1, np.ceil(lengths / rules.max_s - 1e-9).astype(np.int64))
    # Cut each long run at the frames nearest to equal time steps: one search for all cuts.
    run_of_cut = np.repeat(np.arange(len(starts)), pieces - 1)
    step = np.concatenate([np.arange(1, k) for k in pieces]) if (pieces > 1).any() else (
        np.zeros(0, np.int64))
    targets = times_s[starts[run_of_cut]] + lengths[run_of_cut] * step / pieces[run_of_cut]
    cuts = np.searchsorted(times_s, targets)
    bounds_start = np.concatenate([starts, cuts])
    bounds_stop = np.concatenate([stops, cuts])
    order_start = np.sort(bounds_start, kind="stable")
    order_stop = np.sort(bounds_stop, kind="stable")
    return [Segment(int(a), int(b), float(times_s[a]), float(ends[b - 1]))
            for a, b in zip(order_start.tolist(), order_stop.tolist(), strict=True)]
