"""The VAE a config asks for (paper, section 4.1; table 6 for ``disentangle: false``), and its
parameter count: the one module that knows both models."""

from __future__ import annotations

import torch

from gaia.training.vae.config import VaeConfig
from gaia.training.vae.discriminator import PatchDiscriminator
from gaia.training.vae.frame_vae import FrameVAE
from gaia.training.vae.model import TwoEncoderVAE


def build_vae(config: VaeConfig) -> TwoEncoderVAE | FrameVAE:
    """The paper's two-encoder VAE, or with ``disentangle: false`` the one-encoder ablation."""
    return TwoEncoderVAE(config) if config.disentangle else FrameVAE(config)


def count_parameters(config: VaeConfig) -> dict[str, int]:
    """Parameters per part and ``total`` (the VAE, with or without disentanglement;
    ``discriminator`` is listed apart and not in ``total``). Built on the meta device: nothing
    is allocated, so vae-large is cheap. (Here, not in ``config``: the config module never
    imports the models.)"""
    with torch.device("meta"):
        model = build_vae(config)
        disc = PatchDiscriminator.from_config(config)
    counts = {name: sum(p.numel() for p in part.parameters())
              for name, part in model.named_children()}
    counts["total"] = sum(counts.values())
    counts["discriminator"] = sum(p.numel() for p in disc.parameters())
    return counts
