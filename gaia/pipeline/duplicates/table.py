"""The run's duplicates table (``gaia.schemas.duplicates``): found once, checked on every
read, found again when it cannot be trusted.

Every job that decides frames reads it through ``ensure_duplicates``: the tune table when it is
built (at the end of measure, or by tune), tune's reference path and extract's plan, all
through ``pipeline.measures.read_measures``, which derives the per-frame ``duplicate_match``
column from it. So tune and extract see the same duplicates. The table is found again, with a
log line, when it is missing, unreadable, of another version, does not match the checksum of
its rows, or is behind the run: its fingerprint (each measured video's id and its metrics
file's size and time, and the finder's settings) no longer matches, as when videos were added
to the run or measured again. Checking the fingerprint stats every metrics file, so a process
checks once and keeps the answer until ``duplicates.parquet``, ``videos.parquet`` or the
``metrics/`` folder changes (measure renames each file into place, which changes the folder).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gaia.pipeline.duplicates.find import find_duplicates, measured_rows
from gaia.pipeline.duplicates.settings import FindSettings
from gaia.schemas.atomic import atomic_path
from gaia.schemas.checksum import ROWS_KEY, content_sha256
from gaia.schemas.duplicates import (
    DUPLICATES_FILE,
    DUPLICATES_SCHEMA,
    DUPLICATES_VERSION,
    INPUTS_KEY,
    VERSION_KEY,
)

Log = Callable[[str], None]
LOGGER = logging.getLogger("gaia.pipeline.duplicates")


@dataclass(frozen=True)
class Duplicates:
    """The table as the decision reads it: per copy, its dropped stretches and their match."""

    spans: dict[str, list[tuple[float, float, float]]] = field(default_factory=dict)
    sha256: str = ""  # of the rows: the tune table records which duplicates it was built on

    def match(self, video_id: str, times: np.ndarray) -> np.ndarray:
        """Per frame the best match of a better copy holding it; NaN where none does."""
        out = np.full(len(times), np.nan, np.float32)
        for start, end, match in self.spans.get(video_id, ()):
            inside = (times >= start - 1e-6) & (times <= end + 1e-6)
            out[inside] = np.fmax(out[inside], np.float32(match))
        return out


def fingerprint(run_root: Path, settings: FindSettings) -> str:
    """SHA-256 of what the table is found from (module docstring)."""
    parts = []
    for video in sorted(measured_rows(run_root), key=lambda v: v["video_id"]):
        try:
            stat = (Path(run_root) / "metrics" / f"{video['video_id']}.parquet").stat()
            parts.append([video["video_id"], stat.st_size, stat.st_mtime_ns])
        except OSError:
            parts.append([video["video_id"], None, None])
    text = json.dumps([DUPLICATES_VERSION, settings.to_dict(), parts], sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_trusted(run_root: Path, inputs: str) -> tuple[pa.Table | None, str]:
    """The stored table when it can be trusted for these ``inputs``, else None and why."""
    path = Path(run_root) / DUPLICATES_FILE
    if not path.is_file():
        return None, "is missing"
    try:
        table = pq.read_table(path)
    except Exception as err:  # noqa: BLE001 - whatever broke, an unreadable table is rebuilt
        return None, f"is unreadable ({type(err).__name__})"
    meta = table.schema.metadata or {}
    if meta.get(VERSION_KEY) != str(DUPLICATES_VERSION).encode():
        return None, f"is not of version {DUPLICATES_VERSION}"
    if not table.schema.remove_metadata().equals(DUPLICATES_SCHEMA.remove_metadata()):
        return None, "does not have the duplicates table's columns"
    if meta.get(ROWS_KEY, b"").decode("ascii", "replace") != content_sha256(table.to_pylist()):
        return None, "does not match its checksum (changed or corrupt)"
    if meta.get(INPUTS_KEY, b"").decode("ascii", "replace") != inputs:
        return None, "is behind the run (videos measured since it was found)"
    return table, ""


def write_table(run_root: Path, rows: list[dict], inputs: str) -> pa.Table:
    """``duplicates.parquet``, whole or not at all, sealed with its rows' checksum."""
    table = pa.Table.from_pylist(rows, schema=DUPLICATES_SCHEMA)
    table = table.replace_schema_metadata({
        VERSION_KEY: str(DUPLICATES_VERSION).encode(), INPUTS_KEY: inputs.encode(),
        ROWS_KEY: content_sha256(table.to_pylist()).encode()})
    with atomic_path(Path(run_root) / DUPLICATES_FILE) as tmp:
        pq.write_table(table, tmp)
    return table


def _stamp(run_root: Path) -> tuple:
    """What must not have changed for a checked table to still hold."""
    out = []
    for name in (DUPLICATES_FILE, "videos.parquet", "metrics"):
        try:
            stat = (run_root / name).stat()
            out.append((stat.st_ino, stat.st_size, stat.st_mtime_ns))
        except OSError:
            out.append(None)
    return tuple(out)


_checked: dict[Path, tuple[tuple, Duplicates]] = {}


def ensure_duplicates(run_root: Path, log: Log | None = None,
                      settings: FindSettings | None = None) -> Duplicates:
    """The run's duplicates, the table found first when it is missing or cannot be trusted
    (module docstring); none for a folder without ``videos.parquet``."""
    root = Path(run_root).resolve()
    settings = settings or FindSettings()
    say = log or LOGGER.info
    known = _checked.get(root)
    if known is not None and known[0] == _stamp(root):
        return known[1]
    if not (root / "videos.parquet").is_file():
        return Duplicates()
    inputs = fingerprint(root, settings)
    table, why = read_trusted(root, inputs)
    if table is None:
        say(f"[duplicates] {root / DUPLICATES_FILE} {why}: finding duplicate footage in the "
            "run's stored measures")
        found = find_duplicates(root, settings)
        table = write_table(root, found.rows, inputs)
        if found.unhashed:
            say(f"[duplicates] {found.unhashed} measured video(s) have no frame hashes "
                "(measured before metrics version 5): their copies cannot be found; measure "
                "them again into a new --out to include them")
        say(f"[duplicates] {found.videos} videos, {found.candidates} candidate pairs, "
            f"{len(found.rows)} overlaps found: {_held(found.rows):.1f} s of the run are "
            "copies of footage it holds in a better copy")
    duplicates = _duplicates(table)
    _checked[root] = (_stamp(root), duplicates)
    return duplicates


def _held(rows: list[dict]) -> float:
    """Seconds of the copies' frames the rows cover, each frame once (first to last frame)."""
    spans: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        spans.setdefault(row["video_id"], []).append((row["start_s"], row["end_s"]))
    total = 0.0
    for mine in spans.values():
        mine.sort()
        start, end = mine[0]
        for first, last in mine[1:]:
            if first > end:
                total += end - start
                start = first
            end = max(end, last)
        total += end - start
    return total


def _duplicates(table: pa.Table) -> Duplicates:
    spans: dict[str, list[tuple[float, float, float]]] = {}
    for row in table.select(["video_id", "start_s", "end_s", "match"]).to_pylist():
        spans.setdefault(row["video_id"], []).append((row["start_s"], row["end_s"],
                                                      row["match"]))
    return Duplicates(spans, (table.schema.metadata or {}).get(ROWS_KEY, b"").decode())
