"""Throughput of ``extract`` and of reading its shards, each against a reference in the same run.

1. Extract: clip-seconds cut per CPU-second, running the same per-video code the Ray actors
   run (``pipeline.extract.video``) in this process on the demo sample, against decoding those same
   segments' frames alone; and the wall time of the whole Ray job for reference.
2. Reading: samples per second through the project's reading path (``webdataset.WebDataset``
   plus the spec's safe decoding: ``load_npy`` with pickles refused, JSON) against reading the
   same tar bytes raw with ``tarfile``, over copies of the demo shards.

    python benchmarks/extract_throughput.py [--work DIR] [--copies 50]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tarfile
import tempfile
import time
from pathlib import Path


def cpu(task):
    started = time.process_time()
    result = task()
    return time.process_time() - started, result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--copies", type=int, default=50)
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="gaia-extract-bench-"))
    print(f"work folder: {work}")

    import decord
    import torch

    torch.set_num_threads(1)
    from gaia.pipeline.extract.job import _base_json, plan, run_extract
    from gaia.pipeline.extract.settings import ExtractConfig, audio_chain
    from gaia.pipeline.extract.video import extract_video, output_frames, source_indices
    from gaia.pipeline.measure.job import run_measure
    from gaia.pipeline.run_dir import RunDir
    from gaia.pipeline.tune.table import read_measures
    from gaia.samples.build import build_demo_sample

    build_demo_sample(work / "sample")
    run_measure([str(work / "sample")], work / "run", log=lambda _: None)
    run = RunDir(work / "run")
    config = ExtractConfig()
    groups, _ = plan(run, "vae", [], config, {})
    chain = audio_chain(config)
    base = _base_json(run, "vae", [], config, chain)
    clip_seconds = sum(output_frames(job.segment) for jobs in groups for job in jobs) / 25.0

    def decode_only() -> None:
        for jobs in groups:
            times = read_measures(run, jobs[0].video_id, ("time_s",))["time_s"]
            reader = decord.VideoReader(jobs[0].path, num_threads=1)
            for job in jobs:
                picks = sorted(set(source_indices(times, job.segment).tolist()))
                reader.get_batch(picks).asnumpy()

    def extract_all() -> int:
        count = 0
        for jobs in groups:
            metrics = run.metrics / f"{jobs[0].video_id}.parquet"
            count += sum(1 for row in extract_video(jobs, metrics, chain, config.crop, base)
                         if row["status"] == "ok")
        return count

    decode_cpu, _ = cpu(decode_only)
    extract_cpu, clips = cpu(extract_all)
    print(f"\n== extract on the demo sample (vae preset): {clips} clips, {clip_seconds:.1f} "
          "clip-seconds")
    print(f"  decode the segments alone  {clip_seconds / decode_cpu:7.2f} clip-s per CPU-s")
    print(f"  extract (crop, encode, audio, features, sample) "
          f"{clip_seconds / extract_cpu:7.2f} clip-s per CPU-s")
    print(f"  extract / decode alone: {decode_cpu / extract_cpu:.2f}")
    started = time.monotonic()
    summary = run_extract(work / "run", "vae", config=config, log=lambda _: None)
    print(f"  whole Ray job: {time.monotonic() - started:.1f} s wall for "
          f"{summary.clips_written} clips (start-up included)")

    shards = sorted((work / "run" / "shards" / "vae").glob("*.tar"))
    copies = work / "copies"
    copies.mkdir(exist_ok=True)
    urls = []
    for i in range(args.copies):
        for shard in shards:
            target = copies / f"{i:04d}-{shard.name}"
            shutil.copyfile(shard, target)
            urls.append(str(target))

    def raw() -> int:
        count = 0
        for url in urls:
            with tarfile.open(url) as archive:
                for member in archive:
                    archive.extractfile(member).read()
                    count += member.name.endswith(".json")
        return count

    def loader() -> int:
        import webdataset as wds

        from gaia.schemas.shards import load_npy

        count = 0
        for sample in wds.WebDataset(urls, shardshuffle=False):
            json.loads(sample["json"])
            for name in ("landmarks.npy", "pose.npy", "speech.npy"):
                if name in sample:
                    load_npy(sample[name])
            count += 1
        return count

    raw()  # warm the page cache so both read from memory
    started = time.monotonic()
    raw_count = raw()
    raw_s = time.monotonic() - started
    started = time.monotonic()
    loader_count = loader()
    loader_s = time.monotonic() - started
    assert raw_count == loader_count
    print(f"\n== reading {loader_count} samples ({len(urls)} shards)")
    print(f"  raw tar bytes            {raw_count / raw_s:9.0f} samples/s")
    print(f"  webdataset + safe decode {loader_count / loader_s:9.0f} samples/s")
    print(f"  loader / raw: {raw_s / loader_s:.2f}")


if __name__ == "__main__":
    main()
