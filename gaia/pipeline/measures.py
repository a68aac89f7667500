"""A run's measures, read back: its measured videos and their per-frame columns.

``measure`` writes ``videos.parquet`` (one row per input) and ``metrics/{video_id}.parquet``
(one row per frame); every job that decides from them (``tune``, ``extract``, the tune table)
reads them here, one video in memory at a time. The columns read are the ones the registered
filters need (``gaia.filters.registry.measure_columns``). ``DERIVED`` columns are not stored per
frame but derived here from run-wide tables: ``duplicate_match`` from ``duplicates.parquet``
(``pipeline.duplicates``, found first when missing, stale or corrupt), so that every job that
decides frames sees the same duplicates. Asked for (``cues=True``: decisions that follow
instructions, the ``instruct`` preset, appendix E), a measured video's row also carries its
timed text (``cues``: ``gaia.schemas.cues.VideoCues``, None when measured before gaia read
sidecars); otherwise ``cues`` is None and the cue columns are not read (a corpus's cues are
many Python objects that no other preset needs).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gaia.filters.base import Measures
from gaia.filters.instruct.actions import NoCueData
from gaia.filters.registry import measure_columns
from gaia.pipeline.duplicates.table import ensure_duplicates
from gaia.pipeline.run_dir import RunDir
from gaia.schemas.cues import CUE_COLUMNS, video_cues
from gaia.schemas.duplicates import MATCH_COLUMN
from gaia.schemas.metrics import ADDED_IN
from gaia.schemas.videos import video_fps

VIDEO_COLUMNS = ("video_id", "path", "source", "status", "fps")
DERIVED = (MATCH_COLUMN,)  # per-frame columns of run-wide tables (module docstring)


def measured_videos(run: RunDir, cues: bool = False) -> list[dict]:
    """Rows of ``videos.parquet`` whose status is ok (they have a metrics file); ``fps`` is
    the rate the video is decided at (``schemas.videos.video_fps``: never missing); ``cues``
    its timed text when asked for, else None (module docstring)."""
    if not run.videos.is_file():
        raise FileNotFoundError(f"{run.videos} not found: run `gaia curate measure ... --out "
                                f"{run.root}` first")
    stored = set(pq.read_schema(run.videos).names) if cues else set()  # older: no cue columns
    table = pq.read_table(run.videos, columns=[*VIDEO_COLUMNS,
                                               *(c for c in CUE_COLUMNS if c in stored)])
    rows = [row for row in table.to_pylist() if row["status"] == "ok"]
    for row in rows:
        row["fps"] = video_fps(row["fps"])
        row["cues"] = video_cues({name: row.pop(name, None) for name in CUE_COLUMNS})
    return rows


def require_cues(run: RunDir) -> None:
    """``NoCueData``, saying what to run, when a measured video of ``run`` has no timed text:
    clips that follow instructions need it."""
    videos = measured_videos(run, cues=True)
    missing = [video["video_id"] for video in videos if video["cues"] is None]
    if missing:
        raise NoCueData(
            f"{len(missing)} of the {len(videos)} measured videos of {run.root} (e.g. "
            f"{missing[0]}) were measured before gaia read timed-text sidecars, so there are no "
            "instructions to follow: run `gaia curate measure INPUT... --out "
            f"{run.root}` again with the same inputs (videos already measured are not measured "
            "again; only their X.cues.json, X.srt or X.vtt sidecars are read), then this "
            "command. Presets that cut segments (vae, s2m) need no cues.")


def read_measures(run: RunDir, video_id: str, columns: Sequence[str] | None = None
                  ) -> Measures:
    """One video's measures as NumPy arrays (float columns keep their type), nulls as NaN;
    ``columns`` defaults to what the filters read."""
    columns = list(measure_columns() if columns is None else columns)
    # One thread: jobs run videos side by side, and per-file threads only contend.
    parquet = pq.ParquetFile(run.metrics / f"{video_id}.parquet", memory_map=True)
    present = set(parquet.schema_arrow.names)
    later = [name for name in columns if name not in present and name in ADDED_IN]
    derived = [name for name in columns if name in DERIVED]
    stored = [c for c in columns if c not in later and c not in derived]
    if derived and "time_s" not in stored:
        stored.append("time_s")
    derive = "sync_agreement" in later and {"sync_offset_frames", "sync_confidence",
                                            "time_s"} <= present
    table = parquet.read(columns=stored, use_threads=False)
    out = {name: np.full(table.num_rows, np.nan, np.float32) for name in later}
    if derive:  # a run measured before version 4: the agreement follows from its lags
        out["sync_agreement"] = _agreement(parquet)
    if derived:  # a frame of a better copy's footage: its match (NaN: no copy holds it)
        out[MATCH_COLUMN] = ensure_duplicates(run.root).match(
            video_id, table.column("time_s").to_numpy())
    for name in columns:
        if name in later or name in derived:
            continue
        values = table.column(name)
        if values.null_count and not pa.types.is_floating(values.type):
            values = values.cast(pa.float32())
        out[name] = values.to_numpy()
    return out


def _agreement(parquet: pq.ParquetFile) -> np.ndarray:
    """``sync_agreement`` from a metrics file's stored lags, at its mean frame rate."""
    from gaia.filters.av_sync import lag_agreement

    lags = parquet.read(columns=["time_s", "sync_offset_frames", "sync_confidence"],
                        use_threads=False)
    times = lags.column("time_s").to_numpy()
    fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] \
        else 25.0
    return lag_agreement(lags.column("sync_offset_frames").to_numpy(zero_copy_only=False),
                         lags.column("sync_confidence").to_numpy(zero_copy_only=False), fps)


def decision_columns(extra: Sequence[str] = ()) -> list[str]:
    """The columns the filters read, then ``extra`` ones not among them (one read for both)."""
    columns = list(measure_columns())
    return columns + [name for name in extra if name not in columns]


def iter_measures(run: RunDir, cues: bool = False, extra: Sequence[str] = ()
                  ) -> Iterator[tuple[dict, Measures]]:
    """Every measured video's row (with its ``cues`` when asked for) and measures, one video
    in memory at a time: the columns the filters read, and ``extra`` ones in the same read."""
    columns = decision_columns(extra)
    for video in measured_videos(run, cues):
        yield video, read_measures(run, video["video_id"], columns)
