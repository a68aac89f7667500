"""Sizes and training settings of GAIA's speech-to-motion (s2m) model (paper, section 4.2
and appendix B.1; docs/models.md).

A size is a YAML file in ``gaia/configs/training/`` (``s2m-tiny``, ``s2m-small``, ``s2m-base``,
``s2m-large``) naming only what differs from the defaults of ``S2mConfig``; unknown keys are
errors that name the key. ``d`` is ``d_model`` and ``L`` is ``num_layers``; the paper gives only
those two numbers per size, the rest (heads, feed-forward width, the conditioning modules) is
our reading. ``s2m-tiny`` is not in the paper: it is for CPU tests and the demo.

Parameter counts these presets give (``model.count_parameters``, everything in ``total``:
the Conformer backbone, its conditioning encoders and the pose predictor), for a motion latent of
1024 values (vae-small's 4 x 16 x 16) and wav2vec 2.0 base features (768), beside the paper's:

=========  ====  ==  =====  =======  =======  =====  =====
size        d    L   heads  blocks   total    paper  ratio
=========  ====  ==  =====  =======  =======  =====  =====
s2m-small   512   6    8     45.8M    55.6M   180M   0.31
s2m-base   1280  12   16    571.0M   608.1M   600M   1.01
s2m-large  2048  12   16   1460.9M  1544.3M   1.2B   1.29
=========  ====  ==  =====  =======  =======  =====  =====

("blocks" is the Conformer blocks alone.) A Conformer block (Gulati et al. 2020) with a
feed-forward width of ``4 d`` holds about ``27 d^2`` parameters (two feed-forward modules
``16 d^2``, self-attention ``4 d^2``, cross-attention to the reference ``4 d^2``, convolution
module ``3 d^2``), plus ``2 d^2`` for the per-block projections of the timestep embedding and
of the speech condition: ``29 d^2 L`` in all. The rest is the light speech encoder
(``F d + 14 d^2``: 4.1M, 23.9M, 60.3M), the reference encoder, the timestep MLP, the input and
output projections, and the pose predictor (2.0M at every size).

Base lands on the paper's count with its ``d`` and ``L``, and large within a factor 1.3.
Small does not: ``d = 512, L = 6`` gives 56M, and the paper's 180M would need ``d`` near 1024
at ``L = 6``. We keep the paper's ``d`` and ``L`` (docs/models.md) and report the gap
rather than guess which of the paper's two numbers for small is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gaia.common.config_files import build_config, config_dict, load_config, preset_names

if TYPE_CHECKING:  # vp_sde imports torch; configs are read where torch is not needed
    from gaia.training.s2m.vp_sde import VPSchedule

DEFAULT_LATENT_DIM = 1024  # vae-small's motion latent, 4 x 16 x 16
DEFAULT_SPEECH_DIM = 768  # wav2vec 2.0 base
# The ablation switches that take a name (paper, table 9); the first is the paper's model.
CHOICES = {"backbone": ("conformer", "transformer"),
           "speech_condition": ("add", "attention"),
           "reference_condition": ("attention", "add")}


@dataclass(frozen=True)
class S2mConfig:
    """One speech-to-motion size with its diffusion and optimiser settings (defaults: the
    paper's small size).

    Architecture (paper, section 4.2; ``training.s2m.model``):
      d_model: width ``d`` of the Conformer. num_layers: Conformer blocks ``L``.
      num_heads: attention heads (``d_model / num_heads`` must be even, for rotary embedding).
      ff_mult: feed-forward width as a multiple of ``d``. conv_kernel: the convolution
        module's depthwise kernel (odd, so frames stay centred).
      dropout: in feed-forward, attention and convolution modules.
      reference_tokens: the reference frame's motion latent becomes this many tokens that each
        block cross-attends to.
      speech_encoder_layers: residual conv layers of the light speech encoder, after the
        stride-2 conv that brings 50 Hz speech features to the 25 fps frame rate.
      pose_predictor_channels, pose_predictor_layers: width and residual conv layers of the
        separate pose predictor (speech and reference -> head pose per frame).
      gradient_checkpointing: recompute each block's activations in the backward pass.
    Ablations (paper, tables 6 and 9; the defaults are the paper's full model, and leave its
    parameters and outputs as they are):
      use_pose: False is table 6's "w/o pose": no pose condition at all (no ``pose_embed``;
        the pose argument is ignored). The pose predictor is still built and trained.
      diffusion: False is table 6's "w/o diffusion": the network regresses the clean motion
        from speech, reference and pose alone (``SpeechToMotion.regress``; no noisy input, no
        timestep, so no ``input_proj`` or ``time_embed``), trained with the same masked MSE.
      backbone: "conformer" (the paper's) or "transformer", table 9's backbone row: plain
        pre-norm Transformer blocks (self-attention, cross-attention, one feed-forward; no
        convolution module, no macaron half-step feed-forwards).
      speech_condition: "add" (the paper's: speech and pose added to each block's hidden state
        through a per-block linear) or "attention", table 9's speech-condition row: each block
        cross-attends from its frames to the speech-and-pose sequence.
      reference_condition: "attention" (the paper's: each block cross-attends to the reference
        tokens) or "add", table 9's reference-condition row: a per-block linear of the mean of
        the reference tokens added to every frame.
    Data: window_min, window_max: training windows of this many frames (125-250 at 25 fps,
      i.e. 5-10 s).
    Diffusion (``training.s2m.vp_sde``): beta_min, beta_max of the VP-SDE's linear beta schedule.
    Optimiser (Adam): lr, linear warm-up over warmup_steps, then inverse square root decay;
      betas; ema_decay of the weights' exponential moving average; pose_loss_weight on the pose
      predictor's MSE; grad_clip: gradient-norm clipping (0 = off).
    """

    name: str = "s2m"
    d_model: int = 512
    num_layers: int = 6
    num_heads: int = 8
    ff_mult: int = 4
    conv_kernel: int = 15
    dropout: float = 0.1
    reference_tokens: int = 4
    speech_encoder_layers: int = 2
    pose_predictor_channels: int = 256
    pose_predictor_layers: int = 4
    window_min: int = 125
    window_max: int = 250
    beta_min: float = 0.1
    beta_max: float = 20.0
    lr: float = 1e-4
    warmup_steps: int = 1000
    betas: tuple[float, float] = (0.9, 0.999)
    ema_decay: float = 0.9999
    pose_loss_weight: float = 1.0
    grad_clip: float = 1.0
    gradient_checkpointing: bool = False
    use_pose: bool = True
    diffusion: bool = True
    backbone: str = "conformer"
    speech_condition: str = "add"
    reference_condition: str = "attention"

    def __post_init__(self) -> None:
        positive = ("d_model", "num_layers", "num_heads", "ff_mult", "conv_kernel",
                    "reference_tokens", "pose_predictor_channels")
        for key in positive:
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be at least 1, not {getattr(self, key)}")
        for key in ("speech_encoder_layers", "pose_predictor_layers", "warmup_steps"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key} must not be negative, not {getattr(self, key)}")
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model {self.d_model} must divide by num_heads "
                             f"{self.num_heads}: change one of them")
        if (self.d_model // self.num_heads) % 2:
            raise ValueError(f"d_model / num_heads = {self.d_model // self.num_heads} must be "
                             "even (rotary position embedding rotates pairs of channels)")
        if self.conv_kernel % 2 == 0:
            raise ValueError(f"conv_kernel must be odd so frames stay centred, not "
                             f"{self.conv_kernel}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), not {self.dropout}")
        if not 1 <= self.window_min <= self.window_max:
            raise ValueError(f"need 1 <= window_min <= window_max, got window_min "
                             f"{self.window_min} and window_max {self.window_max}")
        if not 0.0 < self.beta_min < self.beta_max:
            raise ValueError(f"need 0 < beta_min < beta_max, got {self.beta_min} and "
                             f"{self.beta_max}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, not {self.lr}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), not {list(self.betas)}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), not {self.ema_decay}")
        if self.pose_loss_weight < 0:
            raise ValueError(f"pose_loss_weight must not be negative, not "
                             f"{self.pose_loss_weight}")
        if self.grad_clip < 0:
            raise ValueError(f"grad_clip must not be negative (0 = off), not {self.grad_clip}")
        for key, allowed in CHOICES.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"{key} must be one of {', '.join(map(repr, allowed))}, not "
                                 f"{getattr(self, key)!r}")
        for key in ("use_pose", "diffusion"):
            if not isinstance(getattr(self, key), bool):
                raise ValueError(f"{key} must be true or false, not {getattr(self, key)!r}")

    @property
    def schedule(self) -> VPSchedule:
        """The VP-SDE noise schedule these settings name."""
        from gaia.training.s2m.vp_sde import VPSchedule

        return VPSchedule(self.beta_min, self.beta_max)

    def to_dict(self) -> dict[str, Any]:
        """Plain values (tuples as lists), ready for YAML or JSON."""
        return config_dict(self)


def available_s2m_configs() -> list[str]:
    return preset_names("training", "s2m-")


def load_s2m_config(name_or_path: str | Path, **overrides: Any) -> S2mConfig:
    """The defaults, then a preset (a name in gaia/configs/training or a YAML path), then
    ``overrides``. Unknown keys and values of the wrong type raise ``ValueError`` naming the
    key."""
    return load_config(S2mConfig, "training", name_or_path, "s2m-", "s2m", overrides)


def build_s2m_config(values: dict[str, Any]) -> S2mConfig:
    """An ``S2mConfig`` from plain values, each checked against the field's default type."""
    return build_config(S2mConfig, values, "s2m")
