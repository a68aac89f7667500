"""LPIPS perceptual distance for the VAE's loss (paper, section 4.1; docs/weights.md).

LPIPS (Zhang et al. 2018, version 0.1, VGG variant): both images are shifted and scaled to
ImageNet statistics, run through VGG16's convolutional stack, and at its five ``relu*_*``
outputs before each pooling (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3) each feature vector
is scaled to unit length; the squared differences are weighted per channel by LPIPS's learned
linear layers, averaged over space, and summed over the five layers. Zero for identical images.

Nothing downloads (docs/weights.md). torchvision does not import beside our torch, and
``import lpips`` imports torchvision, so:

- VGG16 is defined here and reads a local torchvision-format state dict (``features.N.weight``
  and ``features.N.bias`` keys, as in ``vgg16-397923af.pth``); the path is given, or taken from
  ``$GAIA_VGG16_WEIGHTS``, or found in torch's hub cache where torchvision would have put it.
- LPIPS's linear weights are the files inside the ``lpips`` wheel (``lpips/weights/v0.1/
  vgg.pth``), found with ``importlib.util.find_spec`` without importing the package. Install it
  with ``pip install --no-deps lpips``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from gaia.common.installed import package_folders
from gaia.common.weights import MissingWeightsError, file_sha256, version_of
from gaia.training.checkpoint import safe_load

VGG16_FILE = "vgg16-397923af.pth"
VGG16_URL = f"https://download.pytorch.org/models/{VGG16_FILE}"
VGG16_ENV = "GAIA_VGG16_WEIGHTS"
# VGG16 "D": output widths of the 13 convs, "M" a 2x2 max-pool; and the index each conv has in
# torchvision's ``features`` Sequential (a conv and its ReLU per entry, a pool per "M").
VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                512, 512, 512)
LPIPS_TAPS = (1, 3, 6, 9, 12)  # conv numbers (0-based) whose ReLU output LPIPS compares
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _torchvision_indices() -> list[int]:
    """``features.N`` index of each conv in torchvision's VGG16."""
    indices, position = [], 0
    for item in VGG16_LAYOUT:
        if item == "M":
            position += 1
        else:
            indices.append(position)
            position += 2  # the conv and its ReLU
    return indices


class VGG16Features(nn.Module):
    """VGG16's 13 convs with ReLUs and max-pools, up to relu5_3; ``forward`` returns the
    outputs at ``LPIPS_TAPS``."""

    def __init__(self) -> None:
        super().__init__()
        widths = [w for w in VGG16_LAYOUT if w != "M"]
        self.convs = nn.ModuleList(
            nn.Conv2d(cin, cout, 3, padding=1) for cin, cout in zip((3, *widths[:-1]), widths, strict=True))
        self._pool_after = self._pools_after_convs()

    @staticmethod
    def _pools_after_convs() -> set[int]:
        pools, conv = set(), -1
        for item in VGG16_LAYOUT:
            if item == "M":
                pools.add(conv)
            else:
                conv += 1
        return pools

    def forward(self, x: Tensor) -> list[Tensor]:
        taps = []
        for i, conv in enumerate(self.convs):
            if i - 1 in self._pool_after:
                x = F.max_pool2d(x, 2)
            x = F.relu(conv(x))
            if i in LPIPS_TAPS:
                taps.append(x)
        return taps

    def load_torchvision_state_dict(self, state: dict[str, Tensor], source: str) -> None:
        """Copy ``features.N.weight`` / ``features.N.bias`` from a torchvision VGG16 state dict
        (``classifier.*`` is ignored); a missing key or a wrong shape names ``source``."""
        for conv, index in zip(self.convs, _torchvision_indices(), strict=True):
            for name in ("weight", "bias"):
                key = f"features.{index}.{name}"
                if key not in state:
                    raise MissingWeightsError(f"{source} is not a torchvision VGG16 state dict: "
                                              f"it has no {key}")
                param = getattr(conv, name)
                if tuple(state[key].shape) != tuple(param.shape):
                    raise MissingWeightsError(f"{source}: {key} has shape "
                                              f"{tuple(state[key].shape)}, VGG16 needs "
                                              f"{tuple(param.shape)}")
                with torch.no_grad():
                    param.copy_(state[key])

    def torchvision_state_dict(self) -> dict[str, Tensor]:
        """This stack's weights under torchvision's keys (to save a file in that format)."""
        state = {}
        for conv, index in zip(self.convs, _torchvision_indices(), strict=True):
            state[f"features.{index}.weight"] = conv.weight.detach().clone()
            state[f"features.{index}.bias"] = conv.bias.detach().clone()
        return state


