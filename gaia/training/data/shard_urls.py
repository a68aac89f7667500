"""Shard urls from a spec (docs/shards.md): folders, globs, brace patterns, files, store
prefixes and urls, comma-separated. Every reader of shards (the training streams, the
``--max-hours`` subset, encode-latents, evaluation) expands a spec here."""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path

import braceexpand

from gaia.common.storage import is_uri, list_uri, redact

_URL = re.compile(r"^(pipe:|[A-Za-z][A-Za-z0-9+.-]+://)")
_GLOB = re.compile(r"[*?\[]")


def _split_commas(spec: str) -> list[str]:
    """Split at commas outside braces (``a-{0,1}.tar,b.tar`` is two entries)."""
    parts, depth, start = [], 0, 0
    for n, char in enumerate(spec):
        depth += (char == "{") - (char == "}")
        if char == "," and depth == 0:
            parts.append(spec[start:n])
            start = n + 1
    parts.append(spec[start:])
    return [part.strip() for part in parts if part.strip()]


def expand_shards(spec: str) -> list[str]:
    """Shard urls from a spec: comma-separated entries, each a folder (its ``*.tar``, sorted),
    a glob, a brace pattern (``shards/shard-{000000..000009}.tar``), a file, or a url: a store
    prefix (``s3://bucket/run/shards/vae``: its ``*.tar``) or glob, or any url after brace
    expansion (``s3://.../shard-{000000..000009}.tar``, ``pipe:CMD``).

    Raises FileNotFoundError naming the entry when a local entry matches nothing.
    """
    urls: list[str] = []
    entries = _split_commas(spec)
    if not entries:
        raise FileNotFoundError(f"no shards: empty shard spec {spec!r}")
    for entry in entries:
        if _URL.match(entry):
            urls += _store_urls(entry, spec)
            continue
        for item in braceexpand.braceexpand(os.path.expanduser(entry)):
            if os.path.isdir(item):
                found = sorted(str(p) for p in Path(item).glob("*.tar"))
                where = f"no *.tar in folder {item!r}"
            elif _GLOB.search(item):
                found = sorted(glob.glob(item, recursive=True))
                where = f"glob {item!r} matches nothing"
            else:
                found = [item] if os.path.isfile(item) else []
                where = f"shard {item!r} does not exist"
            if not found:
                raise FileNotFoundError(f"no shards: {where} (spec {spec!r})")
            urls += found
    return urls


def _store_urls(entry: str, spec: str) -> list[str]:
    """A url entry's shards: listed from the store for a prefix or a glob in the file name."""
    if entry.startswith("pipe:") or "{" in entry or entry.endswith(".tar") \
            or not is_uri(entry) or entry.startswith(("http://", "https://")):
        return list(braceexpand.braceexpand(entry))
    folder, _, name = entry.rstrip("/").rpartition("/")
    found = list_uri(folder, name) if _GLOB.search(name) else list_uri(entry, "*.tar")
    if not found:
        raise FileNotFoundError(f"no shards: no *.tar under {redact(entry)} (spec "
                                f"{redact(spec)})")
    return found
