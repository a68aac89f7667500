"""Which landmarks a user holds fixed in fully controllable generation (paper, section 5.4 and
appendix D): the named point sets of the 68-point iBUG layout, a control file read and checked,
and the mask over the landmark model's 136 coordinates that ``sample_motion`` in-paints.

A control file is a plain ``.npy`` (never a pickle) of float landmarks in pixels of the VAE's
image of the portrait crop (the frame ``OUT.portrait_landmarks.npy`` of a generation is in):
``(T, 68, 2)``, one row per output frame, or ``(68, 2)``, held for every frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gaia.schemas.shards import N_LANDMARKS

# The iBUG 68-point groups (Sagonas et al. 2013), 0-based.
POINT_SETS = {
    "jaw": range(0, 17),
    "brows": range(17, 27),
    "nose": range(27, 36),
    "eyes": range(36, 48),
    "mouth": range(48, 68),
}


def control_points(spec: str) -> np.ndarray:
    """Sorted point indexes of ``spec``: set names and indexes, comma-separated
    (``mouth``, ``eyes,brows``, ``48,54,62-67``). ValueError saying what is accepted."""
    points: set[int] = set()
    for part in (p.strip() for p in spec.split(",")):
        if part in POINT_SETS:
            points.update(POINT_SETS[part])
            continue
        first, dash, last = part.partition("-")
        try:
            low, high = int(first), int(last if dash else first)
        except ValueError:
            raise ValueError(f"--control-points: {part!r} is neither a set "
                             f"({', '.join(POINT_SETS)}) nor an index or range like 48-67"
                             ) from None
        if not 0 <= low <= high < N_LANDMARKS:
            raise ValueError(f"--control-points: {part!r} is outside the points 0-"
                             f"{N_LANDMARKS - 1}")
        points.update(range(low, high + 1))
    if not points:
        raise ValueError("--control-points names no point")
    return np.asarray(sorted(points), np.int64)


def coordinate_mask(points: np.ndarray) -> np.ndarray:
    """``(136,)`` bool: the x and y coordinates of ``points`` in the flattened track."""
    mask = np.zeros((N_LANDMARKS, 2), bool)
    mask[points] = True
    return mask.reshape(-1)


def read_control(path: Path, frames: int) -> np.ndarray:
    """The control track of ``path`` as float32 ``(frames, 68, 2)``; ValueError naming what
    is wrong (not a plain array, shape, length, non-finite values)."""
    try:
        track = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ValueError(f"--control {path}: not a readable plain .npy array ({err}); save "
                         "landmarks with numpy.save") from err
    if track.shape == (N_LANDMARKS, 2):
        track = np.repeat(track[None], frames, axis=0)
    if track.ndim != 3 or track.shape[1:] != (N_LANDMARKS, 2):
        raise ValueError(f"--control {path}: shape {track.shape}; give (T, 68, 2) or (68, 2) "
                         "landmarks in pixels of the VAE's image of the portrait")
    if len(track) != frames:
        raise ValueError(f"--control {path}: {len(track)} frames, the speech gives {frames}; "
                         "give one row per output frame, or (68, 2) to hold one shape")
    if not np.issubdtype(track.dtype, np.number) or not np.isfinite(track).all():
        raise ValueError(f"--control {path}: holds non-numeric or non-finite values")
    return track.astype(np.float32)