def find_vgg16_weights(path: str | os.PathLike | None = None) -> Path:
    """The VGG16 file: ``path``, else ``$GAIA_VGG16_WEIGHTS``, else torch's hub cache;
    ``MissingWeightsError`` naming the file and where to put it when there is none."""
    if path is not None:
        candidates = [Path(path)]
    elif os.environ.get(VGG16_ENV):
        candidates = [Path(os.environ[VGG16_ENV])]
    else:
        candidates = [Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise MissingWeightsError(
        f"LPIPS needs VGG16's weights ({VGG16_FILE}, torchvision's ImageNet VGG16) and "
        f"{candidates[0]} does not exist; nothing is ever downloaded. On a machine with "
        f"network access fetch {VGG16_URL}, copy it to this machine and pass its path "
        f"(vgg_weights=PATH), set ${VGG16_ENV}=PATH, or put it at "
        f"{Path(torch.hub.get_dir()) / 'checkpoints' / VGG16_FILE}. Or train with "
        "perceptual: none."
    )


def lpips_linear_weights_path(net: str = "vgg") -> Path:
    """``lpips/weights/v0.1/{net}.pth`` inside the installed ``lpips`` wheel, found without
    importing the package (its ``__init__`` imports torchvision)."""
    for folder in package_folders("lpips"):
        path = folder / "weights" / "v0.1" / f"{net}.pth"
        if path.is_file():
            return path
    raise MissingWeightsError(
        f"LPIPS's linear weights (lpips/weights/v0.1/{net}.pth) ship in the `lpips` wheel, "
        "which is not installed: run `pip install --no-deps lpips` (--no-deps: it declares "
        "torchvision, which would pull another torch build). Or train with perceptual: none."
    )


class LpipsDistance(nn.Module):
    """Frozen LPIPS v0.1 on a backbone whose ``forward`` returns the tapped ReLU outputs:
    ``lpips(x, y)`` for images (B, 3, H, W) in [-1, 1] returns the per-sample distance (B,)
    in float32. ``net`` names the linear weights file of the wheel (vgg, alex)."""

    def __init__(self, backbone: nn.Module, widths: list[int], net: str,
                 provenance: dict[str, Any]) -> None:
        super().__init__()
        self.backbone = backbone
        linear_path = lpips_linear_weights_path(net)
        linear = safe_load(linear_path, f"LPIPS v0.1 {net} weights",
                           "reinstall the lpips wheel (pip install --no-deps lpips)")
        for k, width in enumerate(widths):
            weight = linear.get(f"lin{k}.model.1.weight")
            if weight is None or weight.numel() != width:
                raise MissingWeightsError(f"{linear_path} is not LPIPS v0.1 {net}: lin{k} "
                                          f"should have {width} weights")
            self.register_buffer(f"lin{k}", weight.reshape(width).float())
        mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        # [-1, 1] images: (x - (2 mean - 1)) / (2 std) equals ((x + 1) / 2 - mean) / std.
        self.register_buffer("shift", (2 * mean - 1).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", (2 * std).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()
        self.provenance: dict[str, Any] = {
            **provenance,
            "lpips_linear": {"path": str(linear_path), "sha256": file_sha256(linear_path),
                             "version": version_of("lpips")},
        }

    def train(self, mode: bool = True) -> LpipsDistance:
        """Always in eval mode: the network is frozen."""
        return super().train(False)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        both = torch.cat([x, y])
        both = (both - self.shift.to(both.dtype)) / self.scale.to(both.dtype)
        distance = x.new_zeros(x.shape[0], dtype=torch.float32)
        for k, taps in enumerate(self.backbone(both)):
            fx, fy = _unit_length(taps.float()).chunk(2)
            per_channel = (fx - fy).pow(2).mean(dim=(2, 3))  # (B, C)
            # elementwise, not a matmul: autocast would run a matmul in bf16
            distance = distance + (per_channel * getattr(self, f"lin{k}")).sum(dim=1)
        return distance


class LPIPS(LpipsDistance):
    """Frozen LPIPS (VGG, v0.1), the training loss's. ``provenance`` records both files."""

    def __init__(self, vgg_weights: str | os.PathLike | None = None) -> None:
        vgg_path = find_vgg16_weights(vgg_weights)
        vgg = VGG16Features()
        vgg.load_torchvision_state_dict(safe_load(
            vgg_path, "a VGG16 state dict", "give --vgg-weights torchvision's "
            "vgg16-397923af.pth (a state dict, not a pickled model)"), str(vgg_path))
        super().__init__(vgg, [vgg.convs[i].out_channels for i in LPIPS_TAPS], "vgg",
                         {"kind": "lpips",
                          "vgg16": {"path": str(vgg_path), "sha256": file_sha256(vgg_path)}})

    @property
    def vgg(self) -> VGG16Features:
        return self.backbone


def _unit_length(features: Tensor, eps: float = 1e-10) -> Tensor:
    """Each feature vector over its channels scaled to unit length. ``eps`` sits inside the
    square root (the reference adds it outside): same values, but a location where every
    channel is zero (after a ReLU) gets a zero gradient, not NaN."""
    return features / torch.sqrt(features.pow(2).sum(dim=1, keepdim=True) + eps * eps)


def load_perceptual(kind: str = "lpips", vgg_weights: str | os.PathLike | None = None
                    ) -> LPIPS | None:
    """``"lpips"``: the frozen LPIPS module (errors name any missing file); ``"none"``: None
    (the loss then has no perceptual term)."""
    if kind == "none":
        return None
    if kind == "lpips":
        return LPIPS(vgg_weights)
    raise ValueError(f"perceptual must be 'lpips' or 'none', not {kind!r}")


def perceptual_provenance(module: LPIPS | None) -> dict[str, Any]:
    """What the perceptual term was computed with, for a run's resolved config."""
    return {"kind": "none"} if module is None else dict(module.provenance)
