"""``gaia train s2m``: the speech-to-motion Conformer on streamed latent shards (paper,
section 4.2).

Reads what ``gaia encode-latents`` wrote (latent shards and their ``stats.json``), and runs the
loop the VAE trainer runs (``loop.run_loop``): alone or under ``torchrun`` on any number of
processes, with the same checkpoints, exact resume and logging.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import torch

from gaia.common.config_files import parse_overrides
from gaia.common.deprecation import deprecated
from gaia.common.storage import is_uri
from gaia.text.instruction_rows import CONDITION_NAME
from gaia.training.checkpoint import seed_rank
from gaia.training.data.latent_stats import LatentStats
from gaia.training.data.latent_windows import WindowStreamConfig
from gaia.training.data.shard_stream import expand_shards, shard_loader
from gaia.training.distributed import World, close_world, init_world
from gaia.training.loop import run_loop
from gaia.training.run_file import load_model, resolved_run
from gaia.training.s2m.config import S2mConfig
from gaia.training.s2m.options import (  # noqa: F401 - the old name is kept for a release
    S2M_TASK,
    DiffusionTrainOptions,
    S2mTrainOptions,
)
from gaia.training.s2m.task import S2mTask

logger = logging.getLogger(__name__)  # progress lines; gaia.common.logs routes them


def stats_path(options: S2mTrainOptions) -> Path | str:
    """``--stats``, else ``stats.json`` in the folder (or store prefix) of the first latent
    shard."""
    if options.stats:
        return options.stats if is_uri(options.stats) else Path(options.stats)
    first = expand_shards(options.shards)[0]
    if first.startswith("pipe:") or first.startswith(("http://", "https://")):
        raise ValueError("latent shards given as pipe: or http urls: pass --stats with their "
                         "stats.json")
    return first.rpartition("/")[0] if is_uri(first) else Path(first).parent


def check_condition(stats: LatentStats, instruct: bool, where: str) -> None:
    """ValueError saying what to run when latent statistics were made for the other model:
    instruction rows for ``gaia train s2m``, speech for ``gaia train instruct``."""
    name = (stats.speech_features or {}).get("name")
    if (name == CONDITION_NAME) == instruct:
        return
    if instruct:
        raise ValueError(f"{where} holds latents conditioned on speech ({name}): `gaia train "
                         "instruct` needs latents of instruct shards, from `gaia encode-latents "
                         "--text-encoder DIR --shards RUN/shards/instruct`")
    raise ValueError(f"{where} holds latents conditioned on instructions: train them with "
                     "`gaia train instruct`, or encode speech shards without --text-encoder")


def train_s2m(options: S2mTrainOptions, log=logger.info) -> int:
    """Train; returns the last step reached."""
    return train_on_latents(options, S2M_TASK, False, log)


def train_on_latents(options: S2mTrainOptions, task_name: str, instruct: bool, log) -> int:
    """The s2m model of the ``task_name-*`` presets on latent shards whose condition is speech,
    or instructions (``instruct``: ``gaia train instruct``); returns the last step reached."""
    world = init_world(options.device, options.dist_timeout)
    try:
        torch.manual_seed(options.seed)  # the same on every rank: identical initial weights
        config = load_model(S2mConfig, options.config, f"{task_name}-", task_name,
                            parse_overrides(options.overrides))
        where = stats_path(options)
        stats = LatentStats.load(where)
        check_condition(stats, instruct, str(where))
        return train_windows(options, world, config, stats, WindowStreamConfig, task_name,
                             f"latent {stats.latent_dim}", log)
    finally:
        close_world(world)


def train_windows(options: S2mTrainOptions, world: World, config: S2mConfig,
                  stats: LatentStats, stream_class: type[WindowStreamConfig], task_name: str,
                  motion: str, log) -> int:
    """The s2m task on windows of ``stream_class`` through the loop: what the motion
    model and the landmark model (``training.landmarks.train``) share once their config and
    statistics are known. ``motion`` describes the motion dimensions in the first log line."""
    task = S2mTask(config, stats, world, seed=options.seed,
                         lr_scale=options.lr_scale(world.size))
    seed_rank(options.seed, world.rank)  # weights are built: from here each rank draws its own
    subset = options.data_subset(log if world.is_main else None)
    stream = stream_class(shards=options.shards, window_min=config.window_min,
                          window_max=config.window_max,
                          windows_per_clip=options.windows_per_clip,
                          reference=options.reference, seed=options.seed,
                          short_clips=options.short_clips, subset=subset)
    loader = shard_loader(stream, options.batch_size, rank=world.rank, world_size=world.size,
                          num_workers=options.num_workers,
                          batches_per_epoch=options.batches_per_epoch)
    document = options.run_document(
        task_name, config, world, latents={"vae": stats.vae,
                                           "speech_features": stats.speech_features,
                                           "latent_shape": list(stats.latent_shape)},
        data_subset=subset and subset.record())
    if world.is_main:
        counts = sum(p.numel() for p in task.network.parameters())
        log(f"[train] {task_name} {config.name}: {counts / 1e6:.2f} M parameters ({motion}, "
            f"speech {stats.speech_dim} dims), world {world.size} on {world.device}, -> "
            f"{options.out}")
    return run_loop(task, loader, options.loop_options(), world, document,
                    log=log if world.is_main else (lambda _: None),
                    run_config=resolved_run(options, config))


def train_diffusion(options: S2mTrainOptions, log=logger.info) -> int:
    """``train_s2m``'s name before s2m; kept for one release (logs a deprecation line)."""
    deprecated("train_diffusion", "train_s2m")
    return train_s2m(options, log)


def main(argv: list[str] | None = None) -> int:
    """Entry for ``torchrun -m gaia.training.s2m.train ...`` (same options as the CLI)."""
    from gaia.training.train_parser import torchrun_options

    train_s2m(torchrun_options(S2M_TASK, S2mTrainOptions, argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
