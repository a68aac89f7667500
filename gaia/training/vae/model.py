"""GAIA's two-encoder VAE (paper, section 4.1 and appendix B.1; docs/models.md).

Frame ``i`` of a clip goes through the appearance encoder (downsampling 8) to an appearance
latent; the rendered landmark image of frame ``j`` goes through the motion encoder
(downsampling 16) to a motion latent. The decoder upsamples the motion latent x2 to the
appearance latent's grid, concatenates the two, projects them to its width and decodes frame
``j``. Appearance must come from frame ``i`` and motion from ``j``'s landmarks only, so the
latents disentangle: at inference the motion latents come from the s2m model.

Both encoders and the decoder are stacks of residual blocks (GroupNorm, SiLU, 3x3 convs) with
strided-conv downsampling and nearest-neighbour-plus-conv upsampling, in the layout of
latent-diffusion's KL autoencoder (no attention: the paper names convolutional residual
blocks only). Each encoder outputs a diagonal Gaussian (mean, log-variance). Images are in
[-1, 1]. Single-device code: DDP wraps it in the trainer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from gaia.training.vae.config import VaeConfig

LOGVAR_RANGE = (-30.0, 20.0)


@dataclass
class DiagonalGaussian:
    """A posterior ``N(mean, exp(logvar))`` per latent element; ``kl`` against ``N(0, 1)``."""

    mean: Tensor
    logvar: Tensor

    @classmethod
    def from_moments(cls, moments: Tensor) -> DiagonalGaussian:
        mean, logvar = moments.chunk(2, dim=1)
        return cls(mean, logvar.clamp(*LOGVAR_RANGE))

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        noise = torch.randn(self.mean.shape, generator=generator, device=self.mean.device,
                            dtype=self.mean.dtype)
        return self.mean + torch.exp(0.5 * self.logvar) * noise

    def mode(self) -> Tensor:
        return self.mean

    def kl(self) -> Tensor:
        """KL divergence to the standard normal, summed over a sample's elements: (B,),
        computed in float32."""
        mean, logvar = self.mean.float(), self.logvar.float()
        return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).flatten(1).sum(1)


@dataclass
class Posteriors:
    appearance: DiagonalGaussian
    motion: DiagonalGaussian

    def parts(self) -> dict[str, DiagonalGaussian]:
        """Each latent's posterior by name (the loss sums their KL terms)."""
        return {"appearance": self.appearance, "motion": self.motion}


class ResBlock(nn.Module):
    """GroupNorm, SiLU, conv, GroupNorm, SiLU, dropout, conv; 1x1 conv on the skip when the
    width changes."""

    def __init__(self, cin: int, cout: int, groups: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=1e-6)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, cout, eps=1e-6)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class Downsample(nn.Module):
    """Halve the side with a stride-2 3x3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Double the side: nearest neighbour, then a 3x3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def run_blocks(body: nn.Sequential, x: Tensor, checkpointing: bool) -> Tensor:
    """``body(x)``; with ``checkpointing`` (and gradients on), each block's activations are
    recomputed in the backward pass instead of kept."""
    if not (checkpointing and torch.is_grad_enabled()):
        return body(x)
    for block in body:
        x = checkpoint(block, x, use_reentrant=False)
    return x


class Encoder(nn.Module):
    """Image (B, in_channels, S, S) -> moments (B, 2 * latent_channels, S / 2^(L-1), ...):
    ``num_res_blocks`` blocks per level, a downsampling between levels, two blocks in the
    middle."""

    def __init__(self, in_channels: int, channels: int, multipliers: tuple[int, ...],
                 num_res_blocks: int, latent_channels: int, groups: int,
                 dropout: float, checkpointing: bool = False) -> None:
        super().__init__()
        self.checkpointing = checkpointing
        self.conv_in = nn.Conv2d(in_channels, channels * multipliers[0], 3, padding=1)
        layers: list[nn.Module] = []
        width = channels * multipliers[0]
        for level, mult in enumerate(multipliers):
            for _ in range(num_res_blocks):
                layers.append(ResBlock(width, channels * mult, groups, dropout))
                width = channels * mult
            if level < len(multipliers) - 1:
                layers.append(Downsample(width))
        layers += [ResBlock(width, width, groups, dropout), ResBlock(width, width, groups, dropout)]
        self.body = nn.Sequential(*layers)
        self.norm_out = nn.GroupNorm(groups, width, eps=1e-6)
        self.conv_out = nn.Conv2d(width, 2 * latent_channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        h = run_blocks(self.body, self.conv_in(x), self.checkpointing)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    """(appearance latent, motion latent at half its side) -> image (B, 3, S, S): the motion
    latent upsampled x2 and concatenated, projected by a 3x3 conv, two middle blocks, then
    ``num_res_blocks + 1`` blocks per level from the deepest, an upsampling between levels.
    Without disentanglement (``config.disentangle`` False) the projection takes the whole
    frame's latent alone (``training.vae.frame_vae``)."""

    def __init__(self, config: VaeConfig) -> None:
        super().__init__()
        self.checkpointing = config.gradient_checkpointing
        d, mults, groups = config.channels, config.channel_multipliers, config.norm_groups
        drop = config.dropout
        width = d * mults[-1]
        fused = config.appearance_latent_channels + (
            config.motion_latent_channels if config.disentangle else 0)
        self.project = nn.Conv2d(fused, width, 3, padding=1)
        layers: list[nn.Module] = [ResBlock(width, width, groups, drop),
                                   ResBlock(width, width, groups, drop)]
        for level in reversed(range(len(mults))):
            for _ in range(config.num_res_blocks + 1):
                layers.append(ResBlock(width, d * mults[level], groups, drop))
                width = d * mults[level]
            if level > 0:
                layers.append(Upsample(width))
        self.body = nn.Sequential(*layers)
        self.norm_out = nn.GroupNorm(groups, width, eps=1e-6)
        self.conv_out = nn.Conv2d(width, 3, 3, padding=1)

    def forward(self, z_appearance: Tensor, z_motion: Tensor | None = None) -> Tensor:
        if z_motion is None:  # a decoder without disentanglement: the frame's latent alone
            h = self.project(z_appearance)
        else:
            motion = F.interpolate(z_motion, size=z_appearance.shape[-2:], mode="nearest")
            h = self.project(torch.cat([z_appearance, motion.to(z_appearance.dtype)], dim=1))
        h = run_blocks(self.body, h, self.checkpointing)
        return self.conv_out(F.silu(self.norm_out(h)))


