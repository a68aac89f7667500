"""``gaia encode-latents``: motion latents of every clip, for the s2m model (paper,
section 4.2; docs/shards.md; the output is ``gaia.schemas.latents``).

The speech-to-motion (s2m) model learns in the VAE's motion latent space, so every frame's
landmarks are rendered and encoded once, with the posterior mean, before training. One Ray Data
row per input shard: an actor loads the VAE once (one GPU per actor where the cluster has GPUs,
else one CPU), reads its shard, writes the latent shard itself and returns a small result row;
frames and latents never travel through Ray's object store (``pipeline.runner.job_runner``).
``use_ray=False`` runs the same per-shard code in this process (tests, debugging). One clip is
``latents.sample``, one shard ``latents.shard``, the merged outputs ``latents.merge``.

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
no time), so no sample is ever written twice. A part carries its own checksum: one that was
changed or cut since it was written is removed, with a line in the log, and its shard encoded
again (``merge.read_part``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gaia.common.storage import is_uri, redact
from gaia.pipeline.latents.merge import (
    BadPartError,
    EncodeMismatchError,
    read_part,
    write_manifest,
    write_stats,
)
from gaia.pipeline.latents.sample import VaeIdentity, vae_identity
from gaia.pipeline.latents.shard import PARTS, encode_shard, shard_stem
from gaia.pipeline.runner.checks import check_workers, output_folder
from gaia.pipeline.runner.job_runner import Job, Placement, run_job
from gaia.pipeline.runner.ray_setup import log_to_stderr
from gaia.pipeline.runner.staging import StagedOut, refresh, staged_output, store_uri
from gaia.schemas.atomic import discard, remove_partials, write_text_atomic
from gaia.schemas.latents import LATENT_SCHEMA_VERSION, STATS_FILE

__all__ = ["EncodeMismatchError", "EncodeSummary", "VaeIdentity", "run_encode_latents",
           "write_stats"]

Log = Callable[[str], None]
ENCODE_FILE = "encode.json"
_OVER = {"train": "the train split", "all": "all clips (none is in the train split)"}


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


def _is_url(url: str) -> bool:
    return url.startswith("pipe:") or "://" in url


def _plan(shards: str, out: Path, given: Path | str) -> list[str]:
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
        if _is_url(url) and is_uri(given) and url.rpartition("/")[0] == given:
            raise EncodeMismatchError(f"--out {given} holds the input shard {url}: write the "
                                      "latents to another prefix")
        if not _is_url(url) and Path(url).parent == out:
            raise EncodeMismatchError(f"--out {out} holds the input shard {url}: write the "
                                      "latents to another folder")
    return list(stems.values())


def _encode_record(out: Path, identity: VaeIdentity, shards: str,
                   condition: dict | None = None) -> dict | None:
    """The ``encode.json`` to write (None: unchanged); refuses an ``out`` of another VAE, or
    of another condition (speech, or instructions by another text encoder)."""
    path = out / ENCODE_FILE
    record = {"latent_schema_version": LATENT_SCHEMA_VERSION, "vae": identity.provenance(),
              "latent_shape": list(identity.latent_shape), "shards": [shards]}
    if condition is not None:
        record["instruction_condition"] = condition
    if not path.is_file():
        return record
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        old = None
    if not isinstance(old, dict) or not isinstance(old.get("vae") or {}, dict):
        # It is what keeps latents of two VAEs apart: never guessed, never rewritten here.
        raise EncodeMismatchError(
            f"{path} is unreadable or not an encode record, so which VAE encoded {out} is "
            "unknown: pass another --out, or delete the folder to start over")
    was = old.get("vae") or {}
    if was.get("sha256") != identity.sha256:
        raise EncodeMismatchError(
            f"{out} holds latents of another VAE ({was.get('checkpoint')}, {was.get('config')} "
            f"step {was.get('step')}, sha256 {str(was.get('sha256'))[:12]}), not of "
            f"{identity.checkpoint} ({identity.config} step {identity.step}, sha256 "
            f"{identity.sha256[:12]}): latents of two VAEs must not be mixed; pass another "
            "--out, or delete this one to start over")
    was_text = (old.get("instruction_condition") or {}).get("sha256")
    if was_text != (condition or {}).get("sha256"):
        held = f"instructions (text encoder sha256 {str(was_text)[:12]})" if was_text else "speech"
        given = "the instructions of this --text-encoder" if condition else "speech"
        raise EncodeMismatchError(f"{out} holds latents conditioned on {held}, not on {given}: "
                                  "conditions must not be mixed; pass another --out")
    if old.get("latent_schema_version") != LATENT_SCHEMA_VERSION:
        raise EncodeMismatchError(
            f"{out} holds latent schema version {old.get('latent_schema_version')}, this "
            f"version writes {LATENT_SCHEMA_VERSION}: pass another --out")
    if shards in old.get("shards", []):
        return None
    return {**record, "shards": [*old.get("shards", []), shards]}


def _drop_untrusted_parts(out: Path, urls: list[str], log: Log) -> None:
    """Remove the parts of this run's shards that cannot be trusted (``read_part``), saying
    which and why: those shards are encoded again, to the same bytes. A bad part of a shard
    this run does not encode is refused before any work, naming it: dropping it would leave
    its latent shard out of the statistics, and keeping it would put wrong sums in them."""
    mine = {shard_stem(url) for url in urls}
    for path in sorted((out / PARTS).glob("*.json")):
        try:
            read_part(path)
        except BadPartError as err:
            if path.stem not in mine:
                raise BadPartError(
                    f"{err}, and its shard is not among the shards of this run: run again with "
                    f"its input shard among them to encode it anew, or delete it and "
                    f"{path.stem}.tar") from None
            log(f"[encode-latents] {err}: its shard is encoded again")
            discard(path)


def _done(out: Path, url: str, identity: VaeIdentity) -> bool:
    """Whether ``url``'s part records a finished shard (read to the end, by this VAE)."""
    path = out / PARTS / f"{shard_stem(url)}.json"
    part = read_part(path)
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
                       text_encoder: str | None = None, allow_untrained: bool = False,
                       log: Log = log_to_stderr) -> EncodeSummary:
    """Encode the clips of ``shards`` (an ``expand_shards`` spec) with the VAE at ``vae`` (a
    checkpoint or a run folder: its latest checkpoint) into latent shards in ``out``
    (module docstring). Running it again on the same ``out`` resumes.

    use_ray: on Ray Data (``address``, else RAY_ADDRESS, else an embedded local Ray) with
    ``workers`` actors (default: one per GPU, else per CPU); False: in this process.
    device: ``cpu`` or ``cuda`` (default: cuda where there is a GPU). batch_frames: frames
    rendered and encoded at once (bounds memory). Settings, ``out``, the VAE checkpoint and
    the input shards are all checked before Ray starts.

    text_encoder: a CLIP text encoder folder; the shards are then instruct shards and each
    latent sample's condition is its instruction (``latents.instruction``; appendix E).
    allow_untrained: accept a text encoder marked untrained (tests, the demo).
    """
    if batch_frames < 1:
        raise ValueError("--batch-frames must be >= 1")
    if device not in (None, "cpu", "cuda"):
        raise ValueError(f"--device {device!r}: cpu or cuda")
    started = time.monotonic()
    given = output_folder(out)
    check_workers(workers)
    checkpoint, identity = vae_identity(vae)
    condition = None
    if text_encoder is not None:  # loaded here once: a bad folder fails before Ray starts
        from gaia.pipeline.latents.instruction import InstructionCondition

        condition = InstructionCondition(text_encoder, "cpu", allow_untrained).provenance
    text = None if text_encoder is None else {"folder": str(text_encoder),
                                              "allow_untrained": allow_untrained,
                                              "provenance": condition}
    with staged_output(given, pull=(ENCODE_FILE, f"{PARTS}/"),
                       log=lambda line: log(f"[encode-latents] {line}")) as root:
        urls = _plan(shards, root, given)
        return _run(root, str(given), shards, urls, checkpoint, identity, started, use_ray,
                    address, workers, device, batch_frames, text, log)


