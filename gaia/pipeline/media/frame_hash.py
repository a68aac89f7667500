"""A 64-bit difference hash per frame: the cheap signature duplicate detection matches on.

Web-scale talking-head corpora hold the same footage many times: a re-upload, a re-encode, a
rescaled copy, a clip cut from a longer upload (issue 26). Measures differ a little between two
encodes of the same frames, but the coarse brightness layout of a frame does not: the frame
is shrunk to 9 x 8 grey pixels and each bit says whether a pixel is brighter than its right
neighbour (the dHash of Krawetz's "Kind of Like That"). A re-encode or a rescale flips a few of
the 64 bits; a different frame flips about half. It costs one resize per frame, on the
analysis copy measure decodes anyway.
"""

from __future__ import annotations

import numpy as np

HASH_BITS = 64
_WEIGHTS = (1 << np.arange(HASH_BITS, dtype=np.uint64)).astype(np.uint64)


def frame_hash(rgb: np.ndarray) -> int:
    """The frame's 64-bit difference hash, as a signed 64-bit integer (Arrow's int64)."""
    import cv2

    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    # INTER_AREA averages every source pixel into the 9 x 8: the hash sees the whole frame,
    # so a copy at another resolution gives nearly the same bits.
    small = cv2.resize(grey, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).reshape(-1).astype(np.uint64)
    return int(np.int64(np.sum(bits * _WEIGHTS, dtype=np.uint64).view(np.int64)))


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bits that differ between hashes ``a`` and ``b`` (broadcast), as int."""
    x = np.bitwise_xor(np.asarray(a, np.int64), np.asarray(b, np.int64)).view(np.uint64)
    if hasattr(np, "bitwise_count"):  # numpy 2: a popcount instruction per element
        return np.bitwise_count(x).astype(np.int64)
    count = np.zeros(x.shape, np.int64)
    for shift in range(0, HASH_BITS, 8):
        count += _POPCOUNT[((x >> np.uint64(shift)) & np.uint64(0xFF)).astype(np.intp)]
    return count


_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], np.int64)
