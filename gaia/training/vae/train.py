"""``gaia train vae``: the two-encoder VAE on streamed shards (paper, section 4.1).

The same command runs alone (a world of one, CPU or one GPU) and under ``torchrun`` with any
number of processes and nodes; ``loop.run_loop`` does the rest.
"""

from __future__ import annotations

import logging
import sys

import torch

from gaia.common.config_files import parse_overrides
from gaia.training.checkpoint import seed_rank
from gaia.training.data.shard_stream import ClipStreamConfig, shard_loader
from gaia.training.distributed import close_world, init_world
from gaia.training.loop import run_loop
from gaia.training.run_file import load_model, resolved_run
from gaia.training.vae.config import VaeConfig
from gaia.training.vae.options import VaeTrainOptions
from gaia.training.vae.perceptual import load_perceptual, perceptual_provenance
from gaia.training.vae.task import VaeTask

logger = logging.getLogger(__name__)  # progress lines; gaia.common.logs routes them


def train_vae(options: VaeTrainOptions, log=logger.info) -> int:
    """Train; returns the last step reached."""
    world = init_world(options.device, options.dist_timeout)
    try:
        torch.manual_seed(options.seed)  # the same on every rank: identical initial weights
        overrides = parse_overrides(options.overrides)
        if options.perceptual:
            overrides["perceptual"] = options.perceptual
        config = load_model(VaeConfig, options.config, "vae-", "VAE", overrides)
        perceptual = load_perceptual(config.perceptual, options.vgg_weights)
        task = VaeTask(config, perceptual, world, seed=options.seed,
                       lr_scale=options.lr_scale(world.size))
        seed_rank(options.seed, world.rank)  # weights are built: from here each rank draws its own
        subset = options.data_subset(log if world.is_main else None)
        stream = ClipStreamConfig(shards=options.shards, image_size=config.image_size,
                                  seed=options.seed, pairs_per_clip=options.pairs_per_clip,
                                  max_frames=options.max_frames, subset=subset)
        loader = shard_loader(stream, options.batch_size, rank=world.rank,
                             world_size=world.size, num_workers=options.num_workers,
                             batches_per_epoch=options.batches_per_epoch)
        loop = options.loop_options()
        document = options.run_document("vae", config, world,
                                        perceptual=perceptual_provenance(perceptual),
                                        data_subset=subset and subset.record())
        if world.is_main:
            counts = sum(p.numel() for p in task.model.parameters())
            log(f"[train] vae {config.name}: {counts / 1e6:.2f} M parameters, world "
                f"{world.size} on {world.device}, -> {options.out}")
        return run_loop(task, loader, loop, world, document,
                        log=log if world.is_main else (lambda _: None),
                        run_config=resolved_run(options, config))
    finally:
        close_world(world)


def main(argv: list[str] | None = None) -> int:
    """Entry for ``torchrun -m gaia.training.vae.train ...`` (same options as the CLI)."""
    from gaia.training.train_parser import torchrun_options

    train_vae(torchrun_options("vae", VaeTrainOptions, argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
