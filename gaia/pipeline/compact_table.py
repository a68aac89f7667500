"""Building and reading the compact tune table (``gaia.schemas.tune_table``) of a run.

It sits below the jobs: ``measure`` builds it at the end of a run, ``tune`` reads it (and
builds it when missing). Its columns are the registered filters' (``gaia.filters.registry``).

``build_tune_table`` reads ``metrics/`` one video at a time and writes ``tune/part-NNNNN.arrow``
(Arrow IPC, uncompressed: read back by memory map, no decoding) for every ``VIDEOS_PER_FILE``
videos, plus ``tune/videos.arrow`` listing each video's file, fps and times. Every file is
written to a temporary name and renamed, and ``videos.arrow`` last: a table is whole when that
file exists and names the files present. The table may sit in a shared bucket and be read by
someone else's ``tune``, so nothing in it is trusted: the index records each part file's SHA-256
and a SHA-256 of its own rows (checked on every read), and every row range it gives is checked
against its part file before the compiled pass indexes with it. The index also records the
checksum of the duplicates table its ``duplicate_match`` column came from
(``pipeline.duplicates``): a table found again since makes the tune table stale. A mismatch is a
``TuneTableError``: the table is rebuilt from ``metrics/`` with a message, never read wrong. ``measure`` builds it at the end of a run; ``tune``
builds it when it is missing, and rebuilds it, with a message, when it is stale or unreadable.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from gaia.common.weights import file_sha256
from gaia.filters.registry import coded_columns, exact_columns
from gaia.pipeline.duplicates.table import ensure_duplicates
from gaia.pipeline.measures import measured_videos, read_measures
from gaia.pipeline.run_dir import RunDir
from gaia.schemas.atomic import committed, discard
from gaia.schemas.tune_table import (
    TUNE_TABLE_VERSION,
    VIDEO_FIELDS,
    VIDEOS_PER_FILE,
    frame_schema,
    uniform_start,
)

TUNE_DIR = "tune"
INDEX = "videos.arrow"
DUPLICATES_KEY = "gaia_duplicates_sha256"  # the duplicates table the codes were built on


class TuneTableError(Exception):
    """The table is missing, stale or unreadable; the message says which."""


def _write_ipc(table: pa.Table, path: Path) -> None:
    partial = path.with_name(f".{path.name}.partial")
    with pa.OSFile(str(partial), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    os.replace(partial, path)
    committed(path)


def _rows_sha256(rows: list[dict]) -> str:
    """SHA-256 of the index's rows, canonical JSON (NaN written as such), key by key."""
    text = json.dumps(rows, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _metrics_mtime(run: RunDir, video_id: str) -> int:
    return (run.metrics / f"{video_id}.parquet").stat().st_mtime_ns


def build_tune_table(run_dir: Path, log: Callable[[str], None] = lambda _: None) -> Path:
    """Write the run's tune table (module docstring) and return its folder."""
    run = RunDir(Path(run_dir))
    videos = measured_videos(run)  # first: a folder without measures says so, and gets nothing
    folder = run.root / TUNE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    discard(folder / INDEX)  # the table is incomplete until rewritten
    ensure_duplicates(run.root, log)  # found before any video's codes are read
    coded, exact = coded_columns(), exact_columns()
    schema = frame_schema(coded, exact)
    rows: dict[str, list] = {name: [] for name, _ in VIDEO_FIELDS}
    rows["file"], rows["row"], rows["sha256"] = [], [], []
    for part, first in enumerate(range(0, len(videos), VIDEOS_PER_FILE)):
        name = f"part-{part:05d}.arrow"
        columns: dict[str, list] = {field.name: [] for field in schema}
        offset = 0
        for index, video in enumerate(videos[first:first + VIDEOS_PER_FILE]):
            measures = read_measures(run, video["video_id"])  # the columns the specs read
            times = np.asarray(measures["time_s"], np.float64)
            fps = video["fps"]
            t0 = uniform_start(times, fps)
            columns["video"].append(np.full(len(times), index, np.int32))
            columns["time_s"].append(pa.nulls(len(times), pa.float64()) if t0 is not None
                                     else pa.array(times))
            for column in coded:
                columns[column.name].append(column.encode(measures[column.source]))
            for column, kind in exact.items():
                values = np.asarray(measures[column], np.float32)
                if np.dtype(kind).kind != "f":  # a count: a missing one is none
                    values = np.nan_to_num(values, nan=0)
                columns[column].append(values.astype(kind))
            for key, value in (("video_id", video["video_id"]), ("source", video["source"]),
                               ("fps", fps), ("frames", len(times)),
                               ("uniform", t0 is not None),
                               ("t0", t0 if t0 is not None else float("nan")),
                               ("metrics_mtime_ns", _metrics_mtime(run, video["video_id"])),
                               ("file", name), ("row", offset)):
                rows[key].append(value)
            offset += len(times)
        arrays = []
        for field in schema:
            parts = columns[field.name]
            if field.name == "time_s":
                arrays.append(pa.concat_arrays(parts) if parts else pa.array([], pa.float64()))
            else:
                arrays.append(pa.array(np.concatenate(parts) if parts else [], field.type))
        _write_ipc(pa.Table.from_arrays(arrays, schema=schema), folder / name)
        digest = file_sha256(folder / name)
        rows["sha256"].extend([digest] * (len(rows["file"]) - len(rows["sha256"])))
        log(f"[tune] table {name}: {len(videos[first:first + VIDEOS_PER_FILE])} videos")
    write_index(folder, rows)
    for stale in folder.glob("part-*.arrow"):
        if stale.name not in set(rows["file"]):
            discard(stale)
    return folder


def ensure_tune_table(run_dir: Path, log: Callable[[str], None] = lambda _: None) -> None:
    """Build the run's tune table when its index is missing or stale (the part files are
    checked as they are read)."""
    try:
        read_index(run_dir)
    except TuneTableError as err:
        rebuild_tune_table(run_dir, err, log)


def rebuild_tune_table(run_dir: Path, why: Exception,
                       log: Callable[[str], None] = lambda _: None) -> None:
    """Build the table afresh, saying ``why`` when one was there."""
    if (Path(run_dir) / TUNE_DIR).exists():
        log(f"[tune] {why}: rebuilding the tune table from metrics/")
    build_tune_table(run_dir, log)


def write_index(folder: Path, rows: dict[str, list]) -> None:
    """``videos.arrow``: one row per video (``VIDEO_FIELDS``, its part file and first row);
    written last, it is what makes a table whole. It records the run's duplicates table, which
    the codes were built on."""
    fields = [*(pa.field(n, t) for n, t in VIDEO_FIELDS), pa.field("file", pa.string()),
              pa.field("row", pa.int64()), pa.field("sha256", pa.string())]
    table = pa.Table.from_pydict(rows, schema=pa.schema(fields))
    metadata = {"gaia_tune_table_version": str(TUNE_TABLE_VERSION),
                "gaia_index_sha256": _rows_sha256(table.to_pylist()),
                DUPLICATES_KEY: ensure_duplicates(Path(folder).parent).sha256}
    _write_ipc(table.replace_schema_metadata(metadata), folder / INDEX)


@dataclass
class TableFile:
    """One part file, memory-mapped: its columns as NumPy views, and its videos."""

    columns: dict[str, np.ndarray]
    codes: tuple[np.ndarray, ...]  # uint16 per coded column, in ``coded_columns()`` order
    times: np.ndarray  # float64, NaN where the video is uniform
    videos: list[dict]


def read_index(run_dir: Path) -> list[dict]:
    """The table's video list, checked against the run: every measured video present, its
    metrics file unchanged. Raises ``TuneTableError`` saying what is wrong."""
    run = RunDir(Path(run_dir))
    path = run.root / TUNE_DIR / INDEX
    if not path.is_file():
        raise TuneTableError(f"{path.parent} has no complete tune table")
    try:
        with pa.memory_map(str(path)) as source:
            index = pa.ipc.open_file(source).read_all()
    except (pa.ArrowInvalid, OSError) as err:
        raise TuneTableError(f"{path} is unreadable ({err})") from None
    version = (index.schema.metadata or {}).get(b"gaia_tune_table_version", b"").decode()
    if version != str(TUNE_TABLE_VERSION):
        raise TuneTableError(f"{path} is table version {version or '?'}, this gaia writes "
                             f"{TUNE_TABLE_VERSION}")
    rows = index.to_pylist()
    recorded = (index.schema.metadata or {}).get(b"gaia_index_sha256", b"").decode()
    if recorded != _rows_sha256(rows):
        raise TuneTableError(f"{path} does not match its checksum (changed or corrupt)")
    for row in rows:
        if not _row_in_bounds(row):
            raise TuneTableError(f"{path} has an impossible row for {row.get('video_id')!r}")
    wanted = {v["video_id"] for v in measured_videos(run)}
    if {r["video_id"] for r in rows} != wanted:
        raise TuneTableError(f"{path} lists other videos than {run.videos}")
    built_on = (index.schema.metadata or {}).get(DUPLICATES_KEY.encode(), b"").decode()
    if built_on != ensure_duplicates(run.root).sha256:
        raise TuneTableError(f"the duplicates table changed after {path} was written")
    for row in rows:
        try:
            changed = _metrics_mtime(run, row["video_id"]) != row["metrics_mtime_ns"]
        except OSError:
            changed = True
        if changed:
            raise TuneTableError(f"the metrics of {row['video_id']} changed after the tune "
                                 "table was written")
    return rows


def _row_in_bounds(row: dict) -> bool:
    """An index row whose numbers the compiled pass can use (ranges are checked per file)."""
    name = row.get("file") or ""
    numbers_ok = (isinstance(row.get("row"), int) and isinstance(row.get("frames"), int)
                  and row["row"] >= 0 and row["frames"] >= 0
                  and isinstance(row.get("fps"), float) and math.isfinite(row["fps"])
                  and row["fps"] > 0)
    return numbers_ok and name.startswith("part-") and name == os.path.basename(name)


def by_file(rows: list[dict]) -> dict[str, list[dict]]:
    """The index rows grouped by part file, in file order."""
    by_file: dict[str, list[dict]] = {}
    for row in rows:
        by_file.setdefault(row["file"], []).append(row)
    return dict(sorted(by_file.items()))


def _column(table: pa.Table, name: str) -> np.ndarray:
    """A column as a NumPy view of the mapped file (one chunk, no nulls: no copy)."""
    column = table.column(name)
    if column.num_chunks == 1 and column.null_count == 0:
        return column.chunk(0).to_numpy(zero_copy_only=True)
    return column.to_numpy()


def load_table_file(run_dir: Path, name: str, videos: list[dict]) -> TableFile:
    """One part file, memory-mapped (its code columns are views, not copies), with the index
    rows of its videos, checked against them; ``times`` is read only when a video of the file
    needs it. ``TuneTableError`` for a torn or foreign file."""
    path = Path(run_dir) / TUNE_DIR / name
    try:
        if {v.get("sha256") for v in videos} != {file_sha256(path)}:
            raise TuneTableError(f"{path} does not match the checksum its index records "
                                 "(changed or corrupt)")
        with pa.memory_map(str(path)) as source:
            table = pa.ipc.open_file(source).read_all()
        coded = coded_columns()
        wanted = frame_schema(coded, exact_columns())  # the registered filters' specs
        if not table.schema.remove_metadata().equals(wanted.remove_metadata(),
                                                     check_metadata=True):
            raise TuneTableError(f"{path} does not have the tune table's columns (written "
                                 "under other filter specs?)")
        if len(table) != sum(v["frames"] for v in videos):
            raise TuneTableError(f"{path} holds {len(table)} frames, its index lists "
                                 f"{sum(v['frames'] for v in videos)}")
        start = 0  # the videos tile the file in order: each range inside it, none overlapping
        for video in sorted(videos, key=lambda v: v["row"]):
            if video["row"] != start or video["row"] + video["frames"] > len(table):
                raise TuneTableError(f"{path}: the index's rows for {video['video_id']!r} "
                                     "fall outside the file")
            start += video["frames"]
        columns = {field.name: _column(table, field.name)
                   for field in table.schema if field.name != "time_s"}
        times = np.zeros(0, np.float64)
        if not all(video["uniform"] for video in videos):
            times = np.asarray(table.column("time_s").to_numpy(zero_copy_only=False),
                               np.float64)
    except (pa.ArrowInvalid, OSError, KeyError) as err:
        raise TuneTableError(f"{path} is unreadable ({err})") from None
    codes = tuple(columns[c.name] for c in coded)
    return TableFile(columns, codes, times, videos)
