"""Which landmarks a user holds fixed in fully controllable generation (paper, section 5.4 and
appendix D): the named point sets of the 68-point iBUG layout, a control file read and checked,
and the mask over the landmark model's 136 coordinates that ``sample_motion`` in-paints.

A control file is a plain ``.npy`` (never a pickle) of float landmarks in pixels of the VAE's
image of the portrait crop (the frame ``OUT.portrait_landmarks.npy`` of a generation is in):
``(T, 68, 2)``, one row per output frame, or ``(68, 2)``, held for every frame. Its values are
real (integer or float dtype: a complex array is refused, never cast) and finite, and lie within
one image of the image: ``-size <= value <= 2 * size`` for the VAE's ``size``-pixel image (a
point may sit off the crop, as a chin does, but no farther: the model sees fractions of the
crop and was trained on faces inside it). The header is checked before the array is read: a
garbled or oversized header, or a shape larger than the frames asked for, is a one-line error.
"""

from __future__ import annotations

import math
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


def _check_header(path: Path, frames: int) -> None:
    """ValueError unless ``path`` starts with a readable ``.npy`` header of a real dtype and at
    most ``frames`` rows of (68, 2): checked before any of the array is read or allocated."""
    fmt = np.lib.format
    try:
        with open(path, "rb") as handle:
            version = fmt.read_magic(handle)
            read_header = fmt.read_array_header_1_0 if version == (1, 0) \
                else fmt.read_array_header_2_0
            shape, _, dtype = read_header(handle)  # refuses a header over 10000 bytes
    except Exception:  # noqa: BLE001 - a hostile header raises more than ValueError
        # (tokenize's TokenError, SyntaxError, ...); numpy's own text is not repeated: for a
        # large header it advises turning pickle loading on
        raise ValueError(f"--control {path}: not a readable plain .npy array (its header is "
                         "missing, garbled or too large); save landmarks with numpy.save"
                         ) from None
    if dtype.hasobject or not (np.issubdtype(dtype, np.integer)
                               or np.issubdtype(dtype, np.floating)):
        raise ValueError(f"--control {path}: dtype {dtype} is refused, not a plain .npy array "
                         "of real numbers; give float or integer pixels (complex, boolean and "
                         "object arrays are never cast)")
    if not all(isinstance(n, int) and n >= 0 for n in shape) or \
            math.prod(shape) > max(frames, 1) * N_LANDMARKS * 2:
        raise ValueError(f"--control {path}: shape {shape}; give (T, 68, 2) with T = {frames} "
                         "frames, or (68, 2)")


def read_control(path: Path, frames: int, size: int | None = None) -> np.ndarray:
    """The control track of ``path`` as float32 ``(frames, 68, 2)``; ValueError naming what
    is wrong (not a plain array, dtype, shape, length, values not finite or, with the VAE's
    image ``size``, outside ``[-size, 2 * size]`` pixels)."""
    _check_header(path, frames)
    try:
        track = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f"--control {path}: not a readable plain .npy array "
                         f"({type(err).__name__}); save landmarks with numpy.save") from None
    if track.shape == (N_LANDMARKS, 2):
        track = np.repeat(track[None], frames, axis=0)
    if track.ndim != 3 or track.shape[1:] != (N_LANDMARKS, 2):
        raise ValueError(f"--control {path}: shape {track.shape}; give (T, 68, 2) or (68, 2) "
                         "landmarks in pixels of the VAE's image of the portrait")
    if len(track) != frames:
        raise ValueError(f"--control {path}: {len(track)} frames, the speech gives {frames}; "
                         "give one row per output frame, or (68, 2) to hold one shape")
    if not np.isfinite(track).all():
        raise ValueError(f"--control {path}: holds non-finite values (nan or inf); give "
                         "landmarks in pixels")
    if size is not None:
        low, high = -size, 2 * size
        if track.size and not (low <= track.min() and track.max() <= high):
            raise ValueError(f"--control {path}: values {track.min():g} to {track.max():g} "
                             f"pixels; give {low} to {high} (within one {size}-pixel image "
                             "of the VAE's image of the portrait)")
    return track.astype(np.float32)
