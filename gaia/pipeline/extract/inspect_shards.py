"""Check a folder of shards against the sample spec (docs/shards.md).

Every ``*.tar`` must read to its end-of-archive marker (a cut shard is named), hold only
``KEY.MEMBER`` regular files grouped by key, and each group must be a valid sample
(``validate_sample``); keys are unique over all shards. When ``manifest.parquet`` is there it
must list exactly the keys found, with their shard and frame count, and match the checksum
extract wrote into it; ``stats.json`` is read into the report as is.
"""

from __future__ import annotations

import json
import tarfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from gaia.schemas.checksum import ROWS_KEY, content_sha256
from gaia.schemas.keys import check_key
from gaia.schemas.shards import FPS, MANIFEST_SCHEMA, validate_sample

MANIFEST = "manifest.parquet"
STATS = "stats.json"


@dataclass(frozen=True)
class SampleSeen:
    """What the manifest check needs of a sample found in a shard."""

    shard: str
    frames: int | None
    split: str | None
    has_audio: bool | None


@dataclass(frozen=True)
class InspectReport:
    shards_dir: Path
    shards: int
    samples: int
    frames: int
    problems: tuple[str, ...]
    by_split: dict[str, int] = field(default_factory=dict)
    with_audio: int = 0
    num_bytes: int = 0
    manifest_rows: int | None = None  # None: no manifest.parquet
    stats: dict | None = None  # stats.json as read, None when absent
    identities: int = 0  # distinct identities of the samples
    crossing: int = 0  # identities found in more than one split (each is also a problem)

    @property
    def hours(self) -> float:
        return self.frames / FPS / 3600

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        splits = ", ".join(f"{name} {count}" for name, count in sorted(self.by_split.items()))
        manifest = "absent" if self.manifest_rows is None else f"{self.manifest_rows} rows"
        lines = [
            f"shards        {self.shards} ({self.num_bytes / 2**20:.1f} MiB)",
            f"samples       {self.samples} ({self.with_audio} with audio)",
            f"frames        {self.frames} ({self.hours:.4f} h at {FPS} fps)",
            f"by split      {splits or '-'}",
            f"identities    {self.identities}, "
            + (f"{self.crossing} in more than one split" if self.crossing
               else "none in two splits"),
            f"manifest      {manifest}",
            f"stats.json    {'absent' if self.stats is None else 'read'}",
            f"problems      {len(self.problems)}" + ("" if self.problems else " (ok)"),
        ]
        return lines + [f"  - {problem}" for problem in self.problems]

    def to_json(self) -> dict:
        return {
            "shards_dir": str(self.shards_dir), "ok": self.ok, "shards": self.shards,
            "samples": self.samples, "frames": self.frames, "hours": self.hours,
            "by_split": dict(self.by_split), "with_audio": self.with_audio,
            "num_bytes": self.num_bytes, "manifest_rows": self.manifest_rows,
            "stats": self.stats, "identities": self.identities,
            "identities_in_two_splits": self.crossing, "problems": list(self.problems),
        }


def inspect_shards(shards_dir: Path, decode_media: bool = True) -> InspectReport:
    """Read every shard in ``shards_dir`` and report what breaks the spec."""
    shards_dir = Path(shards_dir)
    if not shards_dir.is_dir():
        raise FileNotFoundError(f"no such folder: {shards_dir}")
    paths = sorted(shards_dir.glob("*.tar"))
    problems: list[str] = [] if paths else [f"no *.tar shards in {shards_dir}"]
    seen: dict[str, SampleSeen] = {}
    splits: Counter[str] = Counter()
    frames = with_audio = 0
    splits_of: dict[str, set[str]] = {}  # identity -> the splits its samples are in
    for path in paths:
        for key, members in _samples(path, problems):
            found = validate_sample(members, decode_media=decode_media, key=key)
            problems += [f"{path.name}: {key}: {problem}" for problem in found]
            meta = _meta(members.get("json"))
            count = meta.get("frames") if isinstance(meta.get("frames"), int) else None
            if key in seen:
                problems.append(f"{path.name}: {key}: duplicate key, also in {seen[key].shard}")
                continue
            seen[key] = SampleSeen(path.name, count, meta.get("split"), meta.get("has_audio"))
            frames += count or 0
            with_audio += meta.get("has_audio") is True
            splits[meta["split"] if isinstance(meta.get("split"), str) else "unknown"] += 1
            if isinstance(meta.get("identity"), str):
                splits_of.setdefault(meta["identity"], set()).add(str(meta.get("split")))
    # The split is decided per person so that validation never sees a training speaker.
    crossing = sorted(identity for identity, where in splits_of.items() if len(where) > 1)
    problems += [f"identity {identity} is in more than one split "
                 f"({', '.join(sorted(splits_of[identity]))})" for identity in crossing]
    manifest_rows = None
    if (shards_dir / MANIFEST).exists():
        manifest_rows = _check_manifest(shards_dir / MANIFEST, seen, problems)
    stats = _read_stats(shards_dir / STATS, problems)
    return InspectReport(
        shards_dir=shards_dir, shards=len(paths), samples=len(seen), frames=frames,
        problems=tuple(problems), by_split=dict(splits), with_audio=with_audio,
        num_bytes=sum(path.stat().st_size for path in paths), manifest_rows=manifest_rows,
        stats=stats, identities=len(splits_of), crossing=len(crossing),
    )


