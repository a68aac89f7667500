"""What every filter shares: the per-frame measures it reads, reason codes, and its verdict.

A filter is a pure function from a video's per-frame measures (columns of ``metrics/``, as NumPy
arrays) to a keep mask, with the reason code written wherever it drops a frame (datatrove's
``(False, reason)``, vectorised). Reasons are small integers indexing ``REASONS`` so that a
corpus of millions of frames is counted with ``np.bincount``; ``reason_name`` turns them back
into words. Thresholds are frozen dataclasses with documented defaults; what a filter declares
about them is its spec (``gaia.filters.spec``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

Measures = Mapping[str, np.ndarray]  # column name -> (n,) array; missing values are NaN

# Every reason a frame can be dropped for; a code is its index, 0 means kept. The first few
# belong to no filter (the segment rule's, extract's sync bound); each filter's own are added
# when it registers (``gaia.filters.registry``), in the order the filters run.
_REASONS: list[str] = ["", "short_run", "out_of_sync"]
KEPT = 0


def add_reasons(names: tuple[str, ...]) -> None:
    """Give each new reason name the next code (known names keep theirs)."""
    for name in names:
        if name not in _REASONS:
            _REASONS.append(name)


def reasons() -> tuple[str, ...]:
    """Every reason name, indexed by code (index 0, kept, is the empty name)."""
    return tuple(_REASONS)


def code(reason: str) -> int:
    """The integer code of a reason name."""
    try:
        return _REASONS.index(reason)
    except ValueError:
        raise KeyError(f"no reason {reason!r}: is its filter registered?") from None


def reason_name(value: int) -> str:
    return _REASONS[int(value)]


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
