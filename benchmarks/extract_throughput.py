"""Throughput of ``extract`` against decoding the same segments alone, with its cost by part.

Runs the per-video code the Ray actors run (``pipeline.extract.video``) in this process, one
core, on two sets, each measured first (``gaia curate measure``, in-process):

- ``demo``: the demo sample (real faces, 320 px and 720p sources, synthesized speech);
- ``1080p``: the astronaut talking at ordinary framing, a face 200 px wide (10 % of the
  width) in a 1920 x 1080, 25 fps frame over a real street scene.

For each set it prints clip-seconds per CPU-second of decoding the segments' frames alone
(decord, one thread, in extract's chunks of 32 frames: the reference) and of extract, their ratio (aim: 0.5), and extract's CPU
time by part, measured with ``time.process_time`` around each part:

decode (the segments' frames), audio read (the track, once per video), crop, encode (the
256 x 256 H.264 mp4), audio (denoise, loudness, flac), features (speech features), write
(the .npy and .json members and the shard tar), other (metrics read, sync, bookkeeping).

``--features wav2vec2-base`` uses a wav2vec 2.0 of the base size (95 M parameters, random
weights: the cost of the paper's speech features without downloading them) in place of the
default log-mel.

    python benchmarks/extract_throughput.py [--work DIR] [--sets demo,1080p] [--seconds 10]
                                            [--features logmel|wav2vec2-base] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

# What is timed as which part: (module ``pipeline.extract.video`` or the audio chain, name).
PATCHES = (("video", "read_audio_spans", "audio read"), ("video", "crop_frame", "crop"),
           ("video", "_mp4", "encode"), ("video", "_flac", "audio"), ("chain", "denoiser", "audio"),
           ("chain", "normalize", "audio"), ("chain", "features", "features"),
           ("video", "dump_npy", "write"))
PARTS = ("decode", "audio read", "crop", "encode", "audio", "features", "write", "other")


class PartClock:
    """CPU seconds spent inside wrapped callables, by part (a call inside another part's call
    counts for the outer one only)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._depth = 0

    def wrap(self, part: str, function: Callable) -> Callable:
        def timed(*args, **kwargs):
            if self._depth:
                return function(*args, **kwargs)
            self._depth += 1
            started = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[part] += time.process_time() - started
                self._depth -= 1
        return timed

    def patched(self, owner, name: str, part: str):
        """``owner.name`` timed as ``part`` while the context is open."""
        return replaced(owner, name, self.wrap(part, getattr(owner, name)))


@contextmanager
def replaced(owner, name: str, value):
    """``owner.name`` set to ``value`` while the context is open."""
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


def _timed_reader(clock: PartClock):
    """decord.VideoReader whose opening, ``get_batch`` and ``asnumpy`` count as decode."""
    import decord

    base = decord.VideoReader

    class _Batch:
        def __init__(self, array) -> None:
            self._array = array

        def asnumpy(self):
            return self._array

    class TimedReader(base):
        def __init__(self, *args, **kwargs) -> None:
            clock.wrap("decode", base.__init__)(self, *args, **kwargs)

        def get_batch(self, indices):
            return _Batch(clock.wrap("decode", lambda: base.get_batch(self, indices).asnumpy())())

    return TimedReader


def make_runs(work: Path, sets: list[str], seconds: float) -> dict[str, Path]:
    """Measured run folders, one per set (reused when ``work`` already holds them)."""
    from gaia.pipeline.measure.job import run_measure

    runs = {}
    for name in sets:
        run = work / f"run-{name}"
        if not (run / "videos.parquet").is_file():
            if name == "demo":
                from gaia.samples.build import build_demo_sample

                build_demo_sample(work / "sample")
                inputs = [str(work / "sample")]
            else:
                from measure_throughput import make_wide_clip

                inputs = [str(make_wide_clip(work / "wide" / "astronaut_1080p.mp4", "1080p",
                                             200.0, seconds))]
            run_measure(inputs, run, log=lambda _: None, use_ray=False)
        runs[name] = run
    return runs


