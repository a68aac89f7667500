"""What ``gaia train vae`` takes (paper, section 4.1): the shared run options and the VAE's own.

Apart from the trainer so that building the ``gaia`` command's parser imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from gaia.training.train_options import TrainOptions
from gaia.training.vae.config import VaeConfig


@dataclass(frozen=True)
class VaeTrainOptions(TrainOptions):
    """Everything ``gaia train vae`` takes (see its --help)."""

    model_class = VaeConfig
    pairs_per_clip: int = 4
    max_frames: int = 16
    perceptual: str | None = None
    vgg_weights: str | None = None