def _run(out: Path, shown: str, shards: str, urls: list[str], checkpoint: Path,
         identity: VaeIdentity, started: float, use_ray: bool, address: str | None,
         workers: int | None, device: str | None, batch_frames: int, text: dict | None,
         log: Log) -> EncodeSummary:
    store = store_uri(out)  # workers upload their shards there when the output is a store

    def prepare() -> None:
        # Refuses another VAE's (or another condition's) out first.
        record = _encode_record(out, identity, shards, text and text["provenance"])
        if removed := remove_partials(out):
            log(f"[encode-latents] removed {removed} partial file(s) left by an interrupted run")
        _drop_untrusted_parts(out, urls, log)
        if record is not None:
            write_text_atomic(out / ENCODE_FILE, json.dumps(record, indent=2, sort_keys=True))

    def merge(items: list[dict], todo: list[dict], rows) -> EncodeSummary:
        summary = EncodeSummary(out=redact(shown) if store else str(out), shards=len(items),
                                shards_skipped=len(items) - len(todo))
        log(f"[encode-latents] {len(items)} shards: {summary.shards_skipped} already done, "
            f"{len(todo)} to encode with {identity.config} step {identity.step} -> "
            f"{summary.out}")
        for row in rows:
            _tally(summary, row, log)
        refresh(out, (f"{PARTS}/",))  # the parts the workers wrote to the store
        write_manifest(out, identity, log)
        summary.stats_split = write_stats(out, identity, log)
        summary.wall_s = time.monotonic() - started
        return summary

    def place(cluster: Mapping[str, float]) -> Placement:
        gpus = int(cluster.get("GPU", 0))
        if device == "cuda" and not gpus:
            raise ValueError("--device cuda, but the Ray cluster has no GPU: use --device cpu")
        if gpus and device != "cpu":
            return Placement({"num_gpus": 1}, gpus, {"device": "cuda"})
        return Placement({"num_cpus": 1}, int(cluster.get("CPU", 1)), {"device": "cpu"})

    return run_job(Job(
        name="encode-latents", out=out, prepare=prepare, merge=merge, place=place,
        plan=lambda: [{"url": url} for url in urls],
        pending=lambda item: None if _done(out, item["url"], identity) else item,
        worker=_EncodeWorker,
        worker_args={"checkpoint": str(checkpoint), "identity": asdict(identity),
                     "out": str(out), "device": device, "batch_frames": batch_frames,
                     "store": store, "text": text},
    ), use_ray=use_ray, address=address, workers=workers, log=log)


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


