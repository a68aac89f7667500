"""``gaia curate measure``: the Ray Data job that measures every frame of every input video.

Paper, appendix A.1. One dataset row per video (frames never travel through Ray's object
store): a pool of actors (``pipeline.runner.job_runner``), each with one supervised child
process (``pipeline.measure.worker_process``), measures a video and writes its ``metrics/``
file itself; only the small per-video record comes back.
Inputs already finished in ``RUN_DIR/status/`` are skipped, so the same command resumes a killed
job with no duplicates or gaps.

Each video's timed-text sidecar (``X.cues.json``, ``X.srt``, ``X.vtt``: instructions spoken
off-screen, appendix E) is read beside it by the same worker and stored in its status record
(``gaia.pipeline.instructions``); a finished video measured before gaia read sidecars gets
them read at the end of a run on the same inputs, without being measured again.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gaia.common.storage import redact
from gaia.pipeline.compact_table import build_tune_table
from gaia.pipeline.duplicates.table import ensure_duplicates
from gaia.pipeline.identities.table import ensure_identities
from gaia.pipeline.inputs import resolve_inputs
from gaia.pipeline.instructions.backfill import add_missing_cues
from gaia.pipeline.instructions.sidecar import sidecar_columns
from gaia.pipeline.measure.config import MeasureConfig
from gaia.pipeline.measure.provenance import (
    check_models_available,
    check_run_config,
    write_run_config,
)
from gaia.pipeline.run_dir import CONFIG_FILE, RunDir
from gaia.pipeline.runner.checks import check_workers, output_folder
from gaia.pipeline.runner.job_runner import Job, run_job
from gaia.pipeline.runner.ray_setup import log_to_stderr
from gaia.pipeline.runner.staging import StagedOut, refresh, staged_output, store_uri
from gaia.schemas.atomic import remove_partials

Log = Callable[[str], None]


@dataclass
class MeasureSummary:
    """What a measure run did: this run's videos, and the whole run directory after it."""

    inputs: int = 0
    skipped: int = 0
    measured_now: int = 0
    wall_s: float = 0.0
    frames_now: int = 0
    video_seconds_now: float = 0.0
    status: Counter = field(default_factory=Counter)
    failed_by_reason: Counter = field(default_factory=Counter)
    flags: Counter = field(default_factory=Counter)
    hours_measured: float = 0.0
    frames_measured: int = 0

    def lines(self) -> list[str]:
        fps = self.frames_now / self.wall_s if self.wall_s else 0.0
        speed = self.video_seconds_now / self.wall_s if self.wall_s else 0.0
        out = [
            f"inputs: {self.inputs} videos ({self.skipped} already done, "
            f"{self.measured_now} measured now in {self.wall_s:.1f} s)",
            f"ok: {self.status.get('ok', 0)}   failed: {self.status.get('failed', 0)}",
        ]
        out += [f"  failed/{reason}: {count}"
                for reason, count in sorted(self.failed_by_reason.items())]
        out += [f"  flagged/{flag}: {count}" for flag, count in sorted(self.flags.items())]
        out.append(f"measured: {self.hours_measured:.4f} h of video, "
                   f"{self.frames_measured} frames")
        out.append(f"this run: {fps:.1f} frames/s, {speed:.2f} video-s per wall-s")
        return out


def run_measure(inputs: list[str], out: Path | str, config: MeasureConfig | None = None,
                address: str | None = None, workers: int | None = None,
                retry_failed: bool = False, log: Log = log_to_stderr,
                use_ray: bool = True) -> MeasureSummary:
    """Measure every video named by ``inputs`` into ``out`` (see the module docstring).

    Everything is checked before Ray starts: ``out``, the inputs, the models' weights.
    ``out``: a folder, or a store URI (``s3://bucket/runs/r1``; ``pipeline.runner.staging``).
    ``use_ray=False`` measures here, one video after another, with the same worker.
    """
    config = config or MeasureConfig()
    out = output_folder(out)
    check_workers(workers)
    videos = resolve_inputs(inputs)
    check_models_available(config)
    with staged_output(out, pull=(CONFIG_FILE, "status/"),
                       log=lambda line: log(f"[measure] {line}")) as root:
        return _run(RunDir(root), str(out), videos, config, address, workers, retry_failed,
                    log, use_ray)


