"""``gaia encode-latents``: motion latents of every clip, for the diffusion model (paper,
section 4.2; DESIGN.md sections 5 and 6; the output is ``gaia.schemas.latents``).

The speech-to-motion diffusion model learns in the VAE's motion latent space, so every frame's
landmarks are rendered and encoded once, with the posterior mean, before training. One Ray Data
row per input shard: an actor loads the VAE once (one GPU per actor where the cluster has GPUs,
else one CPU), reads its shard, writes the latent shard itself and returns a small result row;
frames and latents never travel through Ray's object store. ``use_ray=False`` runs the same
per-shard code in this process (tests, debugging).

Layout of ``out/`` (a folder every worker can write: local, or shared on a cluster):

- ``<stem>.tar``: the latent samples of input shard ``<stem>.tar`` (none if it held no usable
  clip), written under a temporary name and renamed;
- ``parts/<stem>.json``: written after the tar, the shard's completion record: every sample's
  ``{key, status, reason, frames, split}``, the shard's error if it could not be read to the
  end, and float64 sums and sums of squares of motion, pose and speech over its train and all
  frames;
- ``encode.json``: the VAE (checkpoint name, step, sha256, config) and the shard specs used; a
  run with another VAE on the same ``out`` is refused;
- ``stats.json`` and ``manifest.parquet``: merged from every part at the end of each run.

Resume: a shard whose part exists (and records no read error) is skipped; one whose tar was
renamed but whose part was not is encoded again, to identical bytes (the tar's headers carry
no time), so no sample is ever written twice.
"""

from __future__ import annotations

import io
import json
import math
import tarfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from gaia.common.crop import to_model_pixels
from gaia.common.weights import file_sha256
from gaia.pipeline.runner.ray_setup import actor_pool, init_ray, log_to_stderr
from gaia.schemas.atomic import atomic_path, remove_partials, write_text_atomic
from gaia.schemas.keys import check_key, sanitize
from gaia.schemas.latents import (
    LATENT_SCHEMA_VERSION,
    STATS_FILE,
    read_latent_sample,
    reference_frame,
)
from gaia.schemas.shards import (
    FRAME_SIZE,
    N_LANDMARKS,
    SPLITS,
    check_member,
    dump_npy,
    load_npy,
)

Log = Callable[[str], None]
ENCODE_FILE = "encode.json"
MANIFEST_FILE = "manifest.parquet"
PARTS = "parts"
_OVER = {"train": "the train split", "all": "all clips (none is in the train split)"}
STD_FLOOR_VAR = 1e-12  # std = sqrt(max(var, this)): a constant dimension must not divide by 0


class EncodeMismatchError(ValueError):
    """``out`` already holds latents that this run's inputs or VAE must not be mixed with."""


@dataclass(frozen=True)
class VaeIdentity:
    """Which VAE made the latents: recorded in ``encode.json``, every sample and the stats."""

    checkpoint: str  # file name of the checkpoint
    step: int
    sha256: str
    config: str  # the VAE config's name, e.g. vae-base
    latent_shape: tuple[int, int, int]  # (C, h, w) of the motion latent

    def provenance(self) -> dict:
        return {"checkpoint": self.checkpoint, "step": self.step, "sha256": self.sha256,
                "config": self.config}


@dataclass
class EncodeSummary:
    """What one run did (this run only) and where its outputs are."""

    out: str = ""
    shards: int = 0
    shards_encoded: int = 0
    shards_skipped: int = 0
    shards_failed: int = 0
    clips_encoded: int = 0
    clips_skipped: dict[str, int] = field(default_factory=dict)
    frames: int = 0
    wall_s: float = 0.0
    stats_split: str | None = None

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    def lines(self) -> list[str]:
        skipped = ", ".join(f"{k}: {v}" for k, v in sorted(self.clips_skipped.items()))
        return [
            f"latents: {self.out}",
            f"shards: {self.shards} in the spec, {self.shards_encoded} encoded now, "
            f"{self.shards_skipped} already done, {self.shards_failed} failed (see parts/)",
            f"clips: {self.clips_encoded} encoded, skipped {skipped or 'none'}",
            f"frames: {self.frames} in {self.wall_s:.1f} s ({self.frames_per_s:.1f} frames/s)",
            f"stats: {STATS_FILE} over {_OVER.get(self.stats_split, '')}" if self.stats_split
            else f"stats: no clip encoded, no {STATS_FILE}",
        ]

    def to_json(self) -> dict:
        return {**asdict(self), "frames_per_s": self.frames_per_s}


