"""``gaia curate measure``: the Ray Data job that measures every frame of every input video.

Paper, appendix A.1. One dataset row per video (frames never travel through Ray's object
store): a pool of actors, each with one supervised child process (``pipeline.measure.worker_process``), measures
a video and writes its ``metrics/`` file itself; only the small per-video record comes back.
Inputs already finished in ``RUN_DIR/status/`` are skipped, so the same command resumes a killed
job with no duplicates or gaps.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gaia.pipeline.inputs import VideoInput, resolve_inputs
from gaia.pipeline.measure.config import MeasureConfig
from gaia.pipeline.provenance import check_models_available, write_run_config
from gaia.pipeline.run_dir import RunDir
from gaia.pipeline.runner.ray_setup import actor_pool, init_ray, log_to_stderr
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


def run_measure(inputs: list[str], out: Path, config: MeasureConfig | None = None,
                address: str | None = None, workers: int | None = None,
                retry_failed: bool = False, log: Log = log_to_stderr) -> MeasureSummary:
    """Measure every video named by ``inputs`` into ``out`` (see the module docstring)."""
    config = config or MeasureConfig()
    run = RunDir(Path(out))
    videos = resolve_inputs(inputs)
    check_models_available(config)
    run.make()
    write_run_config(run, config)
    if removed := remove_partials(run.root):
        log(f"[measure] removed {removed} partial file(s) left by an interrupted run")

    finished = run.finished()
    todo = [v for v in videos if v.video_id not in finished
            or (retry_failed and finished[v.video_id]["status"] == "failed")]
    summary = MeasureSummary(inputs=len(videos), skipped=len(videos) - len(todo))
    log(f"[measure] {len(videos)} videos: {summary.skipped} already done, {len(todo)} to measure"
        f" -> {run.root}")
    started = time.monotonic()
    if todo:
        for record in _measure_on_ray(todo, run, config, address, workers):
            summary.measured_now += 1
            summary.frames_now += int(record.get("num_frames") or 0)
            summary.video_seconds_now += float(record.get("duration_s") or 0.0)
            _report(record, summary, len(todo), started, log)
    summary.wall_s = time.monotonic() - started

    table = run.write_videos_table()
    rows = table.to_pylist()
    for row in rows:
        summary.status[row["status"]] += 1
        if row["status"] == "failed":
            summary.failed_by_reason[row["reason"]] += 1
        else:
            summary.flags.update(row["flags"] or [])
            summary.hours_measured += (row["duration_s"] or 0.0) / 3600
            summary.frames_measured += row["num_frames"] or 0
    return summary


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


class _MeasureActor:
    """A Ray Data actor: one supervised measuring process, reused for every video it gets."""

    def __init__(self, config: dict, run_root: str) -> None:
        from gaia.pipeline.measure.worker_process import IsolatedMeasurer

        self._run = RunDir(Path(run_root))
        self._measurer = IsolatedMeasurer(
            MeasureConfig.from_dict(config), self._run.metrics, self._run.logs
        )

    def __call__(self, row: dict) -> dict:
        record = self._measurer.measure(row["uri"], row["video_id"], row["source"])
        self._run.write_status(record)
        return {"video_id": record["video_id"], "status": record["status"],
                "reason": record["reason"], "num_frames": record.get("num_frames") or 0,
                "duration_s": record.get("duration_s") or 0.0}

    def __del__(self) -> None:
        measurer = getattr(self, "_measurer", None)
        if measurer is not None:
            measurer.close()


def _measure_on_ray(todo: list[VideoInput], run: RunDir, config: MeasureConfig,
                    address: str | None, workers: int | None):
    """Yield each video's short record as the Ray Data job finishes it."""
    import ray.data

    cpus = init_ray(address)
    items = [{"uri": v.uri, "video_id": v.video_id, "source": v.source} for v in todo]
    dataset = ray.data.from_items(items, override_num_blocks=min(len(items), 20_000)).map(
        _MeasureActor,
        fn_constructor_kwargs={"config": config.to_dict(), "run_root": str(run.root.resolve())},
        compute=actor_pool(workers, cpus, len(items)),
        num_cpus=1,
    )
    yield from dataset.iter_rows()
