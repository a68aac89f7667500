"""The parts of every shard (this run's and earlier runs') merged into ``manifest.parquet``
and ``stats.json`` at the end of each ``gaia encode-latents`` run."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from gaia.pipeline.latents.sample import VaeIdentity
from gaia.pipeline.latents.shard import PARTS
from gaia.pipeline.runner.ray_setup import log_to_stderr
from gaia.schemas.atomic import atomic_path, discard, write_text_atomic
from gaia.schemas.checksum import unseal
from gaia.schemas.latents import LATENT_SCHEMA_VERSION, STATS_FILE
from gaia.schemas.moments import Moments

MANIFEST_FILE = "manifest.parquet"
Log = Callable[[str], None]


class EncodeMismatchError(ValueError):
    """``out`` already holds latents that this run's inputs or VAE must not be mixed with."""


class BadPartError(ValueError):
    """A shard's part that cannot be trusted; the message names the file and why."""


def read_part(path: Path) -> dict | None:
    """A shard's part (None: there is none yet, so the shard is to be encoded).

    Raises ``BadPartError`` for a part that cannot be trusted: unreadable, changed since it
    was written (it carries its checksum, ``schemas.checksum``), or of the wrong shape. Its
    sums become ``stats.json``, which every s2m trainer normalises with, so a part that still
    parses after a flipped digit must not be taken as it is.
    """
    try:
        part = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:  # UnicodeDecodeError is a ValueError
        raise BadPartError(f"{path} is unreadable ({type(err).__name__})") from None
    if not isinstance(part, dict):
        raise BadPartError(f"{path} is not a JSON object")
    part, intact = unseal(part)
    if intact is False:
        raise BadPartError(f"{path} does not match its checksum (changed or corrupt since it "
                           "was written)")
    # Parts of older versions carry no checksum: they are trusted when their shape is right
    # (encoding every shard again on an upgrade would cost the whole encoding run).
    if why := _shape_problem(part):
        raise BadPartError(f"{path} {why}")
    return part


def _shape_problem(part: dict) -> str | None:
    """What of a part's fields the merge could not read (None: all of it can)."""
    for name, kind in (("source_name", str), ("vae", str), ("samples", list),
                       ("speech_features", list), ("stats", dict)):
        if not isinstance(part.get(name), kind):
            return f"has no {name} of the right type"
    if any(not isinstance(part.get(name), (str, type(None))) for name in ("output", "error")):
        return "has a wrong output or error"
    for sample in part["samples"]:
        if not (isinstance(sample, dict) and isinstance(sample.get("key"), str)
                and isinstance(sample.get("status"), str)):
            return "has a sample without a key or status"
        if sample["status"] == "ok" and not (
                isinstance(sample.get("frames"), int) and isinstance(sample.get("split"), str)
                and isinstance(part["output"], str)):
            return f"has an encoded sample {sample['key'][:80]!r} without frames, split or shard"
    if not all(isinstance(item, dict) for item in part["speech_features"]):
        return "has speech features that are not objects"
    for split in ("train", "all"):
        try:
            moments = Moments(part["stats"].get(split))
        except (TypeError, ValueError, AttributeError):
            return f"has unreadable {split} statistics"
        if moments.sums.keys() != moments.squares.keys() or any(
                moments.sums[name].ndim != 1 or moments.squares[name].shape
                != moments.sums[name].shape for name in moments.sums):
            return f"has {split} statistics of the wrong shape"
    return None


def read_parts(out: Path, identity: VaeIdentity) -> list[tuple[str, dict]]:
    """Every shard's part, oldest runs' included; all must come from this VAE."""
    parts = []
    for path in sorted((out / PARTS).glob("*.json")):
        try:
            part = read_part(path)
        except BadPartError as err:
            raise BadPartError(f"{err}: delete it and run again with its input shard among "
                               "the shards to encode it anew") from None
        if part is None:  # removed since the folder was listed
            continue
        if part.get("vae") != identity.sha256:
            raise EncodeMismatchError(f"{path} was written with another VAE: pass another --out")
        parts.append((path.stem, part))
    return parts


def write_manifest(out: Path, identity: VaeIdentity, log: Log) -> None:
    """``manifest.parquet``: one row per latent sample (key, shard, frames, split)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"key": s["key"], "shard": part["output"], "frames": s["frames"],
             "split": s["split"]}
            for _, part in read_parts(out, identity) for s in part["samples"] if s["status"] == "ok"]
    counts = Counter(row["key"] for row in rows)
    if repeated := sorted(key for key, n in counts.items() if n > 1):
        log(f"[encode-latents] warning: keys in more than one input shard: {repeated[:5]}")
    schema = pa.schema([("key", pa.string()), ("shard", pa.string()), ("frames", pa.int32()),
                        ("split", pa.string())])
    table = pa.Table.from_pylist(sorted(rows, key=lambda r: (r["key"], r["shard"])),
                                 schema=schema)
    with atomic_path(out / MANIFEST_FILE) as tmp:
        pq.write_table(table, tmp)


def write_stats(out: Path, identity: VaeIdentity, log: Log = log_to_stderr) -> str | None:
    """Merge every part's sums into ``out/stats.json``; returns the split the statistics are
    over (``train``, or ``all`` when no clip is in train), None when no clip was encoded.
    Refuses clips whose speech features differ (the model conditions on one kind)."""
    stats_path = out / STATS_FILE
    totals = {"train": Moments(), "all": Moments()}
    features: dict[str, tuple[dict, str]] = {}
    for stem, part in read_parts(out, identity):
        for item in part.get("speech_features", []):
            features.setdefault(json.dumps(item, sort_keys=True), (item, stem))
        for split, moments in totals.items():
            moments.merge(Moments(part["stats"][split]))
    if len(features) > 1:
        discard(stats_path)
        shown = "; ".join(f"{stem}.tar: {item}" for item, stem in features.values())
        raise EncodeMismatchError(
            f"clips in {out} have different speech features ({shown}): the s2m model "
            f"conditions on one kind; no {STATS_FILE} written. Encode clips of one feature "
            "extractor per --out")
    split = "train" if totals["train"].frames else "all"
    moments = totals[split]
    if not moments.frames:
        discard(stats_path)
        log(f"[encode-latents] no clip encoded: no {STATS_FILE}")
        return None
    if split == "all":
        log("[encode-latents] no clip in the train split: statistics are over all clips")
    stats = {"frames": moments.frames, "clips": moments.clips, "split": split,
             "speech_rows": moments.speech_rows, "latent_shape": list(identity.latent_shape),
             "vae": identity.provenance(), "speech_features": next(iter(features.values()))[0],
             "latent_schema_version": LATENT_SCHEMA_VERSION}
    for name in Moments.NAMES:
        stats[f"{name}_mean"], stats[f"{name}_std"] = moments.mean_std(name)
        if not all(math.isfinite(v) for v in stats[f"{name}_mean"]):
            raise ValueError(f"{name} statistics are not finite: check the parts in {out / PARTS}")
    write_text_atomic(stats_path, json.dumps(stats, indent=1, sort_keys=True))
    return split
