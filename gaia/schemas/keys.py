"""Identifiers derived from input paths: sanitised before they become keys or file names.

A ``video_id`` is stable across runs (it depends only on the input's path or URI), safe as a
file name and a WebDataset key (ground rule 6: no ``/``, ``..``, dots or odd characters), and
unique even when two inputs share a file name in different folders.
"""

from __future__ import annotations

import hashlib
import re

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
MAX_STEM = 48


def sanitize(name: str, max_len: int = MAX_STEM) -> str:
    """Letters, digits, ``_`` and ``-`` only; runs of anything else become one ``_``."""
    cleaned = _UNSAFE.sub("_", name).strip("_-")
    return cleaned[:max_len] or "x"


def video_id_for(uri: str) -> str:
    """``{sanitised stem}-{10 hex of sha1(uri)}``, e.g. ``carphone_pristine-3f2a9c01bd``."""
    tail = uri.rstrip("/").rsplit("/", 1)[-1]
    stem = tail.rsplit(".", 1)[0] if "." in tail else tail
    digest = hashlib.sha1(uri.encode("utf-8")).hexdigest()[:10]
    return f"{sanitize(stem)}-{digest}"


_VALID_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe identifier, else raise ``ValueError``."""
    if not _VALID_ID.match(key):
        raise ValueError(f"unsafe identifier {key!r}: use only letters, digits, '_' and '-'")
    return key
