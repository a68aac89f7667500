"""Fréchet Inception Distance (Heusel et al., 2017; GAIA tables 2, 3 and 7): the Fréchet
distance between Gaussians fitted to Inception pool features of real and generated frames.

The statistic is torchmetrics' ``FrechetInceptionDistance`` (float64 running sums, the matrix
square root by eigenvalues), fed by our ``FidInception`` network with the user's weights. Why
torchmetrics: it takes any feature network as an ``nn.Module``; torch-fidelity imports
torchvision when the package loads (its CLIP and DINOv2 extractors) and unpickles its weights
(``weights_only=False``), and clean-fid imports torchvision too, which does not import beside
this project's torch build.

FID needs many frames to mean anything (the literature uses thousands; below 2048 the
covariance is rank-deficient and the value is biased upward): ``frames`` is reported with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gaia.common.weights import optional_model


class FrechetScore:
    """Real and generated frames fed in batches, FID at the end (None below 2 frames a side)."""

    def __init__(self, network: nn.Module, device: str | torch.device = "cpu") -> None:
        from torchmetrics.image.fid import FrechetInceptionDistance

        self.metric = FrechetInceptionDistance(feature=network, normalize=False,
                                               reset_real_features=True).to(device)
        self.device = device
        self.counts = {True: 0, False: 0}

    @torch.no_grad()
    def add(self, frames: np.ndarray, real: bool) -> None:
        """uint8 ``(N, H, W, 3)`` RGB frames of one side."""
        if not len(frames):
            return
        images = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
        self.metric.update(images.to(self.device), real=real)
        self.counts[real] += len(frames)

    def compute(self) -> float | None:
        if min(self.counts.values()) < 2:
            return None
        return float(self.metric.compute())

    def report(self) -> dict:
        return {"fid": self.compute(), "fid_frames_real": self.counts[True],
                "fid_frames_generated": self.counts[False]}


def frechet_distance(real: Iterable[np.ndarray], generated: Iterable[np.ndarray],
                     network: nn.Module) -> float | None:
    """FID of two streams of uint8 frame batches under ``network``'s features."""
    score = FrechetScore(network)
    for batch in real:
        score.add(batch, real=True)
    for batch in generated:
        score.add(batch, real=False)
    return score.compute()


def fid_network(weights: str | Path | None) -> tuple[nn.Module | None, str | None]:
    """(the FID network, None) from ``weights``, or (None, the note saying which file FID
    needs) when no path is given or the file is missing."""
    from gaia.evaluation.inception import WEIGHTS_HINT, load_inception

    return optional_model("FID", load_inception, weights, WEIGHTS_HINT)
