"""What ``gaia train diffusion`` takes (paper, section 4.2): the shared run options and the
speech-to-motion model's own.

Apart from the trainer so that building the ``gaia`` command's parser imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from gaia.training.s2m.config import S2mConfig
from gaia.training.train_options import TrainOptions


@dataclass(frozen=True)
class DiffusionTrainOptions(TrainOptions):
    """Everything ``gaia train diffusion`` takes (see its --help). stats: the latent shards'
    ``stats.json`` (default: beside the first shard)."""

    model_class = S2mConfig
    windows_per_clip: int = 2
    reference: str = "random"  # the paper samples the reference frame at random (B.3)
    short_clips: str = "whole"  # clips under window_min: one whole-clip window, or "drop"
    stats: str | None = None
