"""Speed of ``gaia curate tune`` from stored measures, against measuring, in one run.

1. On the demo sample: a full measure run (CPU seconds, as recorded per video in
   videos.parquet, plus the job's wall time) against tune on the same run. Aim: tune at
   least 100 times faster.
2. On a synthetic metrics table of 10,000 hours (25 fps: 900 million frames) made here:
   tune's wall time and peak memory from ``metrics/`` (the reference path, per video over 2
   processes) and from the compact tune table (one compiled pass, 2 threads), and their ratio.
   Aim: the table path under 10 s on 2 cores, memory bounded; the two funnels equal.

The synthetic table holds 10,000 one-hour videos whose measures move like real ones: shots of
random length in which the face is good, turned, occluded, shaky, off screen or silent, with
talk spurts and pauses. To save disk and generation time, 40 distinct files are written and
the rest are hard links to them (each read and decoded in full all the same); the tune table
is built for the 40 and its part file linked likewise, with an index naming all 10,000.

    python benchmarks/tune_speed.py [--work DIR] [--hours 10000] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

FPS = 25.0  # the synthetic source videos' own rate (videos.parquet's fps), not the shard rate
DISTINCT = 40


def synthetic_hour(seed: int) -> dict[str, np.ndarray]:
    """One hour of per-frame measures with shot structure (see the module docstring)."""
    rng = np.random.default_rng(seed)
    n = int(3600 * FPS)
    lengths = np.maximum(1, rng.exponential(20 * FPS, size=n // 50).astype(int))
    states = rng.choice(6, size=len(lengths), p=[0.6, 0.1, 0.06, 0.06, 0.1, 0.08])
    shot = np.repeat(states, lengths)[:n]
    noise = rng.normal(size=(5, n)).astype(np.float32)
    good = np.ones(n, np.float32)
    frontal = 180 + 6 * noise[0] + np.where(shot == 1, 35, 0)
    occlusion = np.clip(0.05 + 0.03 * noise[1] + np.where(shot == 2, 0.7, 0), 0, 1)
    jitter_lm = np.abs(0.015 + 0.01 * noise[2]) + np.where(shot == 3, 0.15, 0)
    jitter_box = np.abs(0.01 + 0.01 * noise[3]) + np.where(shot == 3, 0.12, 0)
    spurt = np.repeat(rng.random(n // 40) < 0.8, 40)[:n]
    speech = np.where(spurt & (shot != 5), 0.9, 0.05) * good + 0.02 * np.abs(noise[4])
    faces = np.where(shot == 4, 0, 1).astype(np.int8)
    no_face = faces == 0
    nan = np.float32(np.nan)
    def face(values) -> np.ndarray:
        return np.where(no_face, nan, values).astype(np.float32)

    return {
        "time_s": np.arange(n) / FPS,
        "num_faces": faces,
        "frontal_angle_deg": face(frontal),
        "frontal_angle_image_deg": face(frontal + 4 * noise[4]),
        "yaw_deg": face(8 * noise[0] + np.where(shot == 1, 30, 0)),
        "face_px": face(180 + 20 * noise[1]),
        "sharpness": face(0.3 + 0.05 * noise[2]),
        "cut_score": face(np.abs(0.05 * noise[3])),
        "identity_distance": face(np.abs(0.2 + 0.05 * noise[4])),
        "mouth_motion": face(np.where(spurt, 0.04, 0.008) + 0.005 * np.abs(noise[1])),
        "sync_confidence": face(np.where(spurt, 0.8, 0.3) + 0.1 * noise[2]),
        "jitter_landmarks": np.where(no_face, nan, jitter_lm).astype(np.float32),
        "jitter_box": np.where(no_face, nan, jitter_box).astype(np.float32),
        "occlusion": np.where(no_face, nan, occlusion).astype(np.float32),
        "speech_prob": np.clip(speech, 0, 1).astype(np.float32),
    }


def make_synthetic_run(root: Path, hours: int) -> Path:
    from gaia.schemas.metrics import METRICS_COMPRESSION, METRICS_SCHEMA

    metrics = root / "metrics"
    metrics.mkdir(parents=True, exist_ok=True)
    fields = [METRICS_SCHEMA.field(name) for name in synthetic_hour(0)]
    schema = pa.schema([pa.field("video_id", pa.string()), *fields])
    for i in range(min(DISTINCT, hours)):
        columns = synthetic_hour(i)
        n = len(columns["time_s"])
        arrays = [pa.array([f"syn{i:05d}"] * n, pa.string())]
        for field in fields:
            values = columns[field.name]
            mask = np.isnan(values) if values.dtype.kind == "f" else None
            arrays.append(pa.array(values, type=field.type, mask=mask))
        pq.write_table(pa.Table.from_arrays(arrays, schema=schema),
                       metrics / f"syn{i:05d}.parquet", compression=METRICS_COMPRESSION)
    for i in range(DISTINCT, hours):
        target = metrics / f"syn{i:05d}.parquet"
        if not target.exists():
            os.link(metrics / f"syn{i % DISTINCT:05d}.parquet", target)
    videos = pa.table({
        "video_id": [f"syn{i:05d}" for i in range(hours)],
        "path": [f"/synthetic/{i}.mp4" for i in range(hours)],
        "source": [f"src{i % 7}" for i in range(hours)],
        "status": ["ok"] * hours,
        "fps": [FPS] * hours,
    })
    pq.write_table(videos, root / "videos.parquet")
    return root


def link_tune_table(root: Path, hours: int) -> None:
    """The tune table of ``root``: built for the first ``DISTINCT`` videos (a scratch run of
    hard links to them), its part file linked once per ``DISTINCT`` videos, and an index that
    names every video (see the module docstring)."""
    from gaia.pipeline.compact_table import INDEX, TUNE_DIR, build_tune_table, write_index

    scratch = root.parent / "distinct"
    (scratch / "metrics").mkdir(parents=True, exist_ok=True)
    for i in range(DISTINCT):
        target = scratch / "metrics" / f"syn{i:05d}.parquet"
        if not target.exists():
            os.link(root / "metrics" / f"syn{i:05d}.parquet", target)
    table = pq.read_table(root / "videos.parquet").slice(0, DISTINCT)
    pq.write_table(table, scratch / "videos.parquet")
    build_tune_table(scratch)
    with pa.memory_map(str(scratch / TUNE_DIR / INDEX)) as source:
        distinct = pa.ipc.open_file(source).read_all().to_pylist()
    folder = root / TUNE_DIR
    folder.mkdir(exist_ok=True)
    rows: dict[str, list] = {name: [] for name in distinct[0]}
    sources = pq.read_table(root / "videos.parquet", columns=["source"])["source"].to_pylist()
    for i in range(hours):
        part = folder / f"part-{i // DISTINCT:05d}.arrow"
        if not part.exists():
            os.link(scratch / TUNE_DIR / distinct[0]["file"], part)
        row = dict(distinct[i % DISTINCT], video_id=f"syn{i:05d}", source=sources[i],
                   file=part.name)
        for key, value in row.items():
            rows[key].append(value)
    write_index(folder, rows)


def peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--hours", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-sample", action="store_true")
    parser.add_argument("--skip-metrics", action="store_true",
                        help="time the tune table only (not the reference path)")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="gaia-tune-bench-"))
    print(f"work folder: {work}")

    from gaia.filters.thresholds import load_thresholds
    from gaia.pipeline.tune.table import funnel_for, metrics_funnel

    thresholds = load_thresholds("s2m")
    if not args.skip_sample:
        from gaia.pipeline.measure.job import run_measure
        from gaia.samples.build import build_demo_sample

        build_demo_sample(work / "sample")
        started = time.monotonic()
        run_measure([str(work / "sample")], work / "run", log=lambda _: None)
        measure_wall = time.monotonic() - started
        measure_cpu = sum(pq.read_table(work / "run" / "videos.parquet")["cpu_s"].to_pylist())
        started_cpu, started = time.process_time(), time.monotonic()
        funnel = funnel_for(work / "run", thresholds, source="metrics")
        tune_cpu, tune_wall = time.process_time() - started_cpu, time.monotonic() - started
        print(f"\n== demo sample ({funnel.input_s / 3600:.4f} h, {funnel.videos} videos measured)")
        print(f"  measure: {measure_cpu:8.2f} CPU-s in its workers, {measure_wall:6.2f} s wall")
        print(f"  tune:    {tune_cpu:8.3f} CPU-s, {tune_wall:.3f} s wall")
        print(f"  tune is {measure_cpu / tune_cpu:.0f}x faster than measure in CPU time, "
              f"{measure_wall / tune_wall:.0f}x in wall time")

    started = time.monotonic()
    make_synthetic_run(work / "synthetic", args.hours)
    link_tune_table(work / "synthetic", args.hours)
    print(f"\n== synthetic run: {args.hours} hours written in {time.monotonic() - started:.1f} s")
    funnel_for(work / "synthetic", thresholds, source="table")  # compiles the loop once
    started = time.monotonic()
    fast = funnel_for(work / "synthetic", thresholds, workers=args.workers, source="table")
    fast_wall = time.monotonic() - started
    fast_rss = peak_rss_mb()
    print(f"  tune table ({args.workers} threads): {fast_wall:.2f} s wall for "
          f"{fast.input_s / 3600:.0f} h, {fast.input_frames / 1e6:.0f} M frames "
          f"({fast.input_frames / fast_wall / 1e6:.0f} M frames/s); kept "
          f"{fast.kept_s / 3600:.0f} h in {fast.clips} clips; peak RSS {fast_rss:.0f} MB")
    if args.skip_metrics:
        return
    started = time.monotonic()
    funnel = metrics_funnel(work / "synthetic", thresholds, workers=args.workers)
    wall = time.monotonic() - started
    print(f"  metrics/ ({args.workers} processes): {wall:.1f} s wall "
          f"({funnel.input_frames / wall / 1e6:.1f} M frames/s); kept "
          f"{funnel.kept_s / 3600:.0f} h in {funnel.clips} clips")
    print(f"  peak resident memory (largest process): {peak_rss_mb():.0f} MB")
    print(f"  the table path is {wall / fast_wall:.1f}x faster; funnels equal: "
          f"{funnel.kept_frames == fast.kept_frames and funnel.clips == fast.clips}")


if __name__ == "__main__":
    main()