def _run(run: RunDir, shown: str, videos: list, config: MeasureConfig, address: str | None,
         workers: int | None, retry_failed: bool, log: Log, use_ray: bool) -> MeasureSummary:
    store = store_uri(run.root)  # workers write there themselves when the run is in a store

    def prepare() -> None:
        run.make()
        check_run_config(run, config)  # refuses other settings before anything is removed
        # Partials first: on a full disk they are what frees the space the rest needs.
        if removed := remove_partials(run.root):
            log(f"[measure] removed {removed} partial file(s) left by an interrupted run")
        write_run_config(run, config)

    finished: dict[str, dict] = {}

    def plan() -> list[dict]:
        # The resume record, read once under the lock; an untrusted record is logged and its
        # video measured again (``RunDir.finished`` says why that is the safe choice).
        finished.update(run.finished(lambda line: log(f"[measure] {line}")))
        return [{"uri": v.uri, "video_id": v.video_id, "source": v.source} for v in videos]

    def pending(item: dict) -> dict | None:
        record = finished.get(item["video_id"])
        return item if record is None or (retry_failed and record["status"] == "failed") \
            else None

    def merge(items: list[dict], todo: list[dict], records) -> MeasureSummary:
        summary = MeasureSummary(inputs=len(items), skipped=len(items) - len(todo))
        log(f"[measure] {len(items)} videos: {summary.skipped} already done, {len(todo)} to "
            f"measure -> {redact(shown) if store else run.root}")
        started = time.monotonic()
        for record in records:
            summary.measured_now += 1
            summary.frames_now += int(record.get("num_frames") or 0)
            summary.video_seconds_now += float(record.get("duration_s") or 0.0)
            _report(record, summary, len(todo), started, log)
        summary.wall_s = time.monotonic() - started
        refresh(run.root, ("status/", "metrics/"))  # what the workers wrote to the store
        measured = {item["video_id"] for item in todo}
        add_missing_cues(run, {k: v for k, v in finished.items() if k not in measured},
                         {item["video_id"]: item["uri"] for item in items},
                         lambda line: log(f"[measure] {line}"))
        _tally_run(run, summary, log)
        # The duplicate footage (pipeline.duplicates), then the compact table tune reads
        # (seconds, not a decode): found and built once the run is whole.
        ensure_duplicates(run.root, log)
        # Who is who across the run (pipeline.identities): new tracks join known identities.
        ensure_identities(run.root, lambda line: log(f"[measure] {line}"))
        build_tune_table(run.root)
        return summary

    return run_job(Job(
        name="measure", out=run.root, prepare=prepare, plan=plan, pending=pending, merge=merge,
        worker=_MeasureWorker, worker_args={"config": config.to_dict(),
                                            "run_root": str(run.root), "store": store},
    ), use_ray=use_ray, address=address, workers=workers, log=log)


def _tally_run(run: RunDir, summary: MeasureSummary, log: Log) -> None:
    """The whole run directory's counts, from ``videos.parquet`` rebuilt from ``status/``."""
    for row in run.write_videos_table(lambda line: log(f"[measure] {line}")).to_pylist():
        summary.status[row["status"]] += 1
        if row["status"] == "failed":
            summary.failed_by_reason[row["reason"]] += 1
        else:
            summary.flags.update(row["flags"] or [])
            summary.hours_measured += (row["duration_s"] or 0.0) / 3600
            summary.frames_measured += row["num_frames"] or 0


def _report(record: dict, summary: MeasureSummary, total: int, started: float,
            log: Log) -> None:
    elapsed = time.monotonic() - started
    done = summary.measured_now
    eta = elapsed / done * (total - done)
    outcome = (f"failed ({record['reason']})" if record["status"] == "failed"
               else "ok" if record["reason"] == "ok" else f"ok ({record['reason']})")
    log(f"[measure] {done}/{total} {record['video_id']}: {outcome}"
        f" | {summary.frames_now / max(elapsed, 1e-9):.0f} frames/s,"
        f" {summary.video_seconds_now / 3600:.3f} h done, eta {eta:.0f} s")


class _MeasureWorker:
    """One actor's (or this process's) supervised measuring process, reused for every video."""

    def __init__(self, config: dict, run_root: str, store: str | None = None) -> None:
        from gaia.pipeline.measure.worker_process import IsolatedMeasurer

        # A run in a store: this worker writes in its own stage, uploaded file by file.
        self._stage = StagedOut(store) if store else None
        self._run = RunDir(self._stage.root if self._stage else Path(run_root))
        self._measurer = IsolatedMeasurer(
            MeasureConfig.from_dict(config), self._run.metrics, self._run.logs
        )

    def __call__(self, row: dict) -> dict:
        record = self._measurer.measure(row["uri"], row["video_id"], row["source"])
        # The timed text beside the input (never fails: a broken sidecar is a reason).
        record.update(sidecar_columns(row["uri"]))
        if self._stage is not None:  # the child process wrote these: uploaded before status
            self._stage.publish(self._run.metrics / f"{record['video_id']}.parquet")
            for log_file in self._run.logs.glob("*.log"):
                self._stage.publish(log_file, keep=True)
        self._run.write_status(record)
        return {"video_id": record["video_id"], "status": record["status"],
                "reason": record["reason"], "num_frames": record.get("num_frames") or 0,
                "duration_s": record.get("duration_s") or 0.0}

    def close(self) -> None:
        measurer, self._measurer = getattr(self, "_measurer", None), None
        if measurer is not None:
            measurer.close()
        stage, self._stage = getattr(self, "_stage", None), None
        if stage is not None:
            stage.close()

    def __del__(self) -> None:
        self.close()