def bench_run(name: str, root: Path, chain, config, shard_dir: Path, rounds: int = 3) -> dict:
    """Decode alone against extract on one measured run; returns the figures."""
    import decord

    from gaia.filters.thresholds import load_thresholds
    from gaia.pipeline.extract import video
    from gaia.pipeline.extract.job import _base_json, plan
    from gaia.pipeline.extract.settings import ExtractSetup
    from gaia.pipeline.extract.shard_writer import ShardWriter
    from gaia.pipeline.measures import read_measures
    from gaia.pipeline.run_dir import RunDir
    from gaia.schemas.shards import FPS

    run = RunDir(root)
    setup = ExtractSetup("vae", (), config, load_thresholds("vae"), {}, chain)
    groups, _ = plan(run, setup.thresholds, config, {})
    base = _base_json(run, setup)
    clip_seconds = sum(video.output_frames(job.segment) for jobs in groups for job in jobs) / FPS

    def decode_only() -> None:
        for jobs in groups:
            times = read_measures(run, jobs[0].video_id, ("time_s",))["time_s"]
            reader = decord.VideoReader(jobs[0].path, num_threads=1)
            for job in jobs:
                picks = sorted(set(video.source_indices(times, job.segment).tolist()))
                for first in range(0, len(picks), video.DECODE_CHUNK):  # as extract does
                    reader.get_batch(picks[first:first + video.DECODE_CHUNK]).asnumpy()

    def extract_all(clock: PartClock | None = None) -> int:
        count = 0
        with ShardWriter(shard_dir / name, prefix="bench") as writer:
            add = writer.add if clock is None else clock.wrap("write", writer.add)
            for jobs in groups:
                metrics = run.metrics / f"{jobs[0].video_id}.parquet"
                for row in video.extract_video(jobs, metrics, chain, config.crop, base):
                    if row["status"] == "ok":
                        add(row["key"], row["members"])
                        count += 1
        for path in (shard_dir / name).glob("*.tar"):
            path.unlink()
        return count

    extract_all()  # warm-up: lazy imports and first-call set-up are not throughput
    decode_cpu, extract_cpu, clock = float("inf"), float("inf"), PartClock()
    for _ in range(rounds):  # alternating, the least of each: other load on the machine adds
        started = time.process_time()
        decode_only()
        decode_cpu = min(decode_cpu, time.process_time() - started)
        round_clock = PartClock()
        with ExitStack() as stack:
            stack.enter_context(replaced(decord, "VideoReader", _timed_reader(round_clock)))
            for owner, attr, part in PATCHES:
                stack.enter_context(round_clock.patched(
                    chain if owner == "chain" else video, attr, part))
            started = time.process_time()
            clips = extract_all(round_clock)
            spent = time.process_time() - started
        if spent < extract_cpu:
            extract_cpu, clock = spent, round_clock
    parts = {part: clock.seconds.get(part, 0.0) for part in PARTS[:-1]}
    parts["other"] = max(0.0, extract_cpu - sum(parts.values()))
    figures = {"clips": clips, "clip_s": clip_seconds,
               "decode_clip_s_per_cpu_s": clip_seconds / decode_cpu,
               "extract_clip_s_per_cpu_s": clip_seconds / extract_cpu,
               "extract_over_decode": decode_cpu / extract_cpu,
               "extract_cpu_s_per_clip_s": extract_cpu / clip_seconds,
               "parts_percent": {k: 100 * v / extract_cpu for k, v in parts.items()}}
    print(f"\n== extract, {name} (vae preset): {clips} clips, {clip_seconds:.1f} clip-seconds")
    print(f"  decode the segments alone  {figures['decode_clip_s_per_cpu_s']:7.2f} clip-s per CPU-s")
    print(f"  extract                    {figures['extract_clip_s_per_cpu_s']:7.2f} clip-s per CPU-s"
          f"  ({figures['extract_cpu_s_per_clip_s']:.3f} CPU-s per clip-s)")
    print(f"  extract / decode alone: {figures['extract_over_decode']:.2f}  (aim 0.5)")
    print("  extract's CPU time by part: " + ", ".join(
        f"{k} {v:.0f} %" for k, v in figures["parts_percent"].items()))
    return figures


def wav2vec2_base(folder: Path) -> Path:
    """A wav2vec 2.0 of the base size with random weights, saved and marked untrained."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    from gaia.common.weights import UNTRAINED_MARKER

    if not (folder / "config.json").is_file():
        torch.manual_seed(0)
        Wav2Vec2Model(Wav2Vec2Config()).save_pretrained(folder)
        (folder / UNTRAINED_MARKER).write_text("random init, for benchmarks\n")
    return folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--sets", default="demo,1080p")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the 1080p clip")
    parser.add_argument("--features", choices=("logmel", "wav2vec2-base"), default="logmel")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating rounds of decode and extract; the least CPU of each")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON last")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="gaia-extract-bench-"))
    print(f"work folder: {work}")

    import torch

    torch.set_num_threads(1)  # as in a worker: one core per video
    from gaia.pipeline.extract.settings import ExtractConfig, audio_chain

    if args.features == "wav2vec2-base":
        config = ExtractConfig(features="wav2vec2", allow_untrained=True,
                               features_dir=str(wav2vec2_base(work / "wav2vec2-base")))
    else:
        config = ExtractConfig()
    chain = audio_chain(config)
    runs = make_runs(work, args.sets.split(","), args.seconds)
    print(f"speech features: {args.features}")
    results = {name: bench_run(name, root, chain, config, work / "bench-shards", args.rounds)
               for name, root in runs.items()}
    if args.json:
        print(json.dumps({"features": args.features, "sets": results}, indent=1))


if __name__ == "__main__":
    main()
