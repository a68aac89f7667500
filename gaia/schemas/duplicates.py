"""``RUN_DIR/duplicates.parquet``: footage a run holds more than once (issue 26, item 4).

One row per overlap found (``gaia.pipeline.duplicates``): a stretch of ``video_id`` whose
frames are the same footage as a stretch of ``of_video_id``, the better copy, which is kept.
The frames of ``video_id`` from ``start_s`` to ``end_s`` (its own presentation times) are
dropped with the reason ``duplicate`` when the row's ``match`` reaches the filter's threshold
(``gaia.filters.duplicate``); the rest of that video stays. The evidence numbers say why the
two stretches were taken for one: how many frames were aligned, how far their frame hashes and
measures lie apart, and how much those varied (a still scene proves little).

The table is written whole or not at all and carries a SHA-256 of its rows and a fingerprint
of what it was found from (the measured videos and their metrics files, the finder's
settings): a table that is missing, cut, changed, of another version or behind the run is
found again, never trusted.
"""

from __future__ import annotations

import pyarrow as pa

DUPLICATES_VERSION = 1
DUPLICATES_FILE = "duplicates.parquet"
VERSION_KEY = b"gaia_duplicates_version"
INPUTS_KEY = b"gaia_duplicates_inputs"  # SHA-256 of the measured videos and the settings
# The per-frame column read_measures derives from this table (never stored in metrics/).
MATCH_COLUMN = "duplicate_match"

_FIELDS: list[tuple[str, pa.DataType, str]] = [
    ("video_id", pa.string(), "the copy whose overlapping frames are dropped"),
    ("start_s", pa.float64(), "first overlapping frame of video_id (its time_s)"),
    ("end_s", pa.float64(), "last overlapping frame of video_id (its time_s)"),
    ("of_video_id", pa.string(), "the better copy, kept"),
    ("of_start_s", pa.float64(), "where the stretch starts in of_video_id"),
    ("of_end_s", pa.float64(), "where it ends in of_video_id"),
    ("offset_s", pa.float64(), "time in of_video_id minus time in video_id"),
    ("match", pa.float32(),
     "1 - aligned disagreement / unaligned spread of the frame hashes and measures (1: the "
     "same frames; about 0: unrelated footage of the same scene)"),
    ("evidence", pa.float32(),
     "the unaligned spread in units of re-encoding noise: how much the footage varies, so "
     "how much an agreement proves"),
    ("frames", pa.int32(), "frames of video_id aligned with a frame of of_video_id"),
    ("hash_bits", pa.float32(), "mean Hamming distance of the aligned frames' hashes"),
    ("pose_deg", pa.float32(), "root-mean-square difference of the aligned head poses"),
    ("mouth", pa.float32(), "root-mean-square difference of the aligned mouth openings"),
]

DUPLICATES_SCHEMA = pa.schema(
    [pa.field(name, kind, metadata={"doc": doc}) for name, kind, doc in _FIELDS]
)
