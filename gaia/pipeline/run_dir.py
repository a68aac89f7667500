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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from gaia.schemas.atomic import atomic_path, write_text_atomic
from gaia.schemas.checksum import seal, unseal
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
        """Mark one input finished; written last, after its metrics file is in place. The
        record carries its own checksum (``schemas.checksum``): a resume trusts no changed
        record."""
        name = check_key(record["video_id"])
        write_text_atomic(self.status / f"{name}.json", json.dumps(seal(record), sort_keys=True))

    def finished(self, log: Callable[[str], None] = lambda _: None) -> dict[str, dict]:
        """Every finished input's record, by video id.

        A record that cannot be trusted (unreadable, changed since it was written, or not a
        record of the video its file is named for) is left out with a line in ``log``, so its
        video counts as not finished and a resume measures it again. That is the safe choice
        rather than refusing the run: the record is written last, after the video's metrics
        file, so a bad record says no more than a missing one (a kill before it was written),
        which resume already handles by measuring the video again under the same settings
        (``config.yaml`` is checked) and replacing both files whole. Refusing would only make
        the user delete the file by hand for the same result.
        """
        records = {}
        for path in sorted(self.status.glob("*.json")):
            record, why = _read_status(path)
            if record is None:
                log(f"{path} {why}: its video counts as not measured and is measured again "
                    "when it is among the inputs")
                continue
            records[record["video_id"]] = record
        return records

    def write_videos_table(self, log: Callable[[str], None] = lambda _: None) -> pa.Table:
        """Rebuild ``videos.parquet`` from ``status/`` (atomic) and return it."""
        rows = list(self.finished(log).values())
        table = pa.Table.from_pylist(rows, schema=VIDEOS_SCHEMA)
        with atomic_path(self.videos) as tmp:
            pq.write_table(table, tmp)
        return table


def _read_status(path: Path) -> tuple[dict | None, str]:
    """A status record and ``""``, or None and why it cannot be trusted."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # UnicodeDecodeError is a ValueError
        return None, f"is unreadable ({type(err).__name__})"
    if not isinstance(record, dict):
        return None, "is not a JSON object"
    record, intact = unseal(record)
    if intact is False:
        return None, "does not match its checksum (changed or corrupt since it was written)"
    # Records of older versions carry no checksum: their shape is still checked, so a wrong
    # one is measured again instead of breaking videos.parquet.
    if record.get("video_id") != path.stem:
        return None, f"names video {str(record.get('video_id'))[:80]!r}, not {path.stem!r}"
    if wrong := _wrong_types(record):
        return None, f"has a wrong value for {wrong}"
    return record, ""


def _wrong_types(record: dict) -> str | None:
    """The first ``VIDEOS_SCHEMA`` column whose value in ``record`` it cannot hold."""
    if record.get("status") not in ("ok", "failed"):
        return "status"
    for field in VIDEOS_SCHEMA:
        value = record.get(field.name)
        if value is None:
            if field.name in ("path", "source", "reason"):
                return field.name
            continue
        if not _holds(field.type, value):
            return field.name
    return None


def _holds(kind: pa.DataType, value: object) -> bool:
    if pa.types.is_string(kind):
        return isinstance(value, str)
    if pa.types.is_boolean(kind):
        return isinstance(value, bool)
    if pa.types.is_integer(kind):
        bits = kind.bit_width - 1
        return isinstance(value, int) and not isinstance(value, bool) and (
            -(2 ** bits) <= value < 2 ** bits)
    if pa.types.is_floating(kind):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if pa.types.is_fixed_size_list(kind) and (
            not isinstance(value, list) or len(value) != kind.list_size):
        return False
    if pa.types.is_list(kind) or pa.types.is_fixed_size_list(kind):
        return isinstance(value, list) and all(
            item is None or _holds(kind.value_type, item) for item in value)
    if pa.types.is_struct(kind):  # a stored cue (schemas.cues)
        return isinstance(value, dict) and all(
            value.get(field.name) is None or _holds(field.type, value[field.name])
            for field in kind)
    return False
