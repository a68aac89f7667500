"""Evaluating a trained two-encoder VAE on shards (paper, appendix B.2).

Two settings, both decoding posterior means (deterministic):

- Self-reconstruction: appearance from frame ``i`` of a clip, motion from frame ``j``'s
  landmarks, compared with frame ``j`` itself (the pair loader's pairs). PSNR on [0, 1] images,
  L1, LPIPS when a perceptual module is given, and AKD (average keypoint distance): the mean
  distance in pixels of the ``S`` image between frame ``j``'s stored landmarks and the
  landmarks a detector finds on the reconstruction.
- Cross-reenactment: appearance from one clip, motion from a frame of another clip (the next
  pair of the batch, or of the previous batch, from a different clip: the batch rolled by one
  where neighbours differ in clip; ``CrossPairs``). There is no ground truth frame, so only
  AKD against the driving landmarks.

The detector is passed in (``landmark_fn``: uint8 ``(S, S, 3)`` RGB -> ``(68, 2)`` or None):
this package does not import face detection. Frames where it finds no face are skipped and
counted. ``akd_real_frames`` is the same distance on the real target frames: the floor that the
detector's own error puts under AKD.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from gaia.inference.vae import LoadedVae, to_uint8
from gaia.training.data.shard_stream import ClipStreamConfig, shard_loader

LandmarkFn = Callable[[np.ndarray], np.ndarray | None]


def psnr(reconstruction: Tensor, target: Tensor) -> Tensor:
    """Per-image PSNR in dB of [-1, 1] images, measured on [0, 1] (peak 1): (B,)."""
    mse = ((reconstruction.float() - target.float()) / 2).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1 / mse.clamp_min(1e-10))


def cross_drivers(keys: list[str], previous: list[str] | tuple = ()) -> list[int | None]:
    """For each pair ``i`` of a batch (its clip ``keys``), the index of its driving pair among
    the batch's pairs then the ``previous`` batch's: the first from another clip after ``i``,
    cyclically over the batch, then over ``previous`` from its ``i``-th pair on; None when no
    pair comes from another clip."""
    count, earlier, pool = len(keys), len(previous), [*keys, *previous]
    drivers: list[int | None] = []
    for i in range(count):
        order = [(i + k) % count for k in range(1, count)]
        order += [count + (i + k) % earlier for k in range(earlier)]
        drivers.append(next((j for j in order if pool[j] != keys[i]), None))
    return drivers


class CrossPairs:
    """Source and driving frames from different clips, batch after batch (``cross_drivers``).

    A source with no driver yet (every pair so far from its clip, as in a first batch that
    holds one clip) waits for the next batch and takes its pairs in turn; ``waiting`` counts
    those still unmatched.
    """

    def __init__(self) -> None:
        self._keys: list[str] = []
        self._landmarks: Tensor | None = None
        self._waiting: list[tuple[Tensor, str]] = []

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def match(self, keys: list[str], latents: Tensor, landmarks: Tensor
              ) -> tuple[Tensor, Tensor] | None:
        """Appearance latents and driving landmarks of the pairs matched now, or None."""
        count = len(keys)
        pool = landmarks if self._landmarks is None else torch.cat([landmarks, self._landmarks])
        sources: list[Tensor] = []
        drivers: list[int] = []
        waiting = []
        for n, (latent, key) in enumerate(self._waiting):
            order = [(n + k) % count for k in range(count)]
            found = next((j for j in order if keys[j] != key), None)
            if found is None:
                waiting.append((latent, key))
            else:
                sources.append(latent)
                drivers.append(found)
        for i, found in enumerate(cross_drivers(keys, self._keys)):
            if found is None:
                waiting.append((latents[i], keys[i]))
            else:
                sources.append(latents[i])
                drivers.append(found)
        self._waiting, self._keys, self._landmarks = waiting, list(keys), landmarks
        if not sources:
            return None
        return torch.stack(sources), pool[drivers]


class _Keypoints:
    """AKD accumulated over frames: distances where the detector found a face, misses apart."""

    def __init__(self, landmark_fn: LandmarkFn | None) -> None:
        self.landmark_fn = landmark_fn
        self.distances: list[float] = []
        self.missed = 0

    def add(self, images: np.ndarray, landmarks: np.ndarray) -> None:
        if self.landmark_fn is None:
            return
        for image, expected in zip(images, landmarks, strict=True):
            found = self.landmark_fn(image)
            if found is None:
                self.missed += 1
                continue
            distance = np.linalg.norm(np.asarray(found, np.float64) - expected, axis=1).mean()
            self.distances.append(float(distance))

    def report(self, name: str) -> dict:
        if self.landmark_fn is None:
            return {}
        mean = float(np.mean(self.distances)) if self.distances else None
        return {name: mean, f"{name}_frames": len(self.distances), f"{name}_missed": self.missed}


def evaluate_vae(checkpoint: str | Path, shards: str, split: str | None = "val",
                 batches: int | None = 50, batch_size: int = 8,
                 perceptual: nn.Module | None = None, landmark_fn: LandmarkFn | None = None,
                 pairs_per_clip: int = 4, max_frames: int = 16, seed: int = 0,
                 device: str | None = None) -> dict:
    """Self-reconstruction and cross-reenactment metrics of the VAE at ``checkpoint`` (a file
    or a run folder) on pairs from ``shards`` (module docstring).

    split: ``train``, ``val`` or None (every clip). batches: at most this many batches of
    ``batch_size`` pairs, None for one whole pass. perceptual: an LPIPS module (``perceptual.
    load_perceptual``) or None. landmark_fn: the detector for AKD, or None. pairs_per_clip,
    max_frames, seed: as the training loader's; the same values give the same pairs.
    """
    vae = LoadedVae.load(checkpoint, device)
    size = vae.config.image_size
    stream = ClipStreamConfig(shards=str(shards), image_size=size, seed=seed, split=split,
                              pairs_per_clip=pairs_per_clip, max_frames=max_frames)
    loader = shard_loader(stream, batch_size, num_workers=0, batches_per_epoch=None)
    sums = {"psnr": 0.0, "l1": 0.0, "lpips": 0.0}
    pairs = cross_pairs = 0
    cross_pairing = CrossPairs()
    clips: set[str] = set()
    self_akd, real_akd, cross_akd = (_Keypoints(landmark_fn) for _ in range(3))
    if perceptual is not None:
        perceptual = perceptual.to(vae.device).eval()
    for batch in itertools.islice(loader, batches):
        target = batch["target"].to(vae.device)
        landmarks = batch["target_landmarks"]
        latent = vae.appearance_latent(batch["appearance"])
        recon = vae.decode(latent, landmarks)
        sums["psnr"] += float(psnr(recon, target).sum())
        sums["l1"] += float((recon - target).abs().flatten(1).mean(1).sum())
        if perceptual is not None:
            with torch.no_grad():
                sums["lpips"] += float(perceptual(recon, target).sum())
        pairs += len(batch["key"])
        clips.update(batch["key"])
        self_akd.add(to_uint8(recon), landmarks.numpy())
        real_akd.add(to_uint8(batch["target"]), landmarks.numpy())

        matched = cross_pairing.match(list(batch["key"]), latent, landmarks)
        if matched is not None:
            cross = vae.decode(*matched)
            cross_akd.add(to_uint8(cross), matched[1].numpy())
            cross_pairs += len(cross)
    if not pairs:
        raise ValueError(f"no pairs of split {split!r} in {shards}: check --shards and --split "
                         "(a corpus extracted with val_fraction 0 has no 'val' clips)")
    notes = []
    self_metrics = {"pairs": pairs, "psnr": sums["psnr"] / pairs, "l1": sums["l1"] / pairs}
    if perceptual is not None:
        self_metrics["lpips"] = sums["lpips"] / pairs
    else:
        notes.append("no LPIPS: no perceptual module given (LPIPS needs VGG16 weights)")
    if landmark_fn is None:
        notes.append("no AKD: no landmark detector given")
    self_metrics.update(self_akd.report("akd"))
    self_metrics.update(real_akd.report("akd_real_frames"))
    cross_metrics = {"pairs": cross_pairs, **cross_akd.report("akd")}
    if cross_pairing.waiting:
        notes.append(f"{cross_pairing.waiting} pairs had no driving frame of another clip "
                     "(cross-reenactment needs pairs of two clips or more)")
    return {
        "checkpoint": str(vae.checkpoint), "step": vae.step, "config": vae.config.name,
        "image_size": size, "split": split, "clips": len(clips),
        "self_reconstruction": self_metrics, "cross_reenactment": cross_metrics,
        "notes": notes,
    }


def format_metrics(metrics: dict) -> str:
    """The metrics as aligned text lines for a terminal."""
    lines = [f"{'checkpoint':<20}{metrics['checkpoint']} (step {metrics['step']}, "
             f"{metrics['config']}, {metrics['image_size']} px)",
             f"{'data':<20}split {metrics['split'] or 'all'}, {metrics['clips']} clips"]
    for section in ("self_reconstruction", "cross_reenactment"):
        values = metrics[section]
        shown = ", ".join(f"{name} {_number(value)}" for name, value in values.items())
        lines.append(f"{section.replace('_', '-'):<20}{shown}")
    lines += [f"{'note':<20}{note}" for note in metrics["notes"]]
    return "\n".join(lines)


def _number(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}" if math.isfinite(value) else str(value)
    return str(value)
