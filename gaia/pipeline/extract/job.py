"""``gaia curate extract``: the kept segments of a measured run, as WebDataset shards.

Paper, section 4 and appendix A.1; docs/shards.md. The segments come from
``gaia.filters.funnel.decide_video``, the very function tune reports with, so what tune says is
what gets cut. One Ray Data row per video with kept segments (frames stay in the workers); each
worker decodes only those segments and returns one small row per clip; the driver is the single
writer of the shards (``pipeline.extract.shard_writer``), so shards have their target size and the manifest is
exact. A shard's manifest rows are written only after the shard is complete: the manifest is
the record a killed job resumes from, with no duplicate and no missing clip.

Layout: ``RUN_DIR/shards/PRESET/{shard-000000.tar, ..., manifest.parquet, stats.json,
failures.parquet, .manifest/}``.

Under thresholds that follow instructions (the ``instruct`` preset, appendix E) each clip is
the action after an instruction cue (``decide_video``'s ``actions``), and its sample carries
``instruction.json`` (``gaia.schemas.instruction``).
"""

from __future__ import annotations

import json
import tarfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from gaia.common.crop import CropConfig
from gaia.filters.funnel import Funnel, decide_video
from gaia.filters.instruct.actions import Action
from gaia.filters.segments import Segment
from gaia.filters.thresholds import CurationThresholds
from gaia.pipeline.extract.settings import (
    ExtractConfig,
    ExtractSetup,
    audio_chain,
    check_extract,
    split_of,
)
from gaia.pipeline.extract.shard_writer import ShardInfo, ShardWriter
from gaia.pipeline.extract.video import ClipJob, extract_video, output_frames
from gaia.pipeline.identities.clip_identity import clip_identity
from gaia.pipeline.identities.table import ensure_identities
from gaia.pipeline.measures import iter_measures, require_cues
from gaia.pipeline.run_dir import CONFIG_FILE, RunDir
from gaia.pipeline.runner.checks import check_workers, output_folder
from gaia.pipeline.runner.job_runner import Job, run_job
from gaia.pipeline.runner.ray_setup import log_to_stderr
from gaia.pipeline.runner.staging import stage_of, staged_output, store_uri
from gaia.pipeline.speech.denoise import denoise_identity
from gaia.schemas.atomic import atomic_path, discard, remove_partials, write_text_atomic
from gaia.schemas.checksum import ROWS_KEY, content_sha256
from gaia.schemas.instruction import Instruction
from gaia.schemas.keys import check_key, sanitize
from gaia.schemas.shards import FPS, MANIFEST_SCHEMA, MEMBERS, SHARD_SCHEMA_VERSION, manifest_row

Log = Callable[[str], None]


@dataclass
class ExtractSummary:
    clips_planned: int = 0
    clips_done_before: int = 0
    clips_written: int = 0
    clips_failed: int = 0
    shards: int = 0
    hours: float = 0.0
    wall_s: float = 0.0
    by_split: dict = field(default_factory=dict)
    out: str = ""

    def lines(self) -> list[str]:
        return [
            f"shards: {self.out}",
            f"clips: {self.clips_planned} planned, {self.clips_done_before} already done, "
            f"{self.clips_written} written now, {self.clips_failed} failed",
            f"total: {self.shards} shards, {self.hours:.4f} h, by split "
            + ", ".join(f"{k}: {v}" for k, v in sorted(self.by_split.items())),
            f"this run: {self.wall_s:.1f} s",
        ]


