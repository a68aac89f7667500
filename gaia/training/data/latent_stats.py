"""Normalisation statistics of latent shards, carried from ``gaia encode-latents`` through the
s2m checkpoint to generation (paper, section 4.2; docs/models.md).

The s2m model sees motion latents, head poses and speech features standardised per
dimension with the train split's mean and standard deviation (``stats.json`` beside the latent
shards). The same numbers must undo the standardisation at generation time, whatever data is at
hand then, so they travel in the checkpoint with the provenance of the VAE that made the latents
and of the speech-feature extractor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from gaia.common.storage import Store, is_uri, redact
from gaia.schemas.latents import STATS_FILE

_ARRAYS = ("motion_mean", "motion_std", "pose_mean", "pose_std", "speech_mean", "speech_std")


@dataclass(frozen=True)
class LatentStats:
    """Per-dimension means and standard deviations (float32 tensors) and provenance."""

    motion_mean: Tensor
    motion_std: Tensor
    pose_mean: Tensor
    pose_std: Tensor
    speech_mean: Tensor
    speech_std: Tensor
    latent_shape: tuple[int, int, int]
    vae: dict
    speech_features: dict

    @property
    def latent_dim(self) -> int:
        return int(self.motion_mean.numel())

    @property
    def speech_dim(self) -> int:
        return int(self.speech_mean.numel())

    @classmethod
    def from_state(cls, state: dict) -> LatentStats:
        """From ``to_state``'s plain values (a checkpoint, or ``stats.json``)."""
        missing = [name for name in (*_ARRAYS, "latent_shape") if name not in state]
        if missing:
            raise ValueError(f"latent statistics lack {missing}")
        arrays = {name: torch.as_tensor(state[name], dtype=torch.float32).flatten()
                  for name in _ARRAYS}
        for name in ("motion_std", "pose_std", "speech_std"):
            if not bool((arrays[name] > 0).all()):
                raise ValueError(f"latent statistics: {name} has values <= 0")
        shape = tuple(int(v) for v in state["latent_shape"])
        if len(shape) != 3 or arrays["motion_mean"].numel() != shape[0] * shape[1] * shape[2]:
            raise ValueError(f"latent statistics: latent_shape {shape} does not match "
                             f"{arrays['motion_mean'].numel()} motion dimensions")
        return cls(**arrays, latent_shape=shape, vae=dict(state.get("vae", {})),
                   speech_features=dict(state.get("speech_features", {})))

    @classmethod
    def load(cls, path: str | Path) -> LatentStats:
        """From ``stats.json`` (or a latent-shard folder holding it), a path or a store URI."""
        if is_uri(str(path)):
            uri = str(path).rstrip("/")
            uri = uri if uri.endswith(".json") else f"{uri}/{STATS_FILE}"
            folder, _, name = uri.rpartition("/")
            try:
                return cls.from_state(json.loads(Store(folder).read_bytes(name)))
            except FileNotFoundError:
                raise FileNotFoundError(f"no latent statistics at {redact(uri)}: run `gaia "
                                        "encode-latents` first, or pass --stats") from None
        path = Path(path)
        path = path / STATS_FILE if path.is_dir() else path
        if not path.is_file():
            raise FileNotFoundError(f"no latent statistics at {path}: run `gaia encode-latents` "
                                    "first, or pass --stats with its stats.json")
        return cls.from_state(json.loads(path.read_text(encoding="utf-8")))

    def to_state(self) -> dict:
        """Plain values (lists, numbers, strings) for a checkpoint or JSON."""
        return {**{name: getattr(self, name).tolist() for name in _ARRAYS},
                "latent_shape": list(self.latent_shape), "vae": self.vae,
                "speech_features": self.speech_features}

    def _pair(self, name: str, like: Tensor) -> tuple[Tensor, Tensor]:
        mean = getattr(self, f"{name}_mean").to(like.device)
        std = getattr(self, f"{name}_std").to(like.device)
        return mean, std

    def normalize(self, name: str, values: Tensor) -> Tensor:
        """``(values - mean) / std`` along the last axis, for ``motion``, ``pose`` or
        ``speech``; float32."""
        mean, std = self._pair(name, values)
        return (values.float() - mean) / std

    def denormalize(self, name: str, values: Tensor) -> Tensor:
        mean, std = self._pair(name, values)
        return values.float() * std + mean