# ---------------------------------------------------------------- the VAE and one clip


def vae_identity(vae: str | Path) -> tuple[Path, VaeIdentity]:
    """The checkpoint file of ``vae`` (a file or a run folder's latest) and its identity.

    Read memory-mapped: the driver needs the step and the config, not the weights.
    """
    import torch

    from gaia.training.checkpoint import resolve_checkpoint
    from gaia.training.vae.config import build_vae_config

    checkpoint = resolve_checkpoint(vae)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
    task = state.get("task") if isinstance(state, dict) else None
    if not isinstance(task, dict) or "model" not in task or "config" not in task:
        raise ValueError(f"{checkpoint} is not a VAE checkpoint of `gaia train vae` (it has no "
                         "task.model and task.config): pass --vae a VAE run or checkpoint")
    config = build_vae_config(task["config"])
    return checkpoint, VaeIdentity(checkpoint.name, int(state.get("step", 0)),
                                   file_sha256(checkpoint), config.name,
                                   tuple(config.motion_latent_shape))


def encode_landmarks(vae, landmarks: np.ndarray, crop_size: float, batch_frames: int
                     ) -> np.ndarray:
    """Landmarks ``(frames, 68, 2)`` in pixels of the ``crop_size`` crop -> motion latents
    ``(frames, D)`` float32: posterior means of the rendered landmarks (``vae``: a
    ``LoadedVae``), ``batch_frames`` frames at a time."""
    import torch

    # As the training loader maps them through its resize: pixel centres stay centres.
    points = to_model_pixels(landmarks.astype(np.float32), crop_size, vae.config.image_size)
    latents = []
    for start in range(0, len(points), batch_frames):
        batch = torch.from_numpy(np.ascontiguousarray(points[start:start + batch_frames]))
        latents.append(vae.motion_latents(batch).flatten(1).float().cpu().numpy())
    return np.concatenate(latents).astype(np.float32, copy=False)