def plan(run: RunDir, thresholds: CurationThresholds, config: ExtractConfig,
         identities: dict[str, str], log: Log = lambda _: None
         ) -> tuple[list[list[ClipJob]], Funnel]:
    """Every clip to cut, grouped by video, and the funnel it comes from.

    A clip's identity (its split) is the user's CSV entry for its video, else the run-wide
    identity of its main face (``pipeline.identities``), else, for a run without face
    embeddings, its source folder."""
    groups: list[list[ClipJob]] = []
    total = Funnel()
    people = ensure_identities(run.root, lambda line: log(f"[extract] {line}"))
    if people is None:
        log("[extract] splits go by source folder: the run has no run-wide identities")
    if thresholds.instructions.enabled:  # said before any video is decided
        require_cues(run)
    # Each frame's person comes in the same read: a clip's identity is its main face's.
    for video, measures in iter_measures(run, cues=thresholds.instructions.enabled,
                                         extra=("person",) if people is not None else ()):
        decision = decide_video(measures, video["fps"], video["source"], thresholds,
                                video["cues"])
        total = total + decision.funnel
        given = identities.get(video["path"]) or identities.get(video["video_id"])
        persons = measures.get("person")
        jobs = []
        for i, segment in enumerate(decision.segments):
            if output_frames(segment) <= 0:
                continue
            identity = given or clip_identity(people, video["video_id"], persons, segment) or (
                video["source"])
            instruction = (_instruction(decision.actions[i], segment, video, thresholds)
                           if decision.actions else None)
            jobs.append(ClipJob(check_key(f"{video['video_id']}_{i:04d}"), video["video_id"],
                                video["path"], identity, split_of(identity, config.val_fraction),
                                i, segment, instruction))
        if jobs:
            groups.append(jobs)
    return groups, total


def _instruction(action: Action, segment: Segment, video: dict,
                 thresholds: CurationThresholds) -> dict:
    """The ``instruction.json`` of the clip ``segment`` that follows ``action`` (its fields:
    ``gaia.schemas.instruction``), as plain values for the clip's job."""
    return asdict(Instruction(
        text=action.text, cue_start_s=action.cue_start_s, cue_end_s=action.cue_end_s,
        offset_s=segment.start_s - action.cue_end_s, window_end_s=action.window_end_s,
        cue_index=action.cue_index, sidecar=video["cues"].sidecar,
        mode=thresholds.instructions.mode))


def run_extract(run_dir: Path | str, preset: str, overrides: list[str] | None = None,
                config: ExtractConfig | None = None, identities_csv: str | None = None,
                address: str | None = None, workers: int | None = None,
                log: Log = log_to_stderr, use_ray: bool = True,
                setup: ExtractSetup | None = None) -> ExtractSummary:
    """Extract the clips of ``run_dir`` under ``preset`` into ``RUN_DIR/shards/PRESET``.

    ``run_dir``: a folder, or a store URI (``pipeline.runner.staging``): the measures are read
    from the store, and each shard is uploaded as it is finished, before its manifest part.

    ``use_ray=False`` cuts the clips in this process, one video after another (tests,
    debugging): the same per-video code and the same writer, without a cluster. ``setup``:
    the result of ``check_extract`` for these settings, when the caller checked them first.
    """
    given = output_folder(run_dir, "RUN_DIR")
    check_workers(workers)
    setup = setup or check_extract(preset, overrides, config, identities_csv)
    folder = f"shards/{sanitize(Path(preset).stem)}"
    with staged_output(given, pull=(CONFIG_FILE, "videos.parquet", "status/", "metrics/",
                                    "tune/", "duplicates.parquet", "identities.parquet", f"{folder}/"),
                       log=lambda line: log(f"[extract] {line}")) as root:
        run = RunDir(root)
        if not run.videos.is_file():
            raise FileNotFoundError(f"{given} is not a measured run (no {run.videos.name}): "
                                    f"run `gaia curate measure ... --out {given}` first")
        return _run(run, run.root / folder, preset, setup, address, workers, log, use_ray)


