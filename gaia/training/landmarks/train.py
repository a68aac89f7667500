"""``gaia train landmarks``: the landmark diffusion model of fully controllable generation
(paper, section 5.4 and appendix D) on curated clip shards.

The speech-to-motion Conformer and its task (``training.s2m``), unchanged, with 68 x 2 landmark
coordinates per frame for motion (``training.landmarks.data``): the same VP-SDE, x0 loss,
conditions (speech, the reference frame's landmarks, head pose), pose predictor, loop, DDP,
checkpoints and exact resume. At generation the points a user holds are in-painted and the
rest is drawn (``gaia generate --control``).
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from gaia.common.config_files import parse_overrides
from gaia.schemas.atomic import write_text_atomic
from gaia.training.checkpoint import seed_rank
from gaia.training.data.latent_stats import LatentStats
from gaia.training.data.shard_stream import shard_loader
from gaia.training.distributed import World, barrier, close_world, init_world
from gaia.training.landmarks.data import LandmarkStreamConfig, landmark_stats
from gaia.training.landmarks.options import LandmarkTrainOptions
from gaia.training.loop import run_loop
from gaia.training.run_file import load_model, resolved_run
from gaia.training.s2m.config import S2mConfig
from gaia.training.s2m.task import DiffusionTask

logger = logging.getLogger(__name__)  # progress lines; gaia.common.logs routes them

STATS_NAME = "landmark_stats.json"


def run_stats(options: LandmarkTrainOptions, world: World) -> LatentStats:
    """``--stats`` if given; else the run folder's (a resumed run keeps its numbers); else
    computed from the shards by rank 0, written to the run, and read by every rank."""
    if options.stats:
        return LatentStats.from_state(json.loads(Path(options.stats).read_text("utf-8")))
    path = Path(options.out) / STATS_NAME
    if world.is_main and not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(landmark_stats(options.shards).to_state(),
                                           indent=1))
    barrier(world)
    return LatentStats.from_state(json.loads(path.read_text(encoding="utf-8")))


def train_landmarks(options: LandmarkTrainOptions, log=logger.info) -> int:
    """Train; returns the last step reached."""
    world = init_world(options.device, options.dist_timeout)
    try:
        torch.manual_seed(options.seed)  # the same on every rank: identical initial weights
        config = load_model(S2mConfig, options.config, "landmarks-", "landmarks",
                            parse_overrides(options.overrides))
        stats = run_stats(options, world)
        task = DiffusionTask(config, stats, world, seed=options.seed,
                             lr_scale=options.lr_scale(world.size))
        seed_rank(options.seed, world.rank)  # weights are built: from here each rank draws its own
        stream = LandmarkStreamConfig(shards=options.shards, window_min=config.window_min,
                                      window_max=config.window_max,
                                      windows_per_clip=options.windows_per_clip,
                                      reference=options.reference, seed=options.seed,
                                      short_clips=options.short_clips)
        loader = shard_loader(stream, options.batch_size, rank=world.rank,
                             world_size=world.size, num_workers=options.num_workers,
                             batches_per_epoch=options.batches_per_epoch)
        document = {"task": "landmarks", "options": asdict(options), "model": config.to_dict(),
                    "latents": {"motion": stats.vae, "speech_features": stats.speech_features},
                    "lr": {"config": config.lr, "scale": options.lr_scale(world.size),
                           "effective": config.lr * options.lr_scale(world.size)},
                    "world_size": world.size, "device": str(world.device),
                    "torch": torch.__version__}
        if world.is_main:
            counts = sum(p.numel() for p in task.network.parameters())
            log(f"[train] landmarks {config.name}: {counts / 1e6:.2f} M parameters (68 x 2 "
                f"points, speech {stats.speech_dim} dims), world {world.size} on "
                f"{world.device}, -> {options.out}")
        return run_loop(task, loader, options.loop_options(), world, document,
                        log=log if world.is_main else (lambda _: None),
                        run_config=resolved_run(options, config))
    finally:
        close_world(world)


def main(argv: list[str] | None = None) -> int:
    """Entry for ``torchrun -m gaia.training.landmarks.train ...`` (the CLI's options)."""
    from gaia.training.cli import torchrun_main

    return torchrun_main("landmarks", argv)


if __name__ == "__main__":
    sys.exit(main())