class Skip(Exception):
    """A sample that gives no latent sample: ``status`` (``no_audio``, ``failed``) and why."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def _field(meta: dict, name: str, kind: type | tuple[type, ...]):
    value = meta.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise Skip("failed", f"source json field {name!r} missing or of the wrong type")
    return value


def _array(members: dict[str, bytes], name: str, dtype, shape: tuple) -> np.ndarray:
    """A source array checked against the shard spec (``None`` in ``shape``: any length)."""
    if name not in members:
        raise Skip("failed", f"missing member {name}")
    try:
        array = load_npy(members[name])
    except ValueError as err:
        raise Skip("failed", f"{name} is not a plain .npy array: {err}") from err
    if array.dtype != dtype:
        raise Skip("failed", f"{name} has dtype {array.dtype}, the shard spec says "
                             f"{np.dtype(dtype)}")
    if array.ndim != len(shape) or any(w is not None and w != n
                                       for w, n in zip(shape, array.shape, strict=True)):
        raise Skip("failed", f"{name} has shape {array.shape}, expected {shape}")
    return array


def source_meta(sample: dict) -> tuple[dict[str, bytes], dict]:
    """A source sample's members and JSON, checked as far as the latents need; raises ``Skip``
    (``no_audio`` for a clip without speech, else ``failed``)."""
    members = {name: blob for name, blob in sample.items() if not name.startswith("__")}
    try:
        for name in members:
            check_member(name)  # before anything is parsed: never touch a pickle
        meta = json.loads(members["json"].decode("utf-8")) if "json" in members else None
        key = str(sample.get("__key__"))
        check_key(key)
    except (UnicodeDecodeError, ValueError) as err:
        raise Skip("failed", str(err)) from err
    if not isinstance(meta, dict):
        raise Skip("failed", "json member missing or not an object")
    if meta.get("key") != key:
        raise Skip("failed", f"json key {meta.get('key')!r} is not the sample key {key!r}")
    if not isinstance(meta.get("has_audio"), bool):
        raise Skip("failed", "source json field 'has_audio' missing or not a boolean")
    if not meta["has_audio"]:
        raise Skip("no_audio", "the clip has no audio; the diffusion model needs speech")
    for name, kind in (("frames", int), ("split", str), ("fps", (int, float)),
                       ("identity", str), ("source_video", str)):
        _field(meta, name, kind)
    if meta["frames"] < 1 or meta["split"] not in SPLITS:
        raise Skip("failed", f"source json frames {meta['frames']} or split {meta['split']!r} "
                             "is invalid")
    provenance = meta.get("provenance")
    if not isinstance(provenance, dict) or not isinstance(provenance.get("speech_features"),
                                                          dict):
        raise Skip("failed", "source json has no provenance.speech_features")
    crop_size = meta.setdefault("crop_size", FRAME_SIZE[0])  # older shards: the frame size
    if not isinstance(crop_size, int | float) or isinstance(crop_size, bool) or crop_size <= 0:
        raise Skip("failed", f"source json crop_size {crop_size!r} is not a positive number")
    return members, meta


def latent_sample(vae, identity: VaeIdentity, sample: dict, batch_frames: int,
                  source_shard: str = "") -> tuple[dict[str, bytes], dict]:
    """One source sample (WebDataset dict of member bytes) -> its latent members and the arrays
    its statistics need (``motion``, ``pose``, ``speech``, ``meta``). Raises ``Skip``."""
    members, meta = source_meta(sample)
    frames, features = meta["frames"], meta["provenance"]["speech_features"]
    landmarks = _array(members, "landmarks.npy", np.float32, (frames, N_LANDMARKS, 2))
    pose = _array(members, "pose.npy", np.float32, (frames, 3))
    speech = _array(members, "speech.npy", np.float16, (2 * frames, None))
    if isinstance(features.get("dim"), int) and speech.shape[1] != features["dim"]:
        raise Skip("failed", f"speech.npy has {speech.shape[1]} features, its provenance says "
                             f"{features['dim']}")
    if not np.isfinite(landmarks).all():
        raise Skip("failed", "landmarks.npy holds non-finite values")
    motion = encode_landmarks(vae, landmarks, float(meta["crop_size"]), batch_frames)
    reference = reference_frame(pose)
    latent_json = {
        **{name: meta[name] for name in ("key", "frames", "fps", "split", "identity",
                                         "source_video")},
        "latent_schema_version": LATENT_SCHEMA_VERSION, "reference_frame": reference,
        "latent_shape": list(identity.latent_shape), "vae": identity.provenance(),
        "speech_features": features, "source_shard": source_shard,
        "start_s": meta.get("start_s"), "end_s": meta.get("end_s"),
        "provenance": meta["provenance"],
    }
    out = {
        "motion.npy": dump_npy(motion), "reference.npy": dump_npy(motion[reference]),
        "speech.npy": dump_npy(speech), "pose.npy": dump_npy(pose),
        "json": json.dumps(latent_json, sort_keys=True).encode("utf-8"),
    }
    try:
        read_latent_sample(out)  # what the trainer will check, checked before it is written
    except ValueError as err:
        raise Skip("failed", f"latent sample invalid: {err}") from err
    return out, {"motion": motion, "pose": pose, "speech": speech, "meta": latent_json}


# ---------------------------------------------------------------- one shard


class Moments:
    """Row count, float64 sums and sums of squares of motion, pose and speech rows."""

    NAMES = ("motion", "pose", "speech")

    def __init__(self, state: dict | None = None) -> None:
        state = state or {}
        self.frames, self.clips = int(state.get("frames", 0)), int(state.get("clips", 0))
        self.speech_rows = int(state.get("speech_rows", 0))
        self.sums = {n: np.asarray(state[f"{n}_sum"], np.float64) for n in self.NAMES
                     if f"{n}_sum" in state}
        self.squares = {n: np.asarray(state[f"{n}_sumsq"], np.float64) for n in self.NAMES
                        if f"{n}_sumsq" in state}

    def add(self, arrays: dict[str, np.ndarray]) -> None:
        for name in self.NAMES:  # all checked before any is added: never half a clip
            if name in self.sums and self.sums[name].shape != arrays[name].shape[1:]:
                raise ValueError(f"{name} has {arrays[name].shape[1]} dimensions, earlier "
                                 f"clips {self.sums[name].shape[0]}")
        for name in self.NAMES:
            rows = arrays[name].astype(np.float64)
            self.sums[name] = self.sums.get(name, 0.0) + rows.sum(0)
            self.squares[name] = self.squares.get(name, 0.0) + np.square(rows).sum(0)
        self.frames += len(arrays["motion"])
        self.speech_rows += len(arrays["speech"])
        self.clips += 1

    def merge(self, other: Moments) -> None:
        for name in other.sums:
            if name in self.sums and self.sums[name].shape != other.sums[name].shape:
                raise ValueError(f"{name} dimensions differ between shards: "
                                 f"{self.sums[name].shape[0]} and {other.sums[name].shape[0]}")
            self.sums[name] = self.sums.get(name, 0.0) + other.sums[name]
            self.squares[name] = self.squares.get(name, 0.0) + other.squares[name]
        self.frames += other.frames
        self.speech_rows += other.speech_rows
        self.clips += other.clips

    def mean_std(self, name: str) -> tuple[list[float], list[float]]:
        count = self.speech_rows if name == "speech" else self.frames
        mean = self.sums[name] / count
        var = self.squares[name] / count - np.square(mean)
        return mean.tolist(), np.sqrt(np.maximum(var, STD_FLOOR_VAR)).tolist()

    def to_json(self) -> dict:
        state = {"frames": self.frames, "clips": self.clips, "speech_rows": self.speech_rows}
        for name in self.sums:
            state[f"{name}_sum"] = self.sums[name].tolist()
            state[f"{name}_sumsq"] = self.squares[name].tolist()
        return state


def shard_stem(url: str) -> str:
    """The output name of an input shard: its file name without ``.tar``, sanitised."""
    name = url.rstrip("/").rsplit("/", 1)[-1]
    return sanitize(name.removesuffix(".tar"), max_len=120)


def _read_samples(url: str, errors: list[Exception]) -> Iterator[dict]:
    import webdataset as wds

    # The handler records the error and returns None: webdataset stops reading the shard.
    yield from wds.tarfile_to_samples(handler=errors.append)([{"url": url}])


def _add_member(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0  # no time: re-encoding is identical
    archive.addfile(info, io.BytesIO(data))


class _NothingWritten(Exception):
    pass


def _encode_one(vae, identity: VaeIdentity, sample: dict, batch_frames: int, shard: str,
                written: set[str], moments: dict[str, Moments]) -> tuple[dict, dict | None]:
    """One sample's status row and latent members (None when skipped); adds to ``moments``."""
    key = str(sample.get("__key__"))
    try:
        if key in written:  # webdataset groups by neighbours: a key seen before is a repeat
            raise Skip("failed", f"key {key} appears twice in the shard; the first is kept")
        members, arrays = latent_sample(vae, identity, sample, batch_frames, shard)
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


