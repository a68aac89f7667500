"""vae-tiny training speed on CPU, and whether the loader keeps up, measured in one run.

- step appetite: pairs per second the training step consumes, on batches already in memory;
- loader supply: pairs per second the streaming loader produces (decode, pair, resize) alone,
  with the same settings; the loader must not be the bottleneck (supply / appetite > 1, and
  more workers raise supply further).

It cuts shards from the demo sample first unless --shards is given.

    python benchmarks/train_vae_speed.py [--shards SPEC] [--steps 20] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def make_shards(work: Path) -> str:
    from gaia.pipeline.extract.job import ExtractConfig, run_extract
    from gaia.pipeline.measure.job import run_measure
    from gaia.samples.build import build_demo_sample

    build_demo_sample(work / "sample")
    run_measure([str(work / "sample")], work / "run", log=lambda _: None)
    run_extract(work / "run", "vae", config=ExtractConfig(val_fraction=0.0),
                log=lambda _: None, use_ray=False)
    return str(work / "run" / "shards" / "vae")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", default=None)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--config", default="vae-tiny")
    args = parser.parse_args(argv)

    import torch

    from gaia.training.data.shard_stream import ClipStreamConfig, shard_loader
    from gaia.training.distributed import init_world
    from gaia.training.vae.config import load_vae_config
    from gaia.training.vae.task import VaeTask

    shards = args.shards or make_shards(Path(tempfile.mkdtemp(prefix="gaia-train-bench-")))
    torch.manual_seed(0)
    world = init_world("cpu")
    config = load_vae_config(args.config, perceptual="none")
    stream = ClipStreamConfig(shards=shards, image_size=config.image_size)

    def supply(workers: int) -> float:
        loader = shard_loader(stream, args.batch_size, rank=0, world_size=1,
                             num_workers=workers, batches_per_epoch=args.steps)
        iterator = iter(loader)
        next(iterator)  # start-up (worker processes, first shard) is not throughput
        started = time.monotonic()
        count = sum(len(batch["key"]) for batch in iterator)
        return count / (time.monotonic() - started)

    loader = shard_loader(stream, args.batch_size, rank=0, world_size=1, num_workers=0,
                         batches_per_epoch=args.steps + 2)
    batches = list(loader)
    task = VaeTask(config, None, world)
    task.train_step([batches[0]], 0)  # warm-up
    started = time.monotonic()
    for step, batch in enumerate(batches[1:args.steps + 1], start=1):
        task.train_step([batch], step)
    elapsed = time.monotonic() - started
    appetite = args.steps * args.batch_size / elapsed
    print(f"== {args.config} on CPU ({torch.get_num_threads()} threads), batch "
          f"{args.batch_size} at {config.image_size} px")
    print(f"  training step: {args.steps / elapsed:6.2f} steps/s, appetite {appetite:7.1f} "
          "pairs/s")
    for workers in (0, 2):
        rate = supply(workers)
        print(f"  loader, {workers} workers: {rate:7.1f} pairs/s  (supply / appetite "
              f"{rate / appetite:.2f})")


if __name__ == "__main__":
    main()
