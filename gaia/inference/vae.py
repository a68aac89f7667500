"""A trained two-encoder VAE loaded for inference (paper, section 4.1): the handle that
``encode-latents``, ``generate``, ``reenact`` and evaluation share.

Posterior means throughout (deterministic): appearance latents of frames, motion latents of
landmarks (rendered as the motion encoder's input), frames decoded from both.

A VAE trained with ``disentangle: false`` (table 6, ``training.vae.frame_vae``) has one
latent per frame and nothing else: ``s2m_latents`` encodes frames (``frame_latents``) where the
paper's VAE encodes landmarks, ``appearance_of`` gives None (there is no appearance to hold)
and ``decode_motion`` decodes each latent alone. What needs the split (``motion_latents``,
``reconstruct``: reenactment, the landmark model) is refused by name.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gaia.training.checkpoint import load_checkpoint, resolve_checkpoint
from gaia.training.meta_build import build_matching
from gaia.training.vae.build import build_vae
from gaia.training.vae.config import VaeConfig, build_vae_config
from gaia.training.vae.frame_vae import FrameVAE
from gaia.training.vae.landmark_render import render_landmarks
from gaia.training.vae.model import TwoEncoderVAE


@dataclass(frozen=True)
class LoadedVae:
    """A VAE read from a checkpoint, in eval mode, for inference with posterior means."""

    model: TwoEncoderVAE | FrameVAE
    config: VaeConfig
    checkpoint: Path
    step: int
    device: torch.device

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device | None = None) -> LoadedVae:
        """From a checkpoint file or a run folder (its latest checkpoint)."""
        checkpoint = resolve_checkpoint(path)
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        state = load_checkpoint(checkpoint)
        task = state.get("task") if isinstance(state, dict) else None
        if not isinstance(task, dict) or "model" not in task or "config" not in task:
            raise ValueError(f"{checkpoint} is not a VAE checkpoint of `gaia train vae` "
                             "(it has no task.model and task.config)")
        config = build_vae_config(task["config"])  # no `disentangle` key: the paper's VAE
        model = build_matching(lambda: build_vae(config), task["model"], str(checkpoint))
        model.load_state_dict(task["model"])
        model.to(device).eval()
        return cls(model, config, checkpoint, int(state.get("step", 0)), device)

    @property
    def disentangled(self) -> bool:
        return self.config.disentangle

    def _needs_split(self, what: str) -> None:
        if not self.disentangled:
            raise ValueError(f"{self.checkpoint} is a VAE without disentanglement "
                             f"(disentangle: false, table 6): it has no appearance and motion "
                             f"encoders, so it cannot {what}")

    def landmark_image(self, landmarks: Tensor) -> Tensor:
        """Landmarks (B, 68, 2) in pixels of the ``S`` image -> the motion encoder's input."""
        size = self.config.image_size
        return render_landmarks(landmarks.to(self.device, torch.float32), size,
                                source_size=size, line_width=self.config.landmark_line_width,
                                channels=self.config.landmark_channels)

    @torch.no_grad()
    def appearance_latent(self, appearance: Tensor) -> Tensor:
        """Posterior mean of the appearance latent of frames (B, 3, S, S) in [-1, 1]."""
        self._needs_split("encode an appearance apart from motion")
        return self.model.encode_appearance(appearance.to(self.device)).mode()

    def appearance_of(self, image: np.ndarray) -> Tensor | None:
        """Appearance latent (1, C_a, h, w) of one uint8 ``(S, S, 3)`` RGB frame; None for a
        VAE without disentanglement (its frame latents carry the appearance)."""
        if not self.disentangled:
            return None
        return self.appearance_latent(pixels_of(image[None]))

    @torch.no_grad()
    def motion_latents(self, landmarks: Tensor) -> Tensor:
        """Posterior means of the motion latents (B, C_m, h, w) of landmarks (B, 68, 2)."""
        self._needs_split("encode motion from landmarks")
        return self.model.encode_motion(self.landmark_image(landmarks)).mode()

    @torch.no_grad()
    def frame_latents(self, frames: Tensor) -> Tensor:
        """Posterior means of the whole-frame latents (B, C_a, h, w) of frames (B, 3, S, S) in
        [-1, 1], for a VAE without disentanglement."""
        if self.disentangled:
            raise ValueError(f"{self.checkpoint} disentangles appearance and motion: its "
                             "s2m latents are motion latents of landmarks (motion_latents)")
        return self.model.encode_frame(frames.to(self.device)).mode()

    def s2m_latents(self, images: np.ndarray, landmarks: np.ndarray) -> Tensor:
        """The latents the s2m model learns, flattened (B, D), of uint8 ``(B, S, S, 3)`` frames
        and their landmarks (B, 68, 2) in pixels of the ``S`` image: motion latents of the
        landmarks, or without disentanglement the frames' own latents."""
        if self.disentangled:
            latents = self.motion_latents(torch.from_numpy(np.asarray(landmarks, np.float32)))
        else:
            latents = self.frame_latents(pixels_of(images))
        return latents.flatten(1).float()

    @torch.no_grad()
    def decode_motion(self, appearance_latent: Tensor | None, motion: Tensor) -> Tensor:
        """Frames (B, 3, S, S) in [-1, 1] from one appearance latent (1, ...) or B of them and
        motion latents (B, C_m, h, w); without disentanglement from the frame latents alone
        (``appearance_latent`` None)."""
        if not self.disentangled:
            return self.model.decode(motion.to(self.device)).float().clamp(-1, 1)
        appearance = appearance_latent.expand(len(motion), -1, -1, -1)
        motion = motion.to(self.device, appearance.dtype)
        return self.model.decode(appearance, motion).float().clamp(-1, 1)

    def frame_batches(self, appearance_latent: Tensor | None, motion: Tensor, batch_size: int
                      ) -> Iterator[np.ndarray]:
        """uint8 ``(b, S, S, 3)`` RGB frames decoded from motion latents (T, C_m, h, w) (or
        the frame latents of a VAE without disentanglement), at most ``batch_size`` at a time
        (bounded memory for long videos)."""
        for start in range(0, len(motion), batch_size):
            yield to_uint8(self.decode_motion(appearance_latent,
                                              motion[start:start + batch_size]))

    def decode(self, appearance_latent: Tensor, landmarks: Tensor) -> Tensor:
        """Frames (B, 3, S, S) in [-1, 1] from appearance latents and landmarks (B, 68, 2)."""
        return self.decode_motion(appearance_latent, self.motion_latents(landmarks))

    def reconstruct(self, appearance: Tensor, landmarks: Tensor) -> Tensor:
        """Frame ``appearance``'s look with ``landmarks``' motion (posterior means)."""
        return self.decode(self.appearance_latent(appearance), landmarks)


def pixels_of(images: np.ndarray) -> Tensor:
    """uint8 (B, H, W, 3) RGB -> (B, 3, H, W) float in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(
        127.5).sub(1)


def to_uint8(images: Tensor) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] -> uint8 (B, H, W, 3) RGB."""
    pixels = ((images.detach().float().cpu() + 1) * 127.5).round().clamp(0, 255)
    return pixels.to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