class TwoEncoderVAE(nn.Module):
    """Appearance encoder, motion encoder, shared decoder (paper, section 4.1)."""

    def __init__(self, config: VaeConfig) -> None:
        super().__init__()
        if not config.disentangle:
            raise ValueError("a config with disentangle: false builds a FrameVAE "
                             "(training.vae.build.build_vae), not a TwoEncoderVAE")
        self.config = config
        common = dict(channels=config.channels, num_res_blocks=config.num_res_blocks,
                      groups=config.norm_groups, dropout=config.dropout,
                      checkpointing=config.gradient_checkpointing)
        self.appearance_encoder = Encoder(3, multipliers=config.channel_multipliers,
                                          latent_channels=config.appearance_latent_channels,
                                          **common)
        self.motion_encoder = Encoder(config.landmark_channels,
                                      multipliers=config.motion_channel_multipliers,
                                      latent_channels=config.motion_latent_channels, **common)
        self.decoder = Decoder(config)

    def encode_appearance(self, x: Tensor) -> DiagonalGaussian:
        """Frame (B, 3, S, S) in [-1, 1] -> posterior over (B, C_a, S/8, S/8)."""
        return DiagonalGaussian.from_moments(self.appearance_encoder(x))

    def encode_motion(self, landmark_image: Tensor) -> DiagonalGaussian:
        """Rendered landmarks (B, C_l, S, S) in [-1, 1] -> posterior over (B, C_m, S/16, ...)."""
        return DiagonalGaussian.from_moments(self.motion_encoder(landmark_image))

    def decode(self, z_appearance: Tensor, z_motion: Tensor) -> Tensor:
        """Latents -> frame (B, 3, S, S), roughly in [-1, 1] (not clamped)."""
        return self.decoder(z_appearance, z_motion)

    def forward(self, appearance_frame: Tensor, landmark_image: Tensor, sample: bool = True,
                generator: torch.Generator | None = None) -> tuple[Tensor, Posteriors]:
        """Frame i and frame j's landmark image -> (reconstruction of frame j, posteriors).
        ``sample=False`` decodes the posterior means."""
        posteriors = Posteriors(self.encode_appearance(appearance_frame),
                                self.encode_motion(landmark_image))
        if sample:
            z_app = posteriors.appearance.sample(generator)
            z_motion = posteriors.motion.sample(generator)
        else:
            z_app, z_motion = posteriors.appearance.mode(), posteriors.motion.mode()
        return self.decode(z_app, z_motion), posteriors

    @property
    def last_layer_weight(self) -> nn.Parameter:
        """The decoder's output conv weight: the adaptive GAN weight compares gradient norms
        here."""
        return self.decoder.conv_out.weight
