"""One input shard encoded into its latent shard ``OUT/<stem>.tar`` and its completion record
``OUT/parts/<stem>.json`` (what ``gaia encode-latents`` resumes from; see ``latents.job``)."""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from gaia.pipeline.latents.sample import Skip, VaeIdentity, latent_sample
from gaia.schemas.atomic import atomic_path, discard, write_text_atomic
from gaia.schemas.checksum import seal
from gaia.schemas.keys import sanitize
from gaia.schemas.latents import LATENT_SCHEMA_VERSION
from gaia.schemas.moments import Moments

PARTS = "parts"


def shard_stem(url: str) -> str:
    """The output name of an input shard: its file name without ``.tar``, sanitised."""
    name = url.rstrip("/").rsplit("/", 1)[-1]
    return sanitize(name.removesuffix(".tar"), max_len=120)


def _read_samples(url: str, errors: list[Exception]) -> Iterator[dict]:
    from gaia.training.data.shard_read import shard_samples

    # The handler records the error and returns None: the shard is read no further.
    yield from shard_samples(url, errors.append)


def _add_member(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0  # no time: re-encoding is identical
    archive.addfile(info, io.BytesIO(data))


class _NothingWritten(Exception):
    pass


def _encode_one(vae, identity: VaeIdentity, sample: dict, batch_frames: int, shard: str,
                written: set[str], moments: dict[str, Moments], instruction=None
                ) -> tuple[dict, dict | None]:
    """One sample's status row and latent members (None when skipped); adds to ``moments``."""
    key = str(sample.get("__key__"))
    try:
        if key in written:  # webdataset groups by neighbours: a key seen before is a repeat
            raise Skip("failed", f"key {key} appears twice in the shard; the first is kept")
        members, arrays = latent_sample(vae, identity, sample, batch_frames, shard,
                                        instruction)
        for split in ("all", arrays["meta"]["split"]):  # all first: it checks dimensions
            if split in moments:  # (val clips count in "all" only)
                moments[split].add(arrays)
    except Skip as skip:
        return {"key": key, "status": skip.status, "reason": skip.reason, "frames": None,
                "split": None, "speech_features": None}, None
    except Exception as err:  # noqa: BLE001 - one bad sample never stops the shard
        return {"key": key, "status": "failed", "reason": f"{type(err).__name__}: {err}",
                "frames": None, "split": None, "speech_features": None}, None
    meta = arrays["meta"]
    return {"key": key, "status": "ok", "reason": "", "frames": meta["frames"],
            "split": meta["split"], "speech_features": meta["speech_features"]}, members


def encode_shard(vae, identity: VaeIdentity, url: str, out: Path, batch_frames: int,
                 instruction=None) -> dict:
    """Encode one input shard into ``out/<stem>.tar`` and ``out/parts/<stem>.json``; return a
    small result row. A bad sample or an unreadable shard is recorded, never raised.
    ``instruction``: an ``InstructionCondition`` (instruct shards, ``--text-encoder``)."""
    started = time.monotonic()
    stem = shard_stem(url)
    final = out / f"{stem}.tar"
    errors: list[Exception] = []
    samples: list[dict] = []
    moments = {"train": Moments(), "all": Moments()}
    features: dict[str, dict] = {}
    try:
        with atomic_path(final) as tmp, tarfile.open(tmp, "w") as archive:
            for sample in _read_samples(url, errors):
                written = {s["key"] for s in samples if s["status"] == "ok"}
                row, members = _encode_one(vae, identity, sample, batch_frames, final.name,
                                           written, moments, instruction)
                for name, blob in (members or {}).items():
                    _add_member(archive, f"{row['key']}.{name}", blob)
                if (provenance := row.pop("speech_features")) is not None:
                    features[json.dumps(provenance, sort_keys=True)] = provenance
                samples.append(row)
            if not any(s["status"] == "ok" for s in samples):
                raise _NothingWritten  # no empty tar: a trainer's worker would find no sample
    except _NothingWritten:
        discard(final)  # an earlier attempt's tar, if any, is not this one's
    error = f"{type(errors[0]).__name__}: {errors[0]}" if errors else None
    ok = [s for s in samples if s["status"] == "ok"]
    part = {
        "source": url, "source_name": url.rstrip("/").rsplit("/", 1)[-1],
        "output": final.name if ok else None, "error": error, "vae": identity.sha256,
        "latent_schema_version": LATENT_SCHEMA_VERSION, "samples": samples,
        "speech_features": [features[k] for k in sorted(features)],
        "stats": {split: m.to_json() for split, m in moments.items()},
    }
    # Sealed with its checksum (``schemas.checksum``): a resume trusts no changed part.
    write_text_atomic(out / PARTS / f"{stem}.json", json.dumps(seal(part), sort_keys=True))
    skipped = Counter(s["status"] for s in samples if s["status"] != "ok")
    return {"stem": stem, "url": url, "error": error, "clips": len(ok),
            "frames": sum(s["frames"] for s in ok), "skipped": json.dumps(dict(skipped)),
            "seconds": time.monotonic() - started}
