"""LPIPS with the AlexNet backbone (Zhang et al. 2018, v0.1 "alex"): the variant the
literature reports as a metric (GAIA table 2's LPIPS column, FOMM's and face-vid2vid's
evaluations); the VGG variant (``training.vae.perceptual.LPIPS``) is the loss's.

AlexNet is defined here in torchvision's layout (``features.0/3/6/8/10`` convolutions, as in
``alexnet-owt-7be5be79.pth``) and LPIPS compares its five ReLU outputs; the linear weights are
``lpips/weights/v0.1/alex.pth`` from the ``lpips`` wheel. Nothing downloads: the AlexNet file
is the user's (``--alex-weights``, ``$GAIA_ALEXNET_WEIGHTS`` or torch's hub cache).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from gaia.common.weights import MissingWeightsError, file_sha256
from gaia.training.checkpoint import safe_load
from gaia.training.vae.perceptual import LpipsDistance, find_vgg16_weights

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
ALEXNET_ENV = "GAIA_ALEXNET_WEIGHTS"
# (torchvision features index, in, out, kernel, stride, padding, max-pool before it)
ALEXNET_CONVS = ((0, 3, 64, 11, 4, 2, False), (3, 64, 192, 5, 1, 2, True),
                 (6, 192, 384, 3, 1, 1, True), (8, 384, 256, 3, 1, 1, False),
                 (10, 256, 256, 3, 1, 1, False))


class AlexNetFeatures(nn.Module):
    """AlexNet's five convolutions with ReLUs (and its two pools between them); ``forward``
    returns each ReLU output (LPIPS's taps)."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(c_in, c_out, k, s, p)
                                   for _, c_in, c_out, k, s, p, _ in ALEXNET_CONVS)

    def forward(self, x: Tensor) -> list[Tensor]:
        taps = []
        for conv, (*_, pool_before) in zip(self.convs, ALEXNET_CONVS, strict=True):
            if pool_before:
                x = F.max_pool2d(x, 3, stride=2)
            x = F.relu(conv(x))
            taps.append(x)
        return taps

    def load_torchvision_state_dict(self, state: dict[str, Tensor], source: str) -> None:
        for conv, (index, *_) in zip(self.convs, ALEXNET_CONVS, strict=True):
            for name in ("weight", "bias"):
                key = f"features.{index}.{name}"
                param = getattr(conv, name)
                if key not in state or tuple(state[key].shape) != tuple(param.shape):
                    raise MissingWeightsError(f"{source} is not torchvision's AlexNet: {key} "
                                              f"missing or not of shape {tuple(param.shape)}")
                with torch.no_grad():
                    param.copy_(state[key])


def find_alexnet_weights(path: str | os.PathLike | None = None) -> Path:
    """The AlexNet file: ``path``, ``$GAIA_ALEXNET_WEIGHTS`` or torch's hub cache; else
    ``MissingWeightsError`` naming the file."""
    hub = Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE
    candidate = Path(path) if path is not None else Path(os.environ.get(ALEXNET_ENV) or hub)
    if candidate.is_file():
        return candidate
    raise MissingWeightsError(
        f"LPIPS (alex) needs AlexNet's weights ({ALEXNET_FILE}, torchvision's ImageNet "
        f"AlexNet) and {candidate} does not exist; nothing is ever downloaded. Copy the file "
        f"to this machine and pass --alex-weights PATH, set ${ALEXNET_ENV}, or put it at {hub}.")


def lpips_alex(alex_weights: str | os.PathLike | None = None) -> LpipsDistance:
    """Frozen LPIPS (alex, v0.1) with its provenance."""
    path = find_alexnet_weights(alex_weights)
    net = AlexNetFeatures()
    net.load_torchvision_state_dict(safe_load(path, "an AlexNet state dict",
                                              "give torchvision's alexnet-owt-7be5be79.pth"),
                                    str(path))
    return LpipsDistance(net, [c[2] for c in ALEXNET_CONVS], "alex",
                         {"kind": "lpips-alex",
                          "alexnet": {"path": str(path), "sha256": file_sha256(path)}})


def metric_lpips(net: str, weights: str | os.PathLike | None
                 ) -> tuple[nn.Module | None, str | None]:
    """(the LPIPS metric, None), or (None, the note naming the missing file): ``net`` is
    ``alex`` (the metric's usual variant), ``vgg`` or ``none``."""
    from gaia.training.vae.perceptual import LPIPS

    if net == "none":
        return None, "LPIPS: n/a, not asked for (--lpips none)"
    try:
        if net == "alex":
            return lpips_alex(weights), None
        if net == "vgg":
            find_vgg16_weights(weights)
            return LPIPS(weights), None
    except MissingWeightsError as err:
        return None, f"LPIPS ({net}): n/a. {err}"
    raise ValueError(f"--lpips must be alex, vgg or none, not {net!r}")
