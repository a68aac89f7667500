"""``RUN_DIR/identities.parquet``: who is who across a whole run (paper, section 4: Table 1's
#IDs; identities decide the train/val split).

One row per person track of a measured video (``videos.parquet``'s ``person_embeddings``: each
video's own clustering of its faces), with the run-wide identity it belongs to. Identity ids
are stable: a run that grows keeps every id it had and gives new people new, larger ids
(``gaia.pipeline.identities.table``). The table is written whole or not at all, and carries a
SHA-256 of its rows (``gaia.schemas.checksum``): a changed table is rebuilt, never trusted.
"""

from __future__ import annotations

import pyarrow as pa

IDENTITIES_VERSION = 1
IDENTITIES_FILE = "identities.parquet"
VERSION_KEY = b"gaia_identities_version"

_FIELDS: list[tuple[str, pa.DataType, str]] = [
    ("video_id", pa.string(), "the measured video"),
    ("person", pa.int16(), "the video's own person id (metrics' person column)"),
    ("identity", pa.int64(), "the run-wide identity; stable as the run grows"),
    ("tracks", pa.int32(), "face tracks averaged into this person's embedding"),
    ("identity_size", pa.int32(), "person tracks (rows) the identity holds across the run"),
    ("representative", pa.bool_(), "the identity's picture: its largest track (first wins)"),
    ("first_frame", pa.int64(), "the frame where this person was first embedded"),
    ("distance", pa.float32(), "distance of this person's embedding to the identity's centre"),
]

IDENTITIES_SCHEMA = pa.schema(
    [pa.field(name, kind, metadata={"doc": doc}) for name, kind, doc in _FIELDS]
)


def identity_name(identity: int) -> str:
    """The identity as the shards' ``identity`` field writes it."""
    return f"person-{int(identity):07d}"