def _run(run: RunDir, out: Path, preset: str, setup: ExtractSetup, address: str | None,
         workers: int | None, log: Log, use_ray: bool) -> ExtractSummary:
    config, overrides = setup.config, list(setup.overrides)
    parts = out / ".manifest"
    base_json = _base_json(run, setup)
    stage = stage_of(run.root)

    def prepare() -> None:
        parts.mkdir(parents=True, exist_ok=True)
        if removed := remove_partials(out):
            log(f"[extract] removed {removed} partial file(s) left by an interrupted run")
        shards = {path.name for path in out.glob("*.tar")}
        shards.update(stage.names(out, "*.tar") if stage is not None else ())
        _drop_untrusted_parts(parts, shards, log)
        if stage is not None:  # shards finished in the store without a trusted part
            stage.pull([f"{stage.key(out)}/"], want=lambda key: key.endswith(".tar") and not (
                run.root / Path(key).parent / ".manifest" / f"{Path(key).stem}.parquet"
            ).exists())
        if recovered := _recover_parts(out, parts):
            log(f"[extract] rebuilt the manifest of {recovered} finished shard(s) from their "
                "samples")

    done: set[str] = set()
    funnel: list[Funnel] = []

    def plan_items() -> list[dict]:
        done.update(_done_keys(parts))
        groups, total = plan(run, setup.thresholds, config, setup.identities, log)
        funnel.append(total)
        return [{"jobs": json.dumps([asdict(job) for job in jobs])} for jobs in groups]

    def pending(item: dict) -> dict | None:
        jobs = [job for job in json.loads(item["jobs"]) if job["key"] not in done]
        return {"jobs": json.dumps(jobs)} if jobs else None

    def merge(items: list[dict], todo: list[dict], rows) -> ExtractSummary:
        summary = ExtractSummary(clips_planned=_clips(items), clips_done_before=len(done),
                                 out=str(out))
        log(f"[extract] {summary.clips_planned} clips from {len(items)} videos: "
            f"{len(done)} already in shards, {_clips(todo)} to cut -> {out}")
        started = time.monotonic()
        taken = stage.names(out, "*.tar") if stage is not None else []
        failures = _write_shards(out, parts, config, rows, summary, log, taken) if todo else []
        summary.wall_s = time.monotonic() - started
        _finish(out, parts, summary, failures, {"preset": preset, "overrides": overrides,
                                                "funnel": funnel[0].to_json()})
        return summary

    return run_job(Job(
        name="extract", out=run.root, prepare=prepare, plan=plan_items, pending=pending,
        merge=merge, worker=_ExtractWorker, many=True,
        worker_args={"config": asdict(config), "run_root": str(run.root),
                     "base_json": base_json, "store": store_uri(run.root)},
    ), use_ray=use_ray, address=address, workers=workers, log=log)


def _clips(items: list[dict]) -> int:
    return sum(len(json.loads(item["jobs"])) for item in items)


def _write_shards(out: Path, parts: Path, config: ExtractConfig, rows, summary: ExtractSummary,
                  log: Log, taken: list[str]) -> list[dict]:
    """Feed the clip rows to the single shard writer; a shard's manifest part is written
    when the shard is complete. Returns the clips that failed."""
    failures: list[dict] = []
    clip_meta: dict[str, dict] = {}  # a clip's JSON, kept until its shard is finished

    def shard_done(info: ShardInfo) -> None:
        _write_part(parts, info.name,
                    _part_table(info.name, [clip_meta.pop(key) for key in info.keys]))
        log(f"[extract] shard {info.name}: {len(info.keys)} clips, {info.num_bytes / 1e6:.1f} MB")

    # As a context manager: on any error (a full disk) the shard in progress is deleted at
    # once, which also gives its space back; finished shards and their parts stay.
    with ShardWriter(out, prefix="shard", target_bytes=int(config.shard_mb * 2**20),
                     on_shard_done=shard_done, taken=taken) as writer:
        for row in rows:
            if row["status"] != "ok":
                failures.append({"key": row["key"], "error": row["error"]})
                summary.clips_failed += 1
                log(f"[extract] {row['key']}: failed ({row['error']})")
                continue
            members = {m: row[m] for m in MEMBERS if row.get(m) is not None}
            clip_meta[row["key"]] = json.loads(members["json"])
            writer.add(row["key"], members)
            summary.clips_written += 1
            if summary.clips_written % 10 == 0:
                log(f"[extract] {summary.clips_written} clips written")
    return failures


