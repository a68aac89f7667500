"""What every filter shares: the per-frame measures it reads, reason codes, and its verdict.

A filter is a pure function from a video's per-frame measures (columns of ``metrics/``, as NumPy
arrays) to a keep mask, with the reason code written wherever it drops a frame (datatrove's
``(False, reason)``, vectorised). Reasons are small integers indexing ``REASONS`` so that a
corpus of millions of frames is counted with ``np.bincount``; ``reason_name`` turns them back
into words. Thresholds are frozen dataclasses with documented defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

Measures = Mapping[str, np.ndarray]  # column name -> (n,) array; missing values are NaN

# Every reason a frame can be dropped for, in the filters' order. 0 means kept.
REASONS: tuple[str, ...] = (
    "",
    "no_face",
    "multiple_faces",
    "not_frontal",
    "jitter",
    "occluded",
    "no_audio",
    "silence",
    "short_run",
    # Added with metrics version 2 (codes above keep their numbers).
    "not_speaking",
    "shot_cut",
    "blurry",
    "small_face",
    "identity_change",
    "out_of_sync",
)
KEPT = 0


def code(reason: str) -> int:
    """The integer code of a reason name."""
    return REASONS.index(reason)


def reason_name(value: int) -> str:
    return REASONS[int(value)]


@dataclass(frozen=True)
class Verdict:
    """One filter's result on one video: per frame 0 (kept) or the code of why it fails.

    A filter may drop for more than one reason (the face-count rule drops for ``no_face`` or
    ``multiple_faces``).
    """

    reasons: np.ndarray  # uint8 codes

    @property
    def keep(self) -> np.ndarray:
        return self.reasons == KEPT

    @classmethod
    def from_mask(cls, keep: np.ndarray, reason: str) -> Verdict:
        return cls(np.where(np.asarray(keep, bool), KEPT, code(reason)).astype(np.uint8))

    @classmethod
    def keep_all(cls, n: int) -> Verdict:
        return cls(np.zeros(n, np.uint8))


def column(measures: Measures, name: str) -> np.ndarray:
    """A measure as floats with NaN for missing, or a clear error naming the column.

    float32 columns stay float32 (no copy): tune streams billions of frames through here.
    """
    if name not in measures:
        raise KeyError(f"metrics have no column {name!r}: measured with an older gaia?")
    values = np.asarray(measures[name])
    return values if values.dtype.kind == "f" else values.astype(np.float32)
