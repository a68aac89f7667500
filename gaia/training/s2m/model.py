"""GAIA's speech-to-motion network: a Conformer that predicts the clean motion-latent sequence
x0 (paper, section 4.2 and appendix B.1; docs/models.md).

Inputs, all already normalised by the caller (the model normalises no data):

- ``x_t`` (B, T, D): the noisy motion-latent sequence at diffusion time ``t`` (B,), in
  [1e-3, 1] (``training.s2m.vp_sde``; the network is kept apart from the schedule);
- ``speech`` (B, 2T, F): speech features at 50 Hz, two rows per 25 fps video frame;
- ``reference`` (B, D): the motion latent of the reference frame;
- ``pose`` (B, T, 3): head pose per frame;
- ``mask`` (B, T), True where a frame is part of the window (windows of 125-250 frames are
  padded at the end to one length in a batch); None = every frame valid.

How each condition enters (the paper's description, our reading of the details):

- the timestep embedding is added to each block's input (``TimestepEmbedding``, then a
  per-block linear);
- the speech features go through a light speech encoder (``FrameRateEncoder``: a stride-2 conv
  down to the frame rate, then residual convs); head pose goes through a linear layer added to
  the speech encoder's output; this condition sequence is added to each block's hidden state
  through a per-block linear;
- the reference motion latent becomes ``reference_tokens`` tokens (``ReferenceEncoder``) that
  each block cross-attends to;
- a small convolutional pose predictor (``PosePredictor``, no parameters shared with the
  backbone) maps speech and the reference to head pose, for inference when no pose is given;
  the caller trains it jointly with an MSE loss.

Ablation switches (``S2mConfig``; paper, tables 6 and 9). The defaults are the model above,
with the same parameters, built in the same order, so a seed gives the same weights:

- ``use_pose=False`` (table 6, "w/o pose"): no ``pose_embed``; the speech condition is the
  speech encoder's output alone and the pose argument is ignored;
- ``diffusion=False`` (table 6, "w/o diffusion"): ``regress(speech, reference, pose)``
  predicts the clean motion with no noisy input and no timestep (no ``input_proj``,
  ``time_embed`` or per-block ``time_proj``). The first block's input is zeros: every
  condition is added to it or attended from it, so a learned start token, the same at every
  frame, would only add a bias the first block's projections already have;
- ``backbone="transformer"`` (table 9): ``TransformerBlock``, a plain pre-norm block
  (self-attention, cross-attention, one full feed-forward) in place of ``ConformerBlock``;
- ``speech_condition="attention"`` (table 9): no per-block ``cond_proj``; each block has a
  ``speech_attn`` that cross-attends from the frames to the speech-and-pose sequence, with
  padded frames masked as keys and rotary position embedding on queries and keys (both are at
  the frame rate, so a frame finds its own speech by relative position; without it a
  position-free query could not tell which speech frame is its own);
- ``reference_condition="add"`` (table 9): no per-block ``cross_attn``; a per-block
  ``reference_proj`` of the mean of the reference tokens is added to every frame.

Masking is exact for every switch: padded frames never change a valid frame's output. Padded positions are
zeroed before every temporal convolution (so a padded window looks like the zero padding the
convolution adds at a clip's end), they are masked as keys in self-attention, and rotary
position embedding counts positions from each window's first frame. Everything else works frame
by frame. Single-device code with no dtype assumptions: it runs in float32 and under
``torch.autocast`` with bfloat16.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from gaia.schemas.shards import SPEECH_ROWS_PER_FRAME  # 50 Hz speech features, 25 fps video
from gaia.training.s2m.config import DEFAULT_LATENT_DIM, DEFAULT_SPEECH_DIM, S2mConfig

TIME_SCALE = 1000.0  # t in [1e-3, 1] spread over the sinusoids' range, as for discrete steps
ENCODER_KERNEL = 5  # residual convs of the speech encoder and the pose predictor
POSE_DIM = 3  # yaw, pitch, roll


def zero_padded(x: Tensor, mask: Tensor | None) -> Tensor:
    """``x`` (B, T, C) with the rows where ``mask`` (B, T) is False set to zero."""
    return x if mask is None else x.masked_fill(~mask.unsqueeze(-1), 0.0)


def rotary_tables(length: int, head_dim: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """cos and sin (T, head_dim) of rotary position embedding (Su et al. 2021) for positions
    0 .. T-1, in float32."""
    steps = torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim
    angles = torch.arange(length, device=device, dtype=torch.float32)[:, None] / (10000.0**steps)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate channel pairs ``(i, i + head_dim / 2)`` of ``x`` (B, H, T, head_dim) by the
    position's angles."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos.to(x.dtype) + rotated * sin.to(x.dtype)


class TimestepEmbedding(nn.Module):
    """Sinusoidal features of ``1000 t`` (as in DDPM's discrete steps) through an MLP:
    (B,) -> (B, d). Paper, section 4.2: the timestep embedding is added to each block's
    input."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.d_model = d_model
        self.mlp = nn.Sequential(nn.Linear(d_model, d_model), nn.SiLU(),
                                 nn.Linear(d_model, d_model))

    def forward(self, t: Tensor) -> Tensor:
        half = self.d_model // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device,
                                                            dtype=torch.float32) / half)
        args = TIME_SCALE * t.float()[:, None] * freqs[None]
        features = torch.cat([args.cos(), args.sin()], dim=-1)
        if self.d_model % 2:
            features = F.pad(features, (0, 1))
        return self.mlp(features)


