"""What ``gaia train s2m`` takes (paper, section 4.2): the shared run options and the
speech-to-motion model's own.

Apart from the trainer so that building the ``gaia`` command's parser imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from gaia.training.s2m.config import S2mConfig
from gaia.training.train_options import TrainOptions

# The model's name in commands and run documents (``config.json``'s ``task``). Runs written
# before it was named s2m say "diffusion": read as "s2m" for one release.
S2M_TASK = "s2m"
OLD_TASK_NAMES = {"diffusion": S2M_TASK}


@dataclass(frozen=True)
class S2mTrainOptions(TrainOptions):
    """Everything ``gaia train s2m`` takes (see its --help). stats: the latent shards'
    ``stats.json`` (default: beside the first shard)."""

    model_class = S2mConfig
    windows_per_clip: int = 2
    reference: str = "random"  # the paper samples the reference frame at random (B.3)
    short_clips: str = "whole"  # clips under window_min: one whole-clip window, or "drop"
    stats: str | None = None


DiffusionTrainOptions = S2mTrainOptions  # the name before s2m; kept for one release