def encode_shard(vae, identity: VaeIdentity, url: str, out: Path, batch_frames: int) -> dict:
    """Encode one input shard into ``out/<stem>.tar`` and ``out/parts/<stem>.json``; return a
    small result row. A bad sample or an unreadable shard is recorded, never raised."""
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
                                           written, moments)
                for name, blob in (members or {}).items():
                    _add_member(archive, f"{row['key']}.{name}", blob)
                if (provenance := row.pop("speech_features")) is not None:
                    features[json.dumps(provenance, sort_keys=True)] = provenance
                samples.append(row)
            if not any(s["status"] == "ok" for s in samples):
                raise _NothingWritten  # no empty tar: a trainer's worker would find no sample
    except _NothingWritten:
        final.unlink(missing_ok=True)  # an earlier attempt's tar, if any, is not this one's
    error = f"{type(errors[0]).__name__}: {errors[0]}" if errors else None
    ok = [s for s in samples if s["status"] == "ok"]
    part = {
        "source": url, "source_name": url.rstrip("/").rsplit("/", 1)[-1],
        "output": final.name if ok else None, "error": error, "vae": identity.sha256,
        "latent_schema_version": LATENT_SCHEMA_VERSION, "samples": samples,
        "speech_features": [features[k] for k in sorted(features)],
        "stats": {split: m.to_json() for split, m in moments.items()},
    }
    write_text_atomic(out / PARTS / f"{stem}.json", json.dumps(part, sort_keys=True))
    skipped = Counter(s["status"] for s in samples if s["status"] != "ok")
    return {"stem": stem, "url": url, "error": error, "clips": len(ok),
            "frames": sum(s["frames"] for s in ok), "skipped": json.dumps(dict(skipped)),
            "seconds": time.monotonic() - started}