class ResidualConv(nn.Module):
    """``x + conv(GELU(LayerNorm(x)))`` over time, padded frames zeroed before the conv."""

    def __init__(self, channels: int, kernel: int = ENCODER_KERNEL) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.conv = nn.Conv1d(channels, channels, kernel, padding=kernel // 2)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        h = zero_padded(F.gelu(self.norm(x)), mask)
        return x + self.conv(h.transpose(1, 2)).transpose(1, 2)


class FrameRateEncoder(nn.Module):
    """Speech features (B, 2T, F) at 50 Hz -> (B, T, c) at the 25 fps frame rate: a linear
    layer, a stride-2 conv (kernel 4: frame i sees rows 2i-1 .. 2i+2), optionally a per-clip
    vector added, then ``layers`` residual convs (kernel 5) and a LayerNorm. The light speech
    encoder of the paper's section 4.2, and the body of the pose predictor."""

    def __init__(self, in_dim: int, channels: int, layers: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, channels)
        self.down = nn.Conv1d(channels, channels, 2 * SPEECH_ROWS_PER_FRAME,
                              stride=SPEECH_ROWS_PER_FRAME, padding=1)
        self.layers = nn.ModuleList(ResidualConv(channels) for _ in range(layers))
        self.norm_out = nn.LayerNorm(channels)

    def forward(self, speech: Tensor, mask: Tensor | None, offset: Tensor | None = None
                ) -> Tensor:
        rows_mask = None if mask is None else mask.repeat_interleave(SPEECH_ROWS_PER_FRAME, 1)
        h = zero_padded(self.proj(speech), rows_mask)
        h = self.down(h.transpose(1, 2)).transpose(1, 2)
        if offset is not None:
            h = h + offset.unsqueeze(1)
        for layer in self.layers:
            h = layer(h, mask)
        return self.norm_out(h)


class ReferenceEncoder(nn.Module):
    """The reference frame's motion latent (B, D) -> ``tokens`` cross-attention tokens
    (B, tokens, d). Paper, section 4.2: the reference motion latent enters each block through
    cross-attention."""

    def __init__(self, latent_dim: int, d_model: int, tokens: int) -> None:
        super().__init__()
        self.tokens, self.d_model = tokens, d_model
        self.proj = nn.Linear(latent_dim, tokens * d_model)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, reference: Tensor) -> Tensor:
        return self.norm(self.proj(reference).view(-1, self.tokens, self.d_model))


class FeedForward(nn.Module):
    """Conformer feed-forward module: LayerNorm, Linear to ``mult * d``, SiLU, dropout, Linear
    back, dropout (Gulati et al. 2020; the block adds it with weight 1/2)."""

    def __init__(self, d_model: int, mult: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, mult * d_model),
                                 nn.SiLU(), nn.Dropout(dropout),
                                 nn.Linear(mult * d_model, d_model), nn.Dropout(dropout))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class SelfAttention(nn.Module):
    """Pre-norm multi-head self-attention over frames with rotary position embedding (so any
    window length works) and padded frames masked as keys."""

    def __init__(self, d_model: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.norm = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, key_mask: Tensor | None) -> Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm(x)).view(b, t, 3, self.heads, d // self.heads).permute(
            2, 0, 3, 1, 4)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.drop(self.out(y.transpose(1, 2).reshape(b, t, d)))


