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
from pathlib import Path

import torch

from gaia.common.config_files import parse_overrides
from gaia.schemas.atomic import write_text_atomic
from gaia.training.data.latent_stats import LatentStats
from gaia.training.distributed import World, barrier, close_world, init_world
from gaia.training.landmarks.data import LandmarkStreamConfig, landmark_stats
from gaia.training.landmarks.options import LandmarkTrainOptions
from gaia.training.run_file import load_model
from gaia.training.s2m.config import S2mConfig
from gaia.training.s2m.train import train_windows

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
        return train_windows(options, world, config, stats, LandmarkStreamConfig,
                             "landmarks", "68 x 2 points", log)
    finally:
        close_world(world)


def main(argv: list[str] | None = None) -> int:
    """Entry for ``torchrun -m gaia.training.landmarks.train ...`` (the CLI's options)."""
    from gaia.training.train_parser import torchrun_options

    train_landmarks(torchrun_options("landmarks", LandmarkTrainOptions, argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