# ---------------------------------------------------------------- the job


def _is_url(url: str) -> bool:
    return url.startswith("pipe:") or "://" in url


def _plan(shards: str, out: Path) -> list[str]:
    """Input shard urls (local paths made absolute, for workers); refuses two inputs with one
    output name, and an ``out`` that would overwrite an input."""
    from gaia.training.data.shard_stream import expand_shards

    urls = [url if _is_url(url) else str(Path(url).resolve()) for url in expand_shards(shards)]
    stems: dict[str, str] = {}
    for url in urls:
        stem = shard_stem(url)
        if stem in stems and stems[stem] != url:
            raise EncodeMismatchError(
                f"input shards {stems[stem]} and {url} would both be written as {stem}.tar: "
                "encode them into different --out folders")
        stems[stem] = url
        if not _is_url(url) and Path(url).parent == out:
            raise EncodeMismatchError(f"--out {out} holds the input shard {url}: write the "
                                      "latents to another folder")
    return list(stems.values())


def _encode_record(out: Path, identity: VaeIdentity, shards: str) -> dict | None:
    """The ``encode.json`` to write (None: unchanged); refuses an ``out`` of another VAE."""
    path = out / ENCODE_FILE
    record = {"latent_schema_version": LATENT_SCHEMA_VERSION, "vae": identity.provenance(),
              "latent_shape": list(identity.latent_shape), "shards": [shards]}
    if not path.is_file():
        return record
    old = json.loads(path.read_text(encoding="utf-8"))
    was = old.get("vae") or {}
    if was.get("sha256") != identity.sha256:
        raise EncodeMismatchError(
            f"{out} holds latents of another VAE ({was.get('checkpoint')}, {was.get('config')} "
            f"step {was.get('step')}, sha256 {str(was.get('sha256'))[:12]}), not of "
            f"{identity.checkpoint} ({identity.config} step {identity.step}, sha256 "
            f"{identity.sha256[:12]}): latents of two VAEs must not be mixed; pass another "
            "--out, or delete this one to start over")
    if old.get("latent_schema_version") != LATENT_SCHEMA_VERSION:
        raise EncodeMismatchError(
            f"{out} holds latent schema version {old.get('latent_schema_version')}, this "
            f"version writes {LATENT_SCHEMA_VERSION}: pass another --out")
    if shards in old.get("shards", []):
        return None
    return {**record, "shards": [*old.get("shards", []), shards]}