def _finish(out: Path, parts: Path, summary: ExtractSummary, failures: list[dict],
            stats: dict) -> None:
    """The manifest merged from every part, the failures and ``stats.json``."""
    manifest = _write_manifest(out, parts)
    _write_failures(out, failures)
    summary.shards = len(set(manifest.column("shard").to_pylist()))
    summary.hours = sum(manifest.column("frames").to_pylist()) / FPS / 3600
    for split in manifest.column("split").to_pylist():
        summary.by_split[split] = summary.by_split.get(split, 0) + 1
    stats = {**stats, "clips": manifest.num_rows, "hours": summary.hours,
             "shards": summary.shards, "by_split": summary.by_split,
             "failed_clips": len(failures), "schema_version": SHARD_SCHEMA_VERSION}
    write_text_atomic(out / "stats.json", json.dumps(stats, indent=2))


def _done_keys(parts: Path) -> set[str]:
    keys: set[str] = set()
    for part in parts.glob("*.parquet"):
        keys.update(pq.read_table(part, columns=["key"]).column("key").to_pylist())
    return keys


def _part_table(shard: str, metas: list[dict]) -> pa.Table:
    """The manifest rows of the samples ``metas`` (their JSON members) of ``shard``."""
    rows = [manifest_row(meta, shard, meta.get("source_path", "")) for meta in metas]
    return pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA)


def _write_part(parts: Path, shard: str, table: pa.Table) -> None:
    """One finished shard's manifest rows (``.manifest/SHARD.parquet``), sealed with the
    SHA-256 of its rows (``_part_problem`` checks it before a resume trusts the part)."""
    _write_sealed(parts / f"{Path(shard).stem}.parquet", table)


def _write_sealed(path: Path, table: pa.Table) -> None:
    table = table.replace_schema_metadata({ROWS_KEY: content_sha256(table.to_pylist())})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def _part_problem(part: Path, shards: set[str]) -> str | None:
    """Why the manifest part ``part`` cannot be trusted (None: it can).

    A resume skips every clip a part lists, so a wrong part loses clips or cuts them twice;
    the shard it describes holds the truth, and rebuilding the part from it is cheap. Parts
    of older versions have no checksum and are rebuilt the same way.
    """
    try:
        table = pq.read_table(part)
    except Exception as err:  # noqa: BLE001 - whatever the reader says, the part is not usable
        return f"is unreadable ({type(err).__name__})"
    if not table.schema.equals(MANIFEST_SCHEMA, check_metadata=False):
        return "does not have the manifest's columns"
    recorded = (table.schema.metadata or {}).get(ROWS_KEY)
    if recorded is None:
        return "has no checksum (written by an older version)"
    rows = table.to_pylist()
    if recorded.decode("ascii", "replace") != content_sha256(rows):
        return "does not match its checksum (changed or corrupt since it was written)"
    if {row["shard"] for row in rows} - {f"{part.stem}.tar"}:
        return f"lists clips of another shard than {part.stem}.tar"
    if f"{part.stem}.tar" not in shards:
        return f"describes {part.stem}.tar, which is gone"
    return None


def _drop_untrusted_parts(parts: Path, shards: set[str], log: Log) -> None:
    """Remove the manifest parts a resume cannot trust, saying which and why: a part whose
    shard is there is rebuilt from the shard's samples (``_recover_parts``), and the clips of
    one whose shard is gone are cut again."""
    for part in sorted(parts.glob("*.parquet")):
        if (why := _part_problem(part, shards)) is None:
            continue
        then = ("it is rebuilt from the shard's samples" if f"{part.stem}.tar" in shards
                else "its clips are cut again")
        log(f"[extract] manifest part {part} {why}: {then}")
        discard(part)


