"""A video's signature: a few exact keys per second, cut from its stored frame hashes.

Each frame's 64-bit difference hash (``media.frame_hash``) is cut into four 16-bit bands, and
every pair of bands side by side is one 32-bit key: six keys per frame. Two hashes at most two
bits apart share at least two intact bands, so at least one key, exactly (pigeonhole); copies
differ by 0-3 bits per frame (``settings`` docstring), so most of a copy's frames share keys
with the original. Single 16-bit bands would not do at scale: 65,536 values over a corpus of
100,000 videos with hundreds of frames each put every value in hundreds of videos.

Consecutive frames mostly repeat a key (a talking head in front of a still background), so
each band pair's key sequence is cut into runs of equal keys, and the runs are winnowed
(Schleimer, Wilkerson and Aiken 2003): in every window of ``window`` runs the one with the
smallest mixed key is kept. That keeps about 2 / (window + 1) of the runs, the same runs in
both copies wherever their keys agree, whatever the copy's start time, frame rate or length,
which sampling on a clock would not.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

BAND_PAIRS = tuple(combinations(range(4), 2))  # six keys per frame


@dataclass(frozen=True)
class Signature:
    """The kept keys of one video: per band pair (``family``), the key and its frame's time."""

    family: np.ndarray  # int8
    keys: np.ndarray  # uint32
    times: np.ndarray  # float64, the frame's time_s

    def __len__(self) -> int:
        return len(self.keys)


def band_pair_keys(hashes: np.ndarray) -> np.ndarray:
    """``(n, 6)`` uint32: each pair of a hash's four 16-bit bands, side by side."""
    h = np.asarray(hashes, np.int64).view(np.uint64)
    bands = [(h >> np.uint64(16 * i)) & np.uint64(0xFFFF) for i in range(4)]
    return np.stack([((bands[i] << np.uint64(16)) | bands[j]).astype(np.uint32)
                     for i, j in BAND_PAIRS], axis=1)


def _mix(keys: np.ndarray) -> np.ndarray:
    """A bijection of 32-bit keys (MurmurHash3's finaliser): the winnowing order, so that the
    kept keys do not lean toward dark frames (small band values)."""
    x = keys.astype(np.uint64)
    mask = np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x85EBCA6B)) & mask
    x ^= x >> np.uint64(13)
    x = (x * np.uint64(0xC2B2AE35)) & mask
    return x ^ (x >> np.uint64(16))


def winnow(keys: np.ndarray, window: int) -> np.ndarray:
    """Frame indices kept from one band pair's key sequence (module docstring)."""
    if len(keys) == 0:
        return np.zeros(0, np.int64)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])  # the first frame of each run
    mixed = _mix(keys[starts])
    if len(mixed) <= window:
        return starts[[len(mixed) - 1 - int(np.argmin(mixed[::-1]))]]
    windows = np.lib.stride_tricks.sliding_window_view(mixed, window)
    # The rightmost smallest in each window, as winnowing takes it.
    picks = np.arange(len(windows)) + window - 1 - windows[:, ::-1].argmin(axis=1)
    return starts[np.unique(picks)]


def signature(times: np.ndarray, hashes: np.ndarray, window: int) -> Signature:
    """The signature of a video with frame ``times`` and ``hashes`` (no missing hash)."""
    keys = band_pair_keys(hashes)
    families, kept, at = [], [], []
    for family in range(keys.shape[1]):
        picks = winnow(keys[:, family], window)
        families.append(np.full(len(picks), family, np.int8))
        kept.append(keys[picks, family])
        at.append(np.asarray(times, np.float64)[picks])
    return Signature(np.concatenate(families), np.concatenate(kept), np.concatenate(at))
