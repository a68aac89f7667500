"""The layout of a curation run's output folder (``--out RUN_DIR``).

::

    RUN_DIR/
      config.yaml        resolved settings, model provenance, library versions
      videos.parquet     one row per input (schemas/videos.py), rebuilt from status/ at the end
      metrics/           one Parquet file per measured video (schemas/metrics.py)
      status/            one JSON per finished input: the record of what is done (resume)
      logs/              the measuring workers' logs
      tune/              the compact tune table (pipeline.compact_table)

``--out`` may also be a store URI (``s3://bucket/runs/r1``): the same layout under that prefix,
written through a local stage (``pipeline.runner.staging``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from gaia.schemas.atomic import atomic_path, write_text_atomic
from gaia.schemas.keys import check_key
from gaia.schemas.videos import VIDEOS_SCHEMA

CONFIG_FILE = "config.yaml"


@dataclass(frozen=True)
class RunDir:
    root: Path

    @property
    def metrics(self) -> Path:
        return self.root / "metrics"

    @property
    def status(self) -> Path:
        return self.root / "status"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def videos(self) -> Path:
        return self.root / "videos.parquet"

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    def make(self) -> None:
        for folder in (self.metrics, self.status, self.logs):
            folder.mkdir(parents=True, exist_ok=True)

    def write_status(self, record: dict) -> None:
        """Mark one input finished; written last, after its metrics file is in place."""
        name = check_key(record["video_id"])
        write_text_atomic(self.status / f"{name}.json", json.dumps(record, sort_keys=True))

    def finished(self) -> dict[str, dict]:
        """Every finished input's record, by video id."""
        records = {}
        for path in sorted(self.status.glob("*.json")):
            record = json.loads(path.read_text(encoding="utf-8"))
            records[record["video_id"]] = record
        return records

    def write_videos_table(self) -> pa.Table:
        """Rebuild ``videos.parquet`` from ``status/`` (atomic) and return it."""
        rows = list(self.finished().values())
        table = pa.Table.from_pylist(rows, schema=VIDEOS_SCHEMA)
        with atomic_path(self.videos) as tmp:
            pq.write_table(table, tmp)
        return table
