"""The training shard loader against a raw tar read of the same bytes and against the trainer.

Over copies of the demo sample's clip shards (cut with the vae preset, every clip in train),
from the page cache, one core:

- raw: every member of every tar read with ``tarfile`` (the reference);
- read + safe decode: the loader's tar reading (``training.data.shard_read``, WebDataset's
  grouping rules) plus the spec's safe decoding (``load_npy`` with pickles refused, JSON): the
  loader without the video;
- loader: ``training.data``'s ``ClipStream`` as a trainer's DataLoader worker runs it (shuffle
  buffer, safe decoding, the clip's frames decoded from its mp4 and resized), one pass, at
  vae-tiny's 64 px and vae-small's 256 px; in clips/s and VAE pairs/s (4 pairs per clip);
- appetite: pairs/s one training step of vae-tiny and of vae-small consumes on this CPU
  (batches already in memory, torch on every core, no perceptual loss; vae-small at batch 2,
  as 8 does not fit in 23 GB of memory), so
  supply / appetite says whether loading (< 1 per loader core) or compute bounds training.

    python benchmarks/loader_throughput.py [--work DIR] [--copies 20] [--steps 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tarfile
import tempfile
import time
from pathlib import Path


def make_shards(work: Path) -> list[Path]:
    """The demo sample measured and cut into vae shards (reused when ``work`` has them)."""
    from gaia.pipeline.extract.job import ExtractConfig, run_extract
    from gaia.pipeline.measure.job import run_measure
    from gaia.samples.build import build_demo_sample

    out = work / "run" / "shards" / "vae"
    if not list(out.glob("*.tar")):
        build_demo_sample(work / "sample")
        run_measure([str(work / "sample")], work / "run", log=lambda _: None, use_ray=False)
        run_extract(work / "run", "vae", config=ExtractConfig(val_fraction=0.0),
                    log=lambda _: None, use_ray=False)
    return sorted(out.glob("*.tar"))


def copies_of(shards: list[Path], folder: Path, copies: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    urls = []
    for i in range(copies):
        for shard in shards:
            target = folder / f"{i:04d}-{shard.name}"
            if not target.exists():
                shutil.copyfile(shard, target)
            urls.append(str(target))
    return urls


def raw_read(urls: list[str]) -> int:
    count = 0
    for url in urls:
        with tarfile.open(url) as archive:
            for member in archive:
                archive.extractfile(member).read()
                count += member.name.endswith(".json")
    return count


def safe_read(urls: list[str]) -> int:
    from gaia.schemas.shards import load_npy
    from gaia.training.data.shard_read import shard_samples

    count = 0
    for sample in (s for url in urls for s in shard_samples(url, lambda _: False)):
        json.loads(sample["json"])
        for name in ("landmarks.npy", "pose.npy", "speech.npy"):
            if name in sample:
                load_npy(sample[name])
        count += 1
    return count


def loader_read(urls: list[str], image_size: int) -> int:
    from gaia.training.data.shard_stream import ClipStream, ClipStreamConfig

    config = ClipStreamConfig(shards=",".join(urls), image_size=image_size)
    return sum(1 for _ in ClipStream(config, rank=0, world_size=1, repeat=False))


def per_second(task, *args) -> tuple[float, float, int]:
    """(items per CPU-second, items per wall-second, items) of ``task(*args)``, the best of
    three runs each (other load on the machine only adds)."""
    cpu = wall = float("inf")
    count = 0
    for _ in range(3):
        started, clock = time.process_time(), time.monotonic()
        count = task(*args)
        cpu = min(cpu, time.process_time() - started)
        wall = min(wall, time.monotonic() - clock)
    return count / cpu, count / wall, count


def appetite(config_name: str, urls: list[str], steps: int, batch_size: int) -> float:
    """Pairs per wall-second the training step of ``config_name`` consumes (torch on every core)."""
    import torch

    from gaia.training.data.shard_stream import ClipStreamConfig, shard_loader
    from gaia.training.distributed import init_world
    from gaia.training.vae.config import load_vae_config
    from gaia.training.vae.task import VaeTask

    torch.manual_seed(0)
    config = load_vae_config(config_name, perceptual="none")
    stream = ClipStreamConfig(shards=",".join(urls), image_size=config.image_size)
    batches = list(shard_loader(stream, batch_size, rank=0, world_size=1, num_workers=0,
                                batches_per_epoch=steps + 1))
    task = VaeTask(config, None, init_world("cpu"))
    task.train_step([batches[0]], 0)  # warm-up
    started = time.monotonic()
    for step, batch in enumerate(batches[1:], start=1):
        task.train_step([batch], step)
    return steps * batch_size / (time.monotonic() - started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per config")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON last")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="gaia-loader-bench-"))
    print(f"work folder: {work}")

    import torch

    cores = torch.get_num_threads()
    urls = copies_of(make_shards(work), work / "copies", args.copies)
    raw_read(urls)  # warm the page cache so every reader reads from memory
    torch.set_num_threads(1)  # a DataLoader worker: one core
    raw, raw_wall, samples = per_second(raw_read, urls)
    safe, safe_wall, _ = per_second(safe_read, urls)
    figures = {"samples": samples, "shards": len(urls), "raw_samples_per_cpu_s": raw,
               "safe_read_samples_per_cpu_s": safe, "safe_read_over_raw": safe / raw,
               "raw_samples_per_wall_s": raw_wall, "safe_read_samples_per_wall_s": safe_wall,
               "safe_read_over_raw_wall": safe_wall / raw_wall}
    print(f"\n== reading {samples} samples ({len(urls)} shards), one core: per CPU-second "
          "(per wall-second)")
    print(f"  raw tar bytes                {raw:9.0f} samples/s ({raw_wall:.0f})")
    print(f"  read + safe decode           {safe:9.0f} samples/s ({safe_wall:.0f})   / raw: "
          f"{safe / raw:.2f} ({safe_wall / raw_wall:.2f})")
    for name, size in (("vae-tiny", 64), ("vae-small", 256)):
        clips, _, _ = per_second(loader_read, urls[:max(1, len(urls) // 4)], size)
        figures[f"loader_{size}px_clips_per_cpu_s"] = clips
        figures[f"loader_{size}px_over_raw"] = clips / raw
        print(f"  loader, {name} ({size} px)  {clips:9.1f} clips/s  ({4 * clips:.0f} pairs/s)"
              f"   / raw: {clips / raw:.3f}")
    torch.set_num_threads(cores)
    print(f"\n== trainer appetite on this CPU ({cores} threads)")
    for name, size, batch in (("vae-tiny", 64, args.batch_size), ("vae-small", 256, 2)):
        eats = appetite(name, urls[:4], args.steps, batch)
        supply = 4 * figures[f"loader_{size}px_clips_per_cpu_s"]
        figures[f"{name}_appetite_pairs_per_s"] = eats
        figures[f"{name}_supply_per_loader_core_over_appetite"] = supply / eats
        print(f"  {name} (batch {batch}): {eats:8.2f} pairs/s; one loader core supplies {supply:.0f} pairs/s "
              f"({supply / eats:.1f}x: {'compute' if supply > eats else 'loading'} bounds it)")
    if args.json:
        print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
