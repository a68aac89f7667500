"""``gaia curate tune``: what a set of thresholds keeps and costs, from stored measures only.

Paper, appendix A.1: filtering makes the model, and the VAE takes looser thresholds than the
diffusion model. Two paths give the same funnel:

- the compact tune table (``tune/``, ``pipeline.compact_table``), read by memory map and decided
  in one compiled pass (``pipeline.tune.fused``): the default, built when missing and rebuilt,
  with a message, when stale or unreadable;
- ``RUN_DIR/metrics/`` one video at a time (bounded memory, never a decode) through
  ``gaia.filters`` and the segment rules exactly as ``extract`` applies them: the reference,
  used when a threshold is off the table's grid (it says so) or with ``source="metrics"``,
  and always for thresholds that follow instructions (the ``instruct`` preset: its clips
  follow the videos' timed-text cues, which the table does not hold).

A sweep evaluates many values of one threshold in the same single pass over the files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gaia.common.config_files import ConfigError
from gaia.filters.funnel import Funnel, decide_video
from gaia.filters.thresholds import CurationThresholds, build_thresholds
from gaia.pipeline.compact_table import TuneTableError, rebuild_tune_table
from gaia.pipeline.duplicates.table import ensure_duplicates
from gaia.pipeline.measures import iter_measures, measured_videos, read_measures, require_cues
from gaia.pipeline.run_dir import RunDir
from gaia.pipeline.tune import fused
from gaia.pipeline.tune.fused import OffGrid

SOURCES = ("auto", "table", "metrics")


def funnel_for(run_dir: Path, thresholds: CurationThresholds, workers: int = 1,
               source: str = "auto", log: Callable[[str], None] = lambda _: None) -> Funnel:
    """The whole run's funnel under ``thresholds`` (module docstring for ``source``).

    ``workers`` > 1: that many threads over the table's files, or processes over the metrics
    files (each streams its own; only the small per-video funnels come back).
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
    if thresholds.instructions.enabled:  # said before any file is read, whatever the source
        require_cues(RunDir(Path(run_dir)))
    if source != "metrics":
        try:
            return table_funnels(run_dir, [thresholds], workers, log)[0]
        except OffGrid as err:
            if source == "table":
                raise
            log(f"[tune] {err}")
    return metrics_funnel(run_dir, thresholds, workers)


def table_funnels(run_dir: Path, variants: list[CurationThresholds], workers: int = 1,
                  log: Callable[[str], None] = lambda _: None,
                  clips_by_video: dict[str, int] | None = None) -> list[Funnel]:
    """The funnel of each of ``variants`` from the run's tune table, which is built when it is
    missing and rebuilt, saying why, when it is stale or a file of it is unreadable (each file
    is checked as it is read: one pass, no separate check). ``OffGrid`` when a threshold is off
    the table's grid."""
    params = [fused.parameters(t) for t in variants]  # OffGrid before any file is touched
    try:
        return fused.decide_table(run_dir, params, workers, clips_by_video)
    except TuneTableError as err:
        rebuild_tune_table(run_dir, err, log)
    return fused.decide_table(run_dir, params, workers, clips_by_video)


def metrics_funnel(run_dir: Path, thresholds: CurationThresholds, workers: int = 1) -> Funnel:
    """The reference path: ``metrics/`` one video at a time through ``gaia.filters``."""
    run = RunDir(Path(run_dir))
    videos = measured_videos(run, cues=thresholds.instructions.enabled)
    ensure_duplicates(run.root)  # found here once, not by each worker that reads measures
    jobs = [(str(run.root), v["video_id"], v["fps"], v["source"], thresholds, v["cues"])
            for v in videos]
    total = Funnel()
    if workers > 1 and len(jobs) > 1:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            for funnel in pool.imap_unordered(_video_funnel, jobs, chunksize=32):
                total = total + funnel
    else:
        for job in jobs:
            total = total + _video_funnel(job)
    return total


def _video_funnel(job: tuple) -> Funnel:
    root, video_id, fps, source, thresholds, cues = job
    measures = read_measures(RunDir(Path(root)), video_id)
    return decide_video(measures, fps, source, thresholds, cues).funnel


def _cue_lines(funnel: Funnel) -> list[str]:
    """The instruction cues' outcomes and the videos' sidecar states (``instruct`` preset)."""
    total = sum(funnel.cues.values())
    lines = [f"cues       {total:>9} read  {funnel.cues.get('clip', 0)} gave a clip"]
    for reason, count in sorted(funnel.cues.items(), key=lambda item: (-item[1], item[0])):
        if reason != "clip":
            lines.append(f"  {reason:<16}{count:>9} cues")
    states = ", ".join(f"{state} {count}" for state, count in sorted(funnel.sidecars.items()))
    return lines + [f"sidecars   {states or '-'}"]


