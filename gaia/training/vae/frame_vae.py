"""The VAE without disentanglement: table 6's "w/o disentanglement" (paper, section 5.3).

The paper's ablation "encode[s] each frame to the latent without disentanglement, and
utilize[s] the diffusion model to predict the latent". Here that is one encoder of the whole
frame and the decoder of ``training.vae.model`` reading that latent alone: an ordinary image
autoencoder (latent-diffusion's KL autoencoder, without attention), trained with the same
losses. The encoder has the appearance encoder's layout (downsampling 8,
``appearance_latent_channels``), since its latent must carry the whole frame, appearance and
motion together; nothing in it is told apart. The s2m model then learns sequences of these
whole-frame latents, and generation decodes each predicted latent alone: the portrait enters
only as the reference latent of the s2m model, never as a separate appearance input.

``training.vae.build.build_vae`` builds the model a config asks for (this one, or
``TwoEncoderVAE``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gaia.training.vae.config import VaeConfig
from gaia.training.vae.model import Decoder, DiagonalGaussian, Encoder


@dataclass
class FramePosterior:
    """The one posterior of a VAE without disentanglement."""

    frame: DiagonalGaussian

    def parts(self) -> dict[str, DiagonalGaussian]:
        return {"frame": self.frame}


class FrameVAE(nn.Module):
    """One encoder of the whole frame, one decoder (module docstring)."""

    def __init__(self, config: VaeConfig) -> None:
        super().__init__()
        if config.disentangle:
            raise ValueError("FrameVAE is the model of disentangle: false; this config "
                             "disentangles (build.build_vae builds the TwoEncoderVAE)")
        self.config = config
        self.frame_encoder = Encoder(3, config.channels, config.channel_multipliers,
                                     config.num_res_blocks, config.appearance_latent_channels,
                                     config.norm_groups, config.dropout,
                                     config.gradient_checkpointing)
        self.decoder = Decoder(config)

    def encode_frame(self, frame: Tensor) -> DiagonalGaussian:
        """Frame (B, 3, S, S) in [-1, 1] -> posterior over (B, C_a, S/8, S/8)."""
        return DiagonalGaussian.from_moments(self.frame_encoder(frame))

    def decode(self, z_frame: Tensor) -> Tensor:
        """A frame's latent -> the frame (B, 3, S, S), roughly in [-1, 1] (not clamped)."""
        return self.decoder(z_frame)

    def forward(self, frame: Tensor, sample: bool = True,
                generator: torch.Generator | None = None) -> tuple[Tensor, FramePosterior]:
        """Frame j -> (its reconstruction, the posterior). ``sample=False`` decodes the
        posterior mean."""
        posterior = FramePosterior(self.encode_frame(frame))
        z = posterior.frame.sample(generator) if sample else posterior.frame.mode()
        return self.decode(z), posterior

    @property
    def last_layer_weight(self) -> nn.Parameter:
        """The decoder's output conv weight (the adaptive GAN weight's reference)."""
        return self.decoder.conv_out.weight