def _recover_parts(out: Path, parts: Path) -> int:
    """Manifest parts for finished shards that have none (a kill between the shard's rename
    and its part's, or a part ``_drop_untrusted_parts`` removed), rebuilt from the samples'
    JSON: their clips are not cut twice. A shard that cannot be read is refused by name."""
    recovered = 0
    for shard in sorted(out.glob("*.tar")):
        if (parts / f"{shard.stem}.parquet").exists():
            continue
        try:
            with tarfile.open(shard, "r:") as archive:  # the writer's plain tar
                metas = [json.loads(archive.extractfile(member).read())
                         for member in archive.getmembers()
                         if member.name.partition(".")[2] == "json"]  # not instruction.json
            table = _part_table(shard.name, metas)
        except (tarfile.TarError, EOFError, ValueError, KeyError, TypeError,
                AttributeError) as err:
            why = " ".join(f"{type(err).__name__}: {err}".split())
            raise ValueError(
                f"{shard} has no trusted manifest part and cannot be read to rebuild one "
                f"({why}); delete it and run again to cut its clips anew") from None
        _write_part(parts, shard.name, table)
        recovered += 1
    return recovered


def _write_manifest(out: Path, parts: Path) -> pa.Table:
    tables = [pq.read_table(p).replace_schema_metadata(None)
              for p in sorted(parts.glob("*.parquet"))]
    table = (pa.concat_tables(tables) if tables else MANIFEST_SCHEMA.empty_table())
    table = table.sort_by("key")
    _write_sealed(out / "manifest.parquet", table)  # gaia inspect checks its checksum
    return table


def _write_failures(out: Path, failures: list[dict]) -> None:
    table = pa.Table.from_pylist(failures, schema=pa.schema([("key", pa.string()),
                                                             ("error", pa.string())]))
    with atomic_path(out / "failures.parquet") as tmp:
        pq.write_table(table, tmp)


def _base_json(run: RunDir, setup: ExtractSetup) -> dict:
    chain = setup.chain
    measured = yaml.safe_load(run.config.read_text(encoding="utf-8")) if run.config.is_file() \
        else {}
    untrained = bool(chain.denoiser.provenance.get("untrained")) or bool(
        chain.features.provenance.get("untrained"))
    return {
        "schema_version": SHARD_SCHEMA_VERSION,
        "preset": setup.preset,
        "overrides": list(setup.overrides),
        "thresholds": setup.thresholds.to_dict(),
        "untrained": untrained,
        "provenance": {
            **(measured.get("models") or {}),
            "denoise": chain.denoiser.provenance,
            # The features are of the denoised audio: which denoiser travels with them, into
            # the latent stats and the checkpoints (generation applies the same one).
            "speech_features": {**chain.features.provenance,
                                "denoise": denoise_identity(chain.denoiser.provenance)},
            "crop": asdict(setup.config.crop),
        },
    }


def _flatten(clip: dict) -> dict:
    """A clip row with its members as top-level columns (absent members as None)."""
    members = clip.pop("members") or {}
    return {**clip, **{m: members.get(m) for m in MEMBERS}}


class _ExtractWorker:
    """Loads the audio chain once (per actor, or here) and cuts one video's clips per call."""

    def __init__(self, config: dict, run_root: str, base_json: dict,
                 store: str | None = None) -> None:
        config = dict(config)
        config["crop"] = CropConfig(**config["crop"])
        self._config = ExtractConfig(**config)
        self._chain = audio_chain(self._config)
        self._run = RunDir(Path(run_root))
        self._store = store  # a run in a store: the measures are read from there
        self._base = base_json

    def __call__(self, row: dict):
        jobs = [_job_from_row(item) for item in json.loads(row["jobs"])]
        name = f"{jobs[0].video_id}.parquet"
        metrics = f"{self._store}/metrics/{name}" if self._store else self._run.metrics / name
        for clip in extract_video(jobs, metrics, self._chain, self._config.crop, self._base,
                                  self._config.max_sync_offset_s,
                                  shift_by=self._config.shift_audio_by):
            yield _flatten(clip)


def _job_from_row(row: dict) -> ClipJob:
    return ClipJob(**{**row, "segment": Segment(**row["segment"])})