@dataclass(frozen=True)
class Sweep:
    section: str
    key: str
    values: tuple[float, ...]

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}"


def parse_sweep(text: str) -> Sweep:
    """``"jitter.max_box=0.02:0.2:0.02"`` -> the values 0.02, 0.04, ..., 0.2."""
    name, _, raw = text.partition("=")
    section, _, key = name.strip().partition(".")
    try:
        start, stop, step = (float(p) for p in raw.split(":"))
    except ValueError:
        raise ConfigError(f"bad sweep {text!r}: write FILTER.KEY=START:STOP:STEP, "
                            f"e.g. jitter.max_box=0.02:0.2:0.02") from None
    if step <= 0:
        raise ConfigError(f"sweep {section}.{key}: STEP must be positive, got {step}")
    if stop < start:
        raise ConfigError(f"sweep {section}.{key}: STOP ({stop}) is below START ({start})")
    count = int(np.floor((stop - start) / step + 1e-9)) + 1
    values = tuple(round(start + i * step, 10) for i in range(count))
    return Sweep(section, key, values)


def sweep_thresholds(base: CurationThresholds, sweep: Sweep) -> list[CurationThresholds]:
    """``base`` with the swept key set to each value (checked like any ``--set``)."""
    current = base.to_dict()
    out = []
    for value in sweep.values:
        values = {name: dict(section) for name, section in current.items()}
        if sweep.section not in values:
            build_thresholds({sweep.section: {}})  # raises the unknown-filter error
        values[sweep.section][sweep.key] = value
        out.append(build_thresholds(values))
    return out


def run_sweep(run_dir: Path, base: CurationThresholds, sweep: Sweep,
              log: Callable[[str], None] = lambda _: None) -> list[tuple[float, Funnel]]:
    """Funnel for each swept value, from one pass over the tune table (or, when a value is off
    its grid, over the metrics files)."""
    variants = sweep_thresholds(base, sweep)
    if base.instructions.enabled:
        require_cues(RunDir(Path(run_dir)))
    try:
        return list(zip(sweep.values, table_funnels(run_dir, variants, log=log), strict=True))
    except OffGrid as err:
        log(f"[tune] {err}")
    totals = [Funnel() for _ in variants]
    for video, measures in iter_measures(RunDir(Path(run_dir)), base.instructions.enabled):
        for i, thresholds in enumerate(variants):
            totals[i] = totals[i] + decide_video(measures, video["fps"], video["source"],
                                                 thresholds, video["cues"]).funnel
    return list(zip(sweep.values, totals, strict=True))


def format_funnel(funnel: Funnel, title: str) -> list[str]:
    """The funnel as aligned text lines."""
    def hours(seconds: float) -> str:
        return f"{seconds / 3600:10.4f} h"

    lines = [f"== funnel: {title}",
             f"input      {hours(funnel.input_s)}  {funnel.input_frames:>9} frames  "
             f"{funnel.videos} videos",
             "dropped    (first failing filter)        (any failing filter)"]
    first = funnel.dropped(funnel.first_s)
    every = funnel.dropped(funnel.any_s)
    # Ties in name order: a set's order moves with the interpreter's string hashing.
    for reason in sorted(set(first) | set(every), key=lambda r: (-every.get(r, 0.0), r)):
        lines.append(f"  {reason:<14}{hours(first.get(reason, 0.0))}"
                     f"   {100 * first.get(reason, 0.0) / max(funnel.input_s, 1e-9):5.1f} %"
                     f"          {hours(every.get(reason, 0.0))}")
    lines.append(f"kept       {hours(funnel.kept_s)}  {funnel.kept_frames:>9} frames  "
                 f"{funnel.clips} clips  ({100 * funnel.kept_s / max(funnel.input_s, 1e-9):.1f} %"
                 " of input)")
    if funnel.cues or funnel.sidecars:  # thresholds that follow instructions
        lines += _cue_lines(funnel)
    if funnel.by_source:
        lines.append("by source:")
        for name, totals in sorted(funnel.by_source.items()):
            lines.append(f"  {name:<24} in {hours(totals.input_s)}  kept {hours(totals.kept_s)}"
                         f"  {totals.clips:>4} clips  {totals.videos:>4} videos")
    return lines

