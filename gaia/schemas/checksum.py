"""Checksums that stored records carry, so a later run tells a changed file from a whole one.

A run resumes from records an earlier run left (``status/*.json``, extract's manifest parts,
encode-latents' parts). A record whose bytes changed after it was written (a flipped bit, a
cut copy, an edit) may still parse, and then a resume would trust wrong numbers. Each record
therefore carries the SHA-256 of its own content, computed over canonical JSON so that it does
not depend on how the file is laid out (key order, spacing, Parquet's encoding).
"""

from __future__ import annotations

import hashlib
import json

RECORD_KEY = "record_sha256"  # the field of a sealed JSON record that holds its checksum
ROWS_KEY = b"gaia_rows_sha256"  # the schema metadata key of a sealed Parquet table


def content_sha256(value: object) -> str:
    """SHA-256 of ``value`` as canonical JSON (keys sorted, no spaces, NaN written as NaN)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def seal(record: dict) -> dict:
    """``record`` with its checksum added under ``RECORD_KEY`` (a stale one replaced)."""
    content = {key: value for key, value in record.items() if key != RECORD_KEY}
    return {**content, RECORD_KEY: content_sha256(content)}


def unseal(record: dict) -> tuple[dict, bool | None]:
    """``record`` without its checksum, and whether the checksum matched (None: it had none,
    i.e. it was written before records were sealed)."""
    content = {key: value for key, value in record.items() if key != RECORD_KEY}
    if RECORD_KEY not in record:
        return content, None
    return content, record[RECORD_KEY] == content_sha256(content)
