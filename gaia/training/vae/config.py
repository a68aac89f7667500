"""Sizes and loss settings of GAIA's two-encoder VAE (paper, section 4.1 and appendix B.1).

A size is a YAML file in ``gaia/configs/training/`` (``vae-tiny``, ``vae-small``, ``vae-base``,
``vae-large``) naming only what differs from the defaults of ``VaeConfig``; unknown keys are
errors that name the key. ``d`` is ``channels`` and ``n`` is ``num_res_blocks``; the paper gives
only those two numbers per size, the rest (channel multipliers, latent channels) is our reading.

Parameter counts these presets give (``build.count_parameters``: both encoders and the
decoder, the discriminator apart), beside the paper's:

=========  ===  ==  ============  =========  =====  ======
size        d   n   multipliers   ours       paper  ratio
=========  ===  ==  ============  =========  =====  ======
vae-small  128  2   1, 2, 2, 4    96.4M      80M    1.20
vae-base   256  4   1, 2, 2, 4    600.0M     700M   0.86
vae-large  512  8   1, 1, 2, 2    1498.2M    1.7B   0.88
=========  ===  ==  ============  =========  =====  ======

All three are within a factor 1.2 of the paper (the motion encoder repeats the last multiplier
for its extra level). Doubling both ``d`` and ``n`` multiplies a convolutional stack's size by
about 7-8, which fits small to base (80M to 700M) but not base to large (700M to 1.7B, a
factor 2.4): with small's multipliers large would have 4.1B parameters, so it keeps its
deepest levels at ``2 d`` (multipliers ``1, 1, 2, 2``).

``disentangle: false`` is table 6's "w/o disentanglement" (paper, section 5.3): one encoder of
the whole frame and a decoder of its latent alone (``training.vae.frame_vae``); the s2m model
then learns those whole-frame latents (``s2m_latent_shape``). The encoder keeps the appearance
encoder's layout (``channel_multipliers``, ``appearance_latent_channels``: downsampling 8),
since its latent must carry the whole frame; the ``motion_*`` keys are unused. Parameter counts
(``count_parameters``, the discriminator apart), with and without disentanglement: vae-tiny
1.11M and 0.72M, vae-small 96.4M and 60.3M, vae-base 600.0M and 359.0M (no motion encoder,
and a decoder projection of one latent instead of two).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gaia.common.config_files import build_config, config_dict, load_config

PERCEPTUAL_KINDS = ("lpips", "none")
GAN_LOSSES = ("hinge", "vanilla")
DISC_NORMS = ("group", "batch", "none")


@dataclass(frozen=True)
class VaeConfig:
    """One VAE size with its loss and optimiser settings (defaults: the paper's small size).

    Architecture (paper, section 4.1):
      disentangle: True (the paper's model): an appearance encoder of frame i and a motion
        encoder of frame j's landmarks. False: table 6's "w/o disentanglement", one encoder
        of the whole frame j, the decoder reconstructing it from that latent alone (module
        docstring). Checkpoints record it; those from before it read as True.
      image_size: side of the square frames in pixels (256 in the paper).
      channels: base width ``d``. num_res_blocks: residual blocks per level ``n`` (the decoder
        has ``n + 1`` per level, as in latent-diffusion's decoder).
      channel_multipliers: width of each level of the appearance encoder and the decoder as a
        multiple of ``d``; one downsampling between levels, so 4 levels give a factor 8.
      motion_channel_multipliers: the same for the motion encoder; it must have one level more
        (factor 16) so its latent is half the appearance latent's side.
      appearance_latent_channels, motion_latent_channels: channels of each latent.
      landmark_channels: channels of the rendered landmark image, 6 (one per face part) or 1
        (all parts in one channel); see ``training.vae.landmark_render``.
      landmark_line_width: line width of the rendered landmarks, in pixels at ``image_size``.
      norm_groups: GroupNorm groups (every width must divide by it). dropout: in res blocks.
      gradient_checkpointing: recompute each block's activations in the backward pass
        (less memory, about a third more compute), for the large size.
    Loss (latent-diffusion's LPIPSWithDiscriminator):
      kl_weight, perceptual_weight: weights of the KL and LPIPS terms (L1 has weight 1).
      perceptual: "lpips" or "none".
      disc_weight: scale of the adaptive GAN weight. disc_start: first step with a GAN term.
      gan_loss: "hinge" or "vanilla" (non-saturating).
      disc_layers, disc_channels, disc_norm, disc_spectral_norm: the PatchGAN discriminator.
    Optimiser (Adam, constant learning rate): lr, betas.
    """

    name: str = "vae"
    disentangle: bool = True
    image_size: int = 256
    channels: int = 128
    num_res_blocks: int = 2
    channel_multipliers: tuple[int, ...] = (1, 2, 2, 4)
    motion_channel_multipliers: tuple[int, ...] = (1, 2, 2, 4, 4)
    appearance_latent_channels: int = 4
    motion_latent_channels: int = 4
    landmark_channels: int = 6
    landmark_line_width: float = 2.0
    norm_groups: int = 32
    dropout: float = 0.0
    gradient_checkpointing: bool = False
    kl_weight: float = 1.0e-6
    perceptual: str = "lpips"
    perceptual_weight: float = 1.0
    disc_weight: float = 0.5
    disc_start: int = 50_001
    gan_loss: str = "hinge"
    disc_layers: int = 3
    disc_channels: int = 64
    disc_norm: str = "group"
    disc_spectral_norm: bool = False
    lr: float = 4.5e-6
    betas: tuple[float, float] = (0.5, 0.9)

    def __post_init__(self) -> None:
        if len(self.motion_channel_multipliers) != len(self.channel_multipliers) + 1:
            raise ValueError("motion_channel_multipliers needs exactly one level more than "
                             "channel_multipliers (motion latent at half the appearance side)")
        if self.image_size % self.motion_downsampling:
            raise ValueError(f"image_size {self.image_size} must divide by the motion "
                             f"encoder's downsampling {self.motion_downsampling}")
        widths = {self.channels * m for m in
                  self.channel_multipliers + self.motion_channel_multipliers}
        if any(w % self.norm_groups for w in widths):
            raise ValueError(f"every width {sorted(widths)} must divide by norm_groups "
                             f"{self.norm_groups}")
        if self.landmark_channels not in (1, 6):
            raise ValueError("landmark_channels must be 1 or 6")
        if self.perceptual not in PERCEPTUAL_KINDS:
            raise ValueError(f"perceptual must be one of {PERCEPTUAL_KINDS}")
        if self.gan_loss not in GAN_LOSSES:
            raise ValueError(f"gan_loss must be one of {GAN_LOSSES}")
        if self.disc_norm not in DISC_NORMS:
            raise ValueError(f"disc_norm must be one of {DISC_NORMS}")
        if min(self.channel_multipliers + self.motion_channel_multipliers) < 1:
            raise ValueError("channel multipliers must be positive")

    @property
    def appearance_downsampling(self) -> int:
        return 2 ** (len(self.channel_multipliers) - 1)

    @property
    def motion_downsampling(self) -> int:
        return 2 ** (len(self.motion_channel_multipliers) - 1)

    @property
    def appearance_latent_shape(self) -> tuple[int, int, int]:
        side = self.image_size // self.appearance_downsampling
        return (self.appearance_latent_channels, side, side)

    @property
    def motion_latent_shape(self) -> tuple[int, int, int]:
        side = self.image_size // self.motion_downsampling
        return (self.motion_latent_channels, side, side)

    @property
    def s2m_latent_shape(self) -> tuple[int, int, int]:
        """The per-frame latent the s2m model learns and generation decodes: the motion
        latent, or without disentanglement the whole frame's latent."""
        return self.motion_latent_shape if self.disentangle else self.appearance_latent_shape

    @property
    def latent_kind(self) -> str:
        """What that latent encodes: ``motion`` (landmarks) or ``frame`` (the whole frame)."""
        return "motion" if self.disentangle else "frame"

    def to_dict(self) -> dict[str, Any]:
        """Plain values (tuples as lists), ready for YAML or JSON."""
        return config_dict(self)


def load_vae_config(name_or_path: str | Path, **overrides: Any) -> VaeConfig:
    """The defaults, then a preset (a name in gaia/configs/training or a YAML path), then
    ``overrides``. Unknown keys and values of the wrong type raise ``ValueError`` naming the
    key."""
    return load_config(VaeConfig, "training", name_or_path, "vae-", "VAE", overrides)


def build_vae_config(values: dict[str, Any]) -> VaeConfig:
    """A ``VaeConfig`` from plain values, each checked against the field's default type."""
    return build_config(VaeConfig, values, "VAE")