def _read_part(path: Path) -> dict | None:
    try:
        part = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return part if isinstance(part, dict) else None


def _done(out: Path, url: str, identity: VaeIdentity) -> bool:
    """Whether ``url``'s part records a finished shard (read to the end, by this VAE)."""
    path = out / PARTS / f"{shard_stem(url)}.json"
    part = _read_part(path)
    if part is None:
        return False
    if part.get("source_name") != url.rstrip("/").rsplit("/", 1)[-1]:
        raise EncodeMismatchError(f"{path} records shard {part.get('source')}, not {url}, "
                                  "under the same output name: pass another --out")
    if part.get("vae") != identity.sha256:
        raise EncodeMismatchError(f"{path} was written with another VAE: pass another --out")
    return part.get("error") is None  # a shard that was not read to the end is tried again


def run_encode_latents(vae: str | Path, shards: str, out: Path, *, use_ray: bool = True,
                       address: str | None = None, workers: int | None = None,
                       device: str | None = None, batch_frames: int = 256,
                       log: Log = log_to_stderr) -> EncodeSummary:
    """Encode the clips of ``shards`` (an ``expand_shards`` spec) with the VAE at ``vae`` (a
    checkpoint or a run folder: its latest checkpoint) into latent shards in ``out``
    (module docstring). Running it again on the same ``out`` resumes.

    use_ray: on Ray Data (``address``, else RAY_ADDRESS, else an embedded local Ray) with
    ``workers`` actors (default: one per GPU, else per CPU); False: in this process.
    device: ``cpu`` or ``cuda`` (default: cuda where there is a GPU). batch_frames: frames
    rendered and encoded at once (bounds memory).
    """
    if batch_frames < 1:
        raise ValueError("--batch-frames must be >= 1")
    if device not in (None, "cpu", "cuda"):
        raise ValueError(f"--device {device!r}: cpu or cuda")
    started = time.monotonic()
    out = Path(out).resolve()
    checkpoint, identity = vae_identity(vae)
    urls = _plan(shards, out)
    record = _encode_record(out, identity, shards)
    if removed := (remove_partials(out) if out.is_dir() else 0):
        log(f"[encode-latents] removed {removed} partial file(s) left by an interrupted run")
    todo = [url for url in urls if not _done(out, url, identity)]
    if record is not None:
        write_text_atomic(out / ENCODE_FILE, json.dumps(record, indent=2, sort_keys=True))
    summary = EncodeSummary(out=str(out), shards=len(urls), shards_skipped=len(urls) - len(todo))
    log(f"[encode-latents] {len(urls)} shards: {summary.shards_skipped} already done, "
        f"{len(todo)} to encode with {identity.config} step {identity.step} -> {out}")
    if todo:
        rows = (_encode_on_ray(todo, checkpoint, identity, out, batch_frames, address, workers,
                               device) if use_ray
                else _encode_here(todo, checkpoint, identity, out, batch_frames, device))
        for row in rows:
            _tally(summary, row, log)
    _write_manifest(out, identity, log)
    summary.stats_split = write_stats(out, identity, log)
    summary.wall_s = time.monotonic() - started
    return summary


def _tally(summary: EncodeSummary, row: dict, log: Log) -> None:
    """Count one finished shard's result row and print its progress line."""
    skipped = json.loads(row["skipped"])
    for status, count in skipped.items():
        summary.clips_skipped[status] = summary.clips_skipped.get(status, 0) + count
    summary.clips_encoded += row["clips"]
    summary.frames += row["frames"]
    summary.shards_failed += bool(row["error"])
    summary.shards_encoded += not row["error"]
    shown = ", ".join(f"{k} {v}" for k, v in sorted(skipped.items()))
    log(f"[encode-latents] {row['stem']}.tar: {row['clips']} clips, {row['frames']} frames in "
        f"{row['seconds']:.1f} s" + (f"; skipped {shown}" if shown else "")
        + (f"; FAILED: {row['error']}" if row["error"] else ""))


