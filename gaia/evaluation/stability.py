"""Motion Stability Index as StableFace defines it (Ling et al., "StableFace: Analyzing and
Improving Motion Stability for Talking Face Generation", IEEE JSTSP 2023; arXiv 2208.13717),
the MSI column of GAIA's tables 2 and 3, on iBUG 68-point tracks.

StableFace's definition, step by step (its released metric script works on a dense landmark
set; here its points are the 68-point set's):

1. Scale: the track is rescaled so the mouth width (corner to corner, 48 to 54 here), averaged
   over the first ``reference_frames`` (10) frames, is ``mouth_width`` units (64: the script's
   0.25 of 256), whatever the face's size in pixels.
2. Acceleration of each measured point, per axis: the second difference of its coordinates
   (velocities are first differences, accelerations the difference of consecutive velocities).
3. Windows of ``window`` accelerations (12) starting every ``window // 2`` (6); the last ones are
   shorter where the track ends. In each window and for each point and axis, the variance of the
   acceleration; the window's index is the mean over points of ``1 / (variance + bias)`` with
   ``bias`` 0.5, averaged over the x and y axes.
4. MSI is the mean of the windows' indices. Higher is stabler; a still or uniformly moving face
   scores ``1 / bias`` = 2, the most there is.

The measured points are the lips (48-67) by default, as StableFace's lip set; ``JAW`` is the
other set its script names. Frames holding NaN (no face) end a stretch: MSI is read on each
stretch of consecutive finite frames and the windows of all stretches are averaged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

LIPS = tuple(range(48, 68))
JAW = tuple(range(3, 14))
MOUTH_CORNERS = (48, 54)


@dataclass(frozen=True)
class StableFaceMsi:
    """StableFace's constants (its metric script's defaults)."""

    window: int = 12
    bias: float = 0.5
    mouth_width: float = 64.0
    reference_frames: int = 10
    points: tuple[int, ...] = LIPS


def _scaled(track: np.ndarray, settings: StableFaceMsi) -> np.ndarray:
    left, right = MOUTH_CORNERS
    widths = np.linalg.norm(track[:, left] - track[:, right], axis=-1)
    widths = widths[np.isfinite(widths)][: settings.reference_frames]
    if not len(widths) or widths.mean() <= 0:
        raise ValueError("no frame has usable mouth corners (48, 54): MSI needs a face track")
    return track * (settings.mouth_width / widths.mean())


def _stretches(finite: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of every run of consecutive True values."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], finite.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def window_indices(acceleration: np.ndarray, settings: StableFaceMsi) -> list[float]:
    """Each window's index of one stretch's accelerations ``(N, points, 2)`` (step 3)."""
    step = max(1, settings.window // 2)
    out = []
    for start in range(0, len(acceleration), step):
        part = acceleration[start:start + settings.window]
        per_axis = (1.0 / (part.var(axis=0) + settings.bias)).mean(axis=0)  # (2,)
        out.append(float(per_axis.mean()))
    return out


def stableface_msi(landmarks: np.ndarray, settings: StableFaceMsi | None = None) -> float:
    """MSI of a ``(T, 68, 2)`` track (module docstring); raises ``ValueError`` for a track with
    no stretch of 3 frames (no acceleration) or no mouth corners."""
    settings = settings or StableFaceMsi()
    track = np.asarray(landmarks, dtype=np.float64)
    if track.ndim != 3 or track.shape[1:] != (68, 2):
        raise ValueError(f"landmarks must be a (frames, 68, 2) iBUG track, got {track.shape}")
    track = _scaled(track, settings)[:, list(settings.points)]
    indices: list[float] = []
    for start, stop in _stretches(np.isfinite(track).all(axis=(1, 2))):
        if stop - start >= 3:
            part = track[start:stop]
            indices += window_indices(part[2:] - 2.0 * part[1:-1] + part[:-2], settings)
    if not indices:
        raise ValueError("MSI needs 3 or more consecutive frames with a face (one acceleration)")
    value = float(np.mean(indices))
    return value if math.isfinite(value) else math.nan