class _EncodeWorker:
    """Loads the VAE once (per actor, or here), then encodes one shard per call."""

    def __init__(self, checkpoint: str, identity: dict, out: str, device: str | None,
                 batch_frames: int, store: str | None = None, text: dict | None = None
                 ) -> None:
        from gaia.inference.vae import LoadedVae
        from gaia.pipeline.latents.instruction import InstructionCondition

        # An output in a store: this worker writes in its own stage, uploaded file by file.
        self._stage = StagedOut(store) if store else None
        out = str(self._stage.root) if self._stage else out
        self._vae = LoadedVae.load(checkpoint, device)
        self._identity = VaeIdentity(**{**identity,
                                        "latent_shape": tuple(identity["latent_shape"])})
        self._out, self._batch_frames = Path(out), batch_frames
        self._instruction = None
        if text is not None:
            self._instruction = InstructionCondition(text["folder"], device,
                                                     text["allow_untrained"])
            if self._instruction.provenance != text["provenance"]:
                raise ValueError(f"the text encoder at {text['folder']} changed since the job "
                                 "started: run the job again")

    def __call__(self, row: dict) -> dict:
        return encode_shard(self._vae, self._identity, row["url"], self._out,
                            self._batch_frames, self._instruction)

    def close(self) -> None:
        stage, self._stage = getattr(self, "_stage", None), None
        if stage is not None:
            stage.close()

    def __del__(self) -> None:
        self.close()