def _encode_here(todo: list[str], checkpoint: Path, identity: VaeIdentity, out: Path,
                 batch_frames: int, device: str | None) -> Iterator[dict]:
    from gaia.inference.vae import LoadedVae

    loaded = LoadedVae.load(checkpoint, device)
    for url in todo:
        yield encode_shard(loaded, identity, url, out, batch_frames)


class _EncodeActor:
    """A Ray Data actor: loads the VAE once, then encodes one shard per call."""

    def __init__(self, checkpoint: str, identity: dict, out: str, device: str,
                 batch_frames: int) -> None:
        import torch

        from gaia.inference.vae import LoadedVae

        if device == "cpu":
            torch.set_num_threads(1)  # one CPU per actor: more threads only fight each other
        self._vae = LoadedVae.load(checkpoint, device)
        self._identity = VaeIdentity(**{**identity,
                                        "latent_shape": tuple(identity["latent_shape"])})
        self._out, self._batch_frames = Path(out), batch_frames

    def __call__(self, row: dict) -> dict:
        return encode_shard(self._vae, self._identity, row["url"], self._out,
                            self._batch_frames)


def _encode_on_ray(todo: list[str], checkpoint: Path, identity: VaeIdentity, out: Path,
                   batch_frames: int, address: str | None, workers: int | None,
                   device: str | None) -> Iterator[dict]:
    import ray
    import ray.data

    cpus = init_ray(address)
    gpus = int(ray.cluster_resources().get("GPU", 0))
    if device == "cuda" and not gpus:
        raise ValueError("--device cuda, but the Ray cluster has no GPU: use --device cpu")
    on_gpu = gpus > 0 and device != "cpu"
    resources = {"num_gpus": 1} if on_gpu else {"num_cpus": 1}
    dataset = ray.data.from_items([{"url": url} for url in todo],
                                  override_num_blocks=len(todo)).map(
        _EncodeActor,
        fn_constructor_kwargs={"checkpoint": str(checkpoint), "identity": asdict(identity),
                               "out": str(out), "device": "cuda" if on_gpu else "cpu",
                               "batch_frames": batch_frames},
        compute=actor_pool(workers, gpus if on_gpu else cpus, len(todo)),
        **resources,
    )
    yield from dataset.iter_rows()


# ---------------------------------------------------------------- merging the parts


def _parts(out: Path, identity: VaeIdentity) -> list[tuple[str, dict]]:
    """Every shard's part, oldest runs' included; all must come from this VAE."""
    parts = []
    for path in sorted((out / PARTS).glob("*.json")):
        part = _read_part(path)
        if part is None:
            raise ValueError(f"{path} is not a JSON object: delete it and run again to encode "
                             "its shard anew")
        if part.get("vae") != identity.sha256:
            raise EncodeMismatchError(f"{path} was written with another VAE: pass another --out")
        parts.append((path.stem, part))
    return parts


def _write_manifest(out: Path, identity: VaeIdentity, log: Log) -> None:
    """``manifest.parquet``: one row per latent sample (key, shard, frames, split)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"key": s["key"], "shard": part["output"], "frames": s["frames"],
             "split": s["split"]}
            for _, part in _parts(out, identity) for s in part["samples"] if s["status"] == "ok"]
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
    for stem, part in _parts(out, identity):
        for item in part.get("speech_features", []):
            features.setdefault(json.dumps(item, sort_keys=True), (item, stem))
        for split, moments in totals.items():
            moments.merge(Moments(part["stats"][split]))
    if len(features) > 1:
        stats_path.unlink(missing_ok=True)
        shown = "; ".join(f"{stem}.tar: {item}" for item, stem in features.values())
        raise EncodeMismatchError(
            f"clips in {out} have different speech features ({shown}): the diffusion model "
            f"conditions on one kind; no {STATS_FILE} written. Encode clips of one feature "
            "extractor per --out")
    split = "train" if totals["train"].frames else "all"
    moments = totals[split]
    if not moments.frames:
        stats_path.unlink(missing_ok=True)
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