class CrossAttention(nn.Module):
    """Pre-norm multi-head cross-attention from every frame to ``tokens``: the reference tokens
    (paper, section 4.2: the reference motion latent enters each block through
    cross-attention), or, for ``speech_condition="attention"``, the speech-and-pose sequence
    at the frame rate, with ``key_mask`` on padded frames and rotary tables for both sides."""

    def __init__(self, d_model: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.norm = nn.LayerNorm(d_model)
        self.q = nn.Linear(d_model, d_model)
        self.kv = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, tokens: Tensor, key_mask: Tensor | None = None,
                rotary: tuple[Tensor, Tensor] | None = None) -> Tensor:
        b, t, d = x.shape
        head_dim = d // self.heads
        q = self.q(self.norm(x)).view(b, t, self.heads, head_dim).transpose(1, 2)
        k, v = self.kv(tokens).view(b, tokens.shape[1], 2, self.heads, head_dim).permute(
            2, 0, 3, 1, 4)
        if rotary is not None:
            q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
        y = F.scaled_dot_product_attention(q, k.to(q.dtype), v.to(q.dtype), attn_mask=key_mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.drop(self.out(y.transpose(1, 2).reshape(b, t, d)))


class ConvModule(nn.Module):
    """Conformer convolution module: LayerNorm, pointwise to ``2 d``, GLU, depthwise conv over
    time, LayerNorm (Gulati et al. use BatchNorm; its statistics would mix padded frames in),
    SiLU, pointwise, dropout. Padded frames are zeroed before the depthwise conv."""

    def __init__(self, d_model: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.pointwise_in = nn.Linear(d_model, 2 * d_model)
        self.depthwise = nn.Conv1d(d_model, d_model, kernel, padding=kernel // 2,
                                   groups=d_model)
        self.conv_norm = nn.LayerNorm(d_model)
        self.pointwise_out = nn.Linear(d_model, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        h = zero_padded(F.glu(self.pointwise_in(self.norm(x)), dim=-1), mask)
        h = self.depthwise(h.transpose(1, 2)).transpose(1, 2)
        return self.drop(self.pointwise_out(F.silu(self.conv_norm(h))))


class Block(nn.Module):
    """What the two backbones' blocks share: the conditions added to the block's input (the
    timestep embedding, the speech-and-pose condition, the pooled reference, each through a
    linear of its own, as the config has them) and the cross-attentions to speech and to the
    reference tokens. Absent parts are None. Subclasses build the rest after
    ``super().__init__``, so the default model creates its parameters in the order it always
    did (the same seed gives the same weights)."""

    def __init__(self, config: S2mConfig) -> None:
        super().__init__()
        d = config.d_model
        self.time_proj = nn.Linear(d, d) if config.diffusion else None
        self.cond_proj = nn.Linear(d, d) if config.speech_condition == "add" else None
        self.reference_proj = (nn.Linear(d, d) if config.reference_condition == "add"
                               else None)

    def _attentions(self, config: S2mConfig) -> None:
        """Build ``speech_attn`` and ``cross_attn`` (called where the subclass wants their
        parameters created)."""
        d, heads, drop = config.d_model, config.num_heads, config.dropout
        self.speech_attn = (CrossAttention(d, heads, drop)
                            if config.speech_condition == "attention" else None)
        self.cross_attn = (CrossAttention(d, heads, drop)
                           if config.reference_condition == "attention" else None)

    def add_conditions(self, x: Tensor, time: Tensor | None, cond: Tensor, tokens: Tensor
                       ) -> Tensor:
        if self.time_proj is not None:
            x = x + self.time_proj(time).unsqueeze(1)
        if self.cond_proj is not None:
            x = x + self.cond_proj(cond)
        if self.reference_proj is not None:
            x = x + self.reference_proj(tokens.mean(dim=1)).unsqueeze(1)
        return x

    def attend_conditions(self, x: Tensor, cond: Tensor, tokens: Tensor,
                          key_mask: Tensor | None, cos: Tensor, sin: Tensor) -> Tensor:
        if self.speech_attn is not None:
            x = x + self.speech_attn(x, cond, key_mask, (cos, sin))
        if self.cross_attn is not None:
            x = x + self.cross_attn(x, tokens)
        return x


class ConformerBlock(Block):
    """One block (Gulati et al. 2020, with GAIA's conditioning; paper, section 4.2): the
    timestep embedding and the speech-and-pose condition are added to the block's input through
    their own linears, then half-step feed-forward, self-attention, cross-attention to the
    reference tokens, convolution module, half-step feed-forward (pre-norm residuals), and a
    final LayerNorm. With ``speech_condition="attention"`` the speech cross-attention comes
    between self-attention and the reference's."""

    def __init__(self, config: S2mConfig) -> None:
        super().__init__(config)
        d, drop = config.d_model, config.dropout
        self.ff1 = FeedForward(d, config.ff_mult, drop)
        self.self_attn = SelfAttention(d, config.num_heads, drop)
        self._attentions(config)
        self.conv = ConvModule(d, config.conv_kernel, drop)
        self.ff2 = FeedForward(d, config.ff_mult, drop)
        self.norm = nn.LayerNorm(d)

    def forward(self, x: Tensor, time: Tensor | None, cond: Tensor, tokens: Tensor,
                mask: Tensor | None, key_mask: Tensor | None, cos: Tensor, sin: Tensor
                ) -> Tensor:
        x = self.add_conditions(x, time, cond, tokens)
        x = x + 0.5 * self.ff1(x)
        x = x + self.self_attn(x, cos, sin, key_mask)
        x = self.attend_conditions(x, cond, tokens, key_mask, cos, sin)
        x = x + self.conv(x, mask)
        x = x + 0.5 * self.ff2(x)
        return self.norm(x)


class TransformerBlock(Block):
    """The ``backbone="transformer"`` ablation (paper, table 9): a plain pre-norm Transformer
    block with the Conformer block's conditioning: self-attention, the cross-attentions, one
    full feed-forward; no convolution module, no macaron half-steps, and no final LayerNorm
    (pre-norm residuals; the output head normalises)."""

    def __init__(self, config: S2mConfig) -> None:
        super().__init__(config)
        d, drop = config.d_model, config.dropout
        self.self_attn = SelfAttention(d, config.num_heads, drop)
        self._attentions(config)
        self.ff = FeedForward(d, config.ff_mult, drop)

    def forward(self, x: Tensor, time: Tensor | None, cond: Tensor, tokens: Tensor,
                mask: Tensor | None, key_mask: Tensor | None, cos: Tensor, sin: Tensor
                ) -> Tensor:
        x = self.add_conditions(x, time, cond, tokens)
        x = x + self.self_attn(x, cos, sin, key_mask)
        x = self.attend_conditions(x, cond, tokens, key_mask, cos, sin)
        return x + self.ff(x)


class PosePredictor(nn.Module):
    """Speech (B, 2T, F) and the reference latent (B, D) -> head pose (B, T, 3): a small conv
    network of its own (paper, section 4.2: a pose predictor trained jointly with an MSE loss,
    used at inference when no pose is given). The reference is projected and added to every
    frame after the stride-2 conv."""

    def __init__(self, latent_dim: int, speech_dim: int, channels: int, layers: int) -> None:
        super().__init__()
        self.reference_proj = nn.Linear(latent_dim, channels)
        self.encoder = FrameRateEncoder(speech_dim, channels, layers)
        self.head = nn.Linear(channels, POSE_DIM)

    def forward(self, speech: Tensor, reference: Tensor, mask: Tensor | None) -> Tensor:
        return self.head(self.encoder(speech, mask, offset=self.reference_proj(reference)))


class SpeechToMotion(nn.Module):
    """The x0-predicting Conformer with its condition encoders and the separate pose predictor.

    Parts (attribute names; ``count_parameters`` lists them): ``input_proj``, ``time_embed``,
    ``speech_encoder``, ``pose_embed``, ``reference_encoder``, ``blocks``, ``output``, and
    ``pose_predictor``, which shares nothing with the rest. ``use_pose=False`` leaves out
    ``pose_embed`` and ``diffusion=False`` leaves out ``input_proj`` and ``time_embed`` (those
    attributes are then None; module docstring).
    """

    def __init__(self, config: S2mConfig, latent_dim: int, speech_dim: int) -> None:
        super().__init__()
        if latent_dim < 1 or speech_dim < 1:
            raise ValueError(f"latent_dim and speech_dim must be positive, got {latent_dim} "
                             f"and {speech_dim}")
        self.config, self.latent_dim, self.speech_dim = config, latent_dim, speech_dim
        d = config.d_model
        # Built in this order whatever the switches, so the default model draws the weights it
        # always drew for a seed.
        self.input_proj = nn.Linear(latent_dim, d) if config.diffusion else None
        self.time_embed = TimestepEmbedding(d) if config.diffusion else None
        self.speech_encoder = FrameRateEncoder(speech_dim, d, config.speech_encoder_layers)
        self.pose_embed = nn.Linear(POSE_DIM, d) if config.use_pose else None
        self.reference_encoder = ReferenceEncoder(latent_dim, d, config.reference_tokens)
        block = ConformerBlock if config.backbone == "conformer" else TransformerBlock
        self.blocks = nn.ModuleList(block(config) for _ in range(config.num_layers))
        self.output = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, latent_dim))
        self.pose_predictor = PosePredictor(latent_dim, speech_dim,
                                            config.pose_predictor_channels,
                                            config.pose_predictor_layers)

    def forward(self, x_t: Tensor, t: Tensor, speech: Tensor, reference: Tensor,
                pose: Tensor | None, mask: Tensor | None = None) -> Tensor:
        """The predicted clean sequence x0 (B, T, D); see the module docstring for inputs.
        Outputs at padded frames are defined but meaningless. A model built with
        ``diffusion=False`` checks ``x_t``'s shape, ignores ``x_t`` and ``t`` and gives
        ``regress``'s prediction, so a caller written for the denoiser still runs."""
        b, frames = self._check_motion(x_t)
        if not self.config.diffusion:
            return self.regress(speech, reference, pose, mask)
        self._check(b, frames, speech, reference, pose, mask)
        if t.shape != (b,):
            raise ValueError(f"t must have shape ({b},), not {tuple(t.shape)}")
        return self._backbone(x_t, t, speech, reference, pose, mask)

    def regress(self, speech: Tensor, reference: Tensor, pose: Tensor | None,
                mask: Tensor | None = None) -> Tensor:
        """The clean sequence (B, T, D) predicted from speech (B, 2T, F), the reference (B, D)
        and pose (B, T, 3) alone, by a model built with ``diffusion=False`` (paper, table 6,
        "w/o diffusion"; module docstring). Outputs at padded frames are meaningless."""
        if self.config.diffusion:
            raise ValueError("regress() needs a model built with diffusion=False; this one "
                             "denoises: call it with x_t and t")
        if speech.dim() != 3 or speech.shape[1] % SPEECH_ROWS_PER_FRAME:
            raise ValueError(f"speech must be (B, 2T, F) with two rows per frame, not "
                             f"{tuple(speech.shape)}")
        b, frames = speech.shape[0], speech.shape[1] // SPEECH_ROWS_PER_FRAME
        if frames < 1:
            raise ValueError(f"speech must hold at least one frame, not {tuple(speech.shape)}")
        self._check(b, frames, speech, reference, pose, mask)
        return self._backbone(None, None, speech, reference, pose, mask)

    def _backbone(self, x_t: Tensor | None, t: Tensor | None, speech: Tensor,
                  reference: Tensor, pose: Tensor | None, mask: Tensor | None) -> Tensor:
        """The blocks and the output head on checked inputs; ``x_t`` and ``t`` are None for
        the regression ablation."""
        b, frames = speech.shape[0], speech.shape[1] // SPEECH_ROWS_PER_FRAME
        mask = None if mask is None else mask.bool()
        cond = self.speech_encoder(speech, mask)
        if self.pose_embed is not None:
            cond = cond + self.pose_embed(pose)
        time = None if self.time_embed is None else F.silu(self.time_embed(t))
        tokens = self.reference_encoder(reference)
        cos, sin = rotary_tables(frames, self.config.d_model // self.config.num_heads,
                                 speech.device)
        key_mask = None
        if mask is not None:
            # A clip with no valid frame attends to every frame instead of to none (NaN).
            key_mask = (mask | ~mask.any(dim=1, keepdim=True))[:, None, None, :]
        # Without a noisy input (regression), the conditions alone make the hidden state.
        h = (cond.new_zeros(b, frames, self.config.d_model) if x_t is None
             else self.input_proj(x_t))
        checkpointing = self.config.gradient_checkpointing and torch.is_grad_enabled()
        for block in self.blocks:
            args = (h, time, cond, tokens, mask, key_mask, cos, sin)
            h = checkpoint(block, *args, use_reentrant=False) if checkpointing else block(*args)
        return self.output(h)

    def predict_pose(self, speech: Tensor, reference: Tensor, mask: Tensor | None = None
                     ) -> Tensor:
        """Head pose (B, T, 3) for speech (B, 2T, F) and the reference latent (B, D), in the
        caller's normalisation of pose."""
        if speech.dim() != 3 or speech.shape[1] % SPEECH_ROWS_PER_FRAME:
            raise ValueError(f"speech must be (B, 2T, F) with two rows per frame, not "
                             f"{tuple(speech.shape)}")
        frames = speech.shape[1] // SPEECH_ROWS_PER_FRAME
        if mask is not None and mask.shape != (speech.shape[0], frames):
            raise ValueError(f"mask must have shape ({speech.shape[0]}, {frames}), not "
                             f"{tuple(mask.shape)}")
        self._check_reference(reference, speech.shape[0])
        return self.pose_predictor(speech, reference, None if mask is None else mask.bool())

    def _check_motion(self, x_t: Tensor) -> tuple[int, int]:
        if x_t.dim() != 3 or x_t.shape[-1] != self.latent_dim or x_t.shape[1] < 1:
            raise ValueError(f"x_t must be (B, T, {self.latent_dim}) with T >= 1, not "
                             f"{tuple(x_t.shape)}")
        return x_t.shape[0], x_t.shape[1]

    def _check(self, b: int, frames: int, speech: Tensor, reference: Tensor,
               pose: Tensor | None, mask: Tensor | None) -> None:
        want = (b, SPEECH_ROWS_PER_FRAME * frames, self.speech_dim)
        if speech.shape != want:
            raise ValueError(f"speech must have shape {want} (two 50 Hz rows per frame), not "
                             f"{tuple(speech.shape)}")
        if mask is not None and mask.shape != (b, frames):
            raise ValueError(f"mask must have shape ({b}, {frames}), not {tuple(mask.shape)}")
        self._check_reference(reference, b)
        # Without a pose condition the pose argument is ignored (it may be None).
        if self.config.use_pose and (pose is None or pose.shape != (b, frames, POSE_DIM)):
            raise ValueError(f"pose must have shape ({b}, {frames}, {POSE_DIM}), not "
                             f"{None if pose is None else tuple(pose.shape)}")

    def _check_reference(self, reference: Tensor, batch: int) -> None:
        if reference.shape != (batch, self.latent_dim):
            raise ValueError(f"reference must have shape ({batch}, {self.latent_dim}), not "
                             f"{tuple(reference.shape)}")


def count_parameters(config: S2mConfig, latent_dim: int = DEFAULT_LATENT_DIM,
                     speech_dim: int = DEFAULT_SPEECH_DIM) -> dict[str, int]:
    """Parameters per part (``SpeechToMotion``'s children, ``pose_predictor`` among them) and
    ``total`` (all of them), by default for vae-small's motion latent and wav2vec 2.0 base
    features. Built on the meta device: nothing is allocated, so s2m-large is cheap. (It lives
    here, not in ``config``: the config module never imports the model.)"""
    with torch.device("meta"):
        model = SpeechToMotion(config, latent_dim, speech_dim)
    counts = {name: sum(p.numel() for p in part.parameters())
              for name, part in model.named_children()}
    counts["total"] = sum(counts.values())
    return counts