def _meta(blob: bytes | None) -> dict:
    try:
        meta = json.loads(blob.decode("utf-8")) if blob is not None else {}
    except (UnicodeDecodeError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _samples(path: Path, problems: list[str]) -> Iterator[tuple[str, dict[str, bytes]]]:
    """``(key, {member: bytes})`` per run of consecutive members with one key, as WebDataset
    groups them; a shard that does not read to its end-of-archive marker is a problem."""
    key, members = None, {}
    try:
        with tarfile.open(path, mode="r:") as tar:
            end = 0
            for info in tar:
                end = info.offset_data + -(-info.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
                if not info.isfile():
                    problems.append(f"{path.name}: {info.name!r} is not a regular file")
                    continue
                this_key, _, member = info.name.partition(".")
                if key is not None and this_key != key:
                    yield key, members
                    key, members = None, {}
                if not _named_well(path, info.name, this_key, member, problems):
                    continue
                key = this_key
                if member in members:
                    problems.append(f"{path.name}: {info.name} appears twice")
                members[member] = tar.extractfile(info).read()
    except (tarfile.TarError, OSError, EOFError) as err:
        problems.append(f"{path.name}: unreadable or truncated tar ({type(err).__name__}: "
                        f"{err}); samples after the break are lost")
        end = None
    if key is not None:
        yield key, members
    if end is not None and not _has_end_marker(path, end):
        problems.append(f"{path.name}: truncated or corrupt tar: no end-of-archive marker "
                        f"after the last whole member (byte {end})")


def _named_well(path: Path, name: str, key: str, member: str, problems: list[str]) -> bool:
    if "/" in name or not member:
        problems.append(f"{path.name}: {name!r} is not named KEY.MEMBER")
        return False
    try:
        check_key(key)
    except ValueError as err:
        problems.append(f"{path.name}: {name!r}: {err}")
        return False
    return True


def _has_end_marker(path: Path, end: int) -> bool:
    """Two zero blocks at ``end``: tarfile stops quietly at a cut header, so check by hand."""
    with open(path, "rb") as handle:
        handle.seek(end)
        marker = handle.read(2 * tarfile.BLOCKSIZE)
    return len(marker) == 2 * tarfile.BLOCKSIZE and not any(marker)


def _check_manifest(path: Path, seen: dict[str, SampleSeen], problems: list[str]) -> int | None:
    """Compare ``manifest.parquet`` with the samples found; returns its row count."""
    try:
        table = pq.read_table(path)
    except Exception as err:  # noqa: BLE001 - an unreadable manifest is a problem to report
        problems.append(f"{MANIFEST}: unreadable: {err}")
        return None
    bad_schema = False
    for want in MANIFEST_SCHEMA:
        index = table.schema.get_field_index(want.name)
        if index < 0 or table.schema.field(index).type != want.type:
            got = "missing" if index < 0 else str(table.schema.field(index).type)
            problems.append(f"{MANIFEST}: column {want.name} should be {want.type}, is {got}")
            bad_schema = True
    if bad_schema:
        return table.num_rows
    recorded = (table.schema.metadata or {}).get(ROWS_KEY)  # none in older versions' manifests
    if recorded is not None and recorded.decode("ascii", "replace") != content_sha256(
            table.to_pylist()):
        # A changed value in a column the checks below do not compare would pass unseen.
        problems.append(f"{MANIFEST}: does not match its checksum (changed or corrupt since "
                        "it was written); run `gaia curate extract` again to rebuild it")
    listed: dict[str, dict] = {}
    for row in table.select([f.name for f in MANIFEST_SCHEMA]).to_pylist():
        key = row["key"]
        if key in listed:
            problems.append(f"{MANIFEST}: {key} listed twice")
        listed[key] = row
        sample = seen.get(key)
        if sample is None:
            problems.append(f"{MANIFEST}: {key} is listed but in no shard")
            continue
        checks = (("shard", sample.shard), ("frames", sample.frames),
                  ("split", sample.split), ("has_audio", sample.has_audio))
        for column, actual in checks:  # None: the sample's json did not say
            if actual is not None and row[column] != actual:
                problems.append(f"{MANIFEST}: {key}: {column} is {row[column]!r}, "
                                f"the shard says {actual!r}")
    for key in sorted(seen.keys() - listed.keys()):
        problems.append(f"{MANIFEST}: {key} (in {seen[key].shard}) is missing from the manifest")
    return table.num_rows


def _read_stats(path: Path, problems: list[str]) -> dict | None:
    if not path.exists():
        return None
    try:
        stats = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        problems.append(f"{STATS}: does not parse: {err}")
        return None
    if not isinstance(stats, dict):
        problems.append(f"{STATS}: not a JSON object")
        return None
    return stats
