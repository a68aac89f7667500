"""The compact tune table (issue 14): the per-frame measures the filters read, as small integer
codes on a fixed grid, one Arrow IPC file per shard of videos under ``RUN_DIR/tune/``.

Which measures, on which grids, is not fixed here: each filter's spec declares it
(``gaia.filters.registry.coded_columns``), and the table describes its own columns in its
schema, so a table written under other specs is seen as stale and rebuilt. Each coded
measure is one contiguous column: the fused pass runs down one column per threshold.

Why codes lose nothing a threshold can see: a filter compares a float32 measure ``v`` with a
threshold ``t`` (``v > t``, ``v < t`` or ``v >= t``, with ``t`` as float32, as NumPy compares
them). For thresholds on the column's grid ``g_k = float32(low + k * step)``, the code

- ``ceil`` (for ``v > t``):  ``c = min {j : v <= g_j}``, so ``v > g_k`` exactly when ``c > k``;
- ``floor`` (for ``v < t`` and ``v >= t``): ``c = max {j : v >= g_j}``, so ``v >= g_k`` exactly
  when ``c >= k``

decides every frame as the float would. A threshold off its column's grid cannot be answered
from codes: tune then reads ``metrics/`` (and says so). ``NAN_CODE`` marks a missing value;
codes are clipped to ``[0, NAN_CODE - 1]`` and grid thresholds must lie inside.

Measures a filter reads otherwise than by a comparison with a threshold (``mouth_motion`` is
averaged over a tunable window first; ``num_faces`` is a count) are kept exact, as is
``time_s`` (float64) unless the video's times are exactly ``t0 + i / fps`` (``uniform``: then
only ``t0`` and ``fps`` are stored).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa

TUNE_TABLE_VERSION = 3  # 2: the coded columns are the filters' specs', described in the schema;
# 3: the index records each part file's SHA-256 and its own rows' SHA-256
NAN_CODE = 65535
VIDEOS_PER_FILE = 256


@dataclass(frozen=True)
class CodedColumn:
    """A measure stored as ``uint16`` codes (module docstring). ``source``: the metrics
    column; ``transform``: ``abs180`` (|v - 180|), ``abs`` or ``none``, applied in float32 as
    the filter does; ``rounding``: ``ceil`` or ``floor``."""

    name: str
    source: str
    transform: str
    rounding: str
    step: float
    low: float = 0.0

    def grid(self, k: np.ndarray | int) -> np.ndarray:
        return np.float32(self.low + np.asarray(k, np.float64) * self.step)

    def grid_index(self, threshold: float) -> int | None:
        """``k`` with ``float32(threshold) == g_k`` inside the code range, or None."""
        k = int(round((float(threshold) - self.low) / self.step))
        if not 0 <= k < NAN_CODE - 1:
            return None
        return k if self.grid(k) == np.float32(threshold) else None

    def values(self, raw: np.ndarray) -> np.ndarray:
        v = np.asarray(raw, np.float32)
        if self.transform == "abs180":
            return np.abs(v - np.float32(180.0))
        if self.transform == "abs":
            return np.abs(v)
        return v

    def encode(self, raw: np.ndarray) -> np.ndarray:
        v = self.values(raw)
        finite = np.isfinite(v)
        guess = np.zeros(len(v), np.int64)
        with np.errstate(invalid="ignore"):
            scaled = (v[finite].astype(np.float64) - self.low) / self.step
        guess[finite] = (np.ceil(scaled) if self.rounding == "ceil" else np.floor(scaled)) \
            .clip(-1, NAN_CODE).astype(np.int64)
        code = guess.clip(0, NAN_CODE - 1)
        # Float division may land one step off: settle each code against the float32 grid.
        for _ in range(2):
            if self.rounding == "ceil":
                down = (code > 0) & (v <= self.grid(code - 1))
                code[down] -= 1
                up = (code < NAN_CODE - 1) & (v > self.grid(code))
                code[up] += 1
            else:
                up = (code < NAN_CODE - 1) & (v >= self.grid(code + 1))
                code[up] += 1
                down = (code > 0) & (v < self.grid(code))
                code[down] -= 1
        code[~finite] = NAN_CODE
        return code.astype(np.uint16)


def frame_schema(coded: tuple[CodedColumn, ...], exact: dict[str, str]) -> pa.Schema:
    """One row per frame: the video's index in the file, ``time_s`` (null for a uniform
    video), a ``uint16`` column of codes per entry of ``coded`` (its definition in the field's
    metadata), and the ``exact`` columns (name -> numpy type)."""
    fields = [pa.field("video", pa.int32()), pa.field("time_s", pa.float64())]
    fields += [pa.field(c.name, pa.uint16(), metadata={"coded": json.dumps(asdict(c))})
               for c in coded]
    fields += [pa.field(name, pa.from_numpy_dtype(np.dtype(kind))) for name, kind in exact.items()]
    return pa.schema(fields, metadata={"gaia_tune_table_version": str(TUNE_TABLE_VERSION)})


VIDEO_FIELDS = (("video_id", pa.string()), ("source", pa.string()), ("fps", pa.float64()),
                ("frames", pa.int64()), ("uniform", pa.bool_()), ("t0", pa.float64()),
                ("metrics_mtime_ns", pa.int64()))


def uniform_start(times: np.ndarray, fps: float) -> float | None:
    """``t0`` when ``times`` equals ``t0 + arange(n) / fps`` bit for bit, else None."""
    if not len(times) or not math.isfinite(fps) or fps <= 0:
        return None
    t0 = float(times[0])
    return t0 if np.array_equal(times, t0 + np.arange(len(times)) / fps) else None
