"""The Inception-v3 network FID is defined on (Heusel et al., 2017; the TensorFlow graph of
2015-12-05), in the layout of the PyTorch port every FID library reads: the state dict
``pt_inception-2015-12-05-6726825d.pth`` (pytorch-fid, torch-fidelity), keys as torchvision's
``Inception3`` (``Conv2d_1a_3x3.conv.weight`` ... ``Mixed_7c...``, ``fc`` of 1008 classes).

Our code, not torchvision's (which does not import beside this project's torch): the same
blocks with the FID graph's four differences from the classifier torchvision ships, i.e.
average pools that leave padding out of the mean (blocks A, C and the first E) and a max pool
in the last E block's pool branch. Features are the 2048-d pool after ``Mixed_7c``.

Weights are the user's file (docs/weights.md), read with ``torch.load(weights_only=True)``;
nothing is downloaded. ``FidInception()`` alone has random weights: the evaluators never
report a distance from it as FID.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gaia.common.weights import MissingWeightsError, file_sha256

FEATURES = 2048
INPUT_SIZE = 299
WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_HINT = (
    f"FID's Inception-v3 weights are not shipped and never downloaded: put {WEIGHTS_FILE} "
    "(the PyTorch port of the 2015-12-05 TensorFlow graph, as pytorch-fid and torch-fidelity "
    "use; sha256 starts 6726825d) on this machine and pass it with --inception-weights. "
    "Without it FID is reported as n/a."
)


class Conv(nn.Module):
    """Convolution without bias, batch norm (eps 1e-3, as the TF graph), ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel, stride=1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool(x: Tensor) -> Tensor:
    # The FID graph's pools average over the real pixels only at the border.
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class BlockA(nn.Module):
    def __init__(self, c_in: int, pool: int) -> None:
        super().__init__()
        self.branch1x1 = Conv(c_in, 64, 1)
        self.branch5x5_1, self.branch5x5_2 = Conv(c_in, 48, 1), Conv(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = Conv(c_in, 64, 1)
        self.branch3x3dbl_2 = Conv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = Conv(96, 96, 3, padding=1)
        self.branch_pool = Conv(c_in, pool, 1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([
            self.branch1x1(x), self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_avg_pool(x))], 1)


class BlockB(nn.Module):
    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3 = Conv(c_in, 384, 3, stride=2)
        self.branch3x3dbl_1 = Conv(c_in, 64, 1)
        self.branch3x3dbl_2 = Conv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = Conv(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, 3, stride=2)], 1)


class BlockC(nn.Module):
    def __init__(self, c_in: int, c7: int) -> None:
        super().__init__()
        wide, tall = ((1, 7), (0, 3)), ((7, 1), (3, 0))
        self.branch1x1 = Conv(c_in, 192, 1)
        self.branch7x7_1 = Conv(c_in, c7, 1)
        self.branch7x7_2 = Conv(c7, c7, wide[0], padding=wide[1])
        self.branch7x7_3 = Conv(c7, 192, tall[0], padding=tall[1])
        self.branch7x7dbl_1 = Conv(c_in, c7, 1)
        self.branch7x7dbl_2 = Conv(c7, c7, tall[0], padding=tall[1])
        self.branch7x7dbl_3 = Conv(c7, c7, wide[0], padding=wide[1])
        self.branch7x7dbl_4 = Conv(c7, c7, tall[0], padding=tall[1])
        self.branch7x7dbl_5 = Conv(c7, 192, wide[0], padding=wide[1])
        self.branch_pool = Conv(c_in, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        double = x
        for n in range(1, 6):
            double = getattr(self, f"branch7x7dbl_{n}")(double)
        return torch.cat([
            self.branch1x1(x), self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))),
            double, self.branch_pool(_avg_pool(x))], 1)


class BlockD(nn.Module):
    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3_1, self.branch3x3_2 = Conv(c_in, 192, 1), Conv(192, 320, 3, stride=2)
        self.branch7x7x3_1 = Conv(c_in, 192, 1)
        self.branch7x7x3_2 = Conv(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = Conv(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = Conv(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        seven = x
        for n in range(1, 5):
            seven = getattr(self, f"branch7x7x3_{n}")(seven)
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), seven,
                          F.max_pool2d(x, 3, stride=2)], 1)


class BlockE(nn.Module):
    def __init__(self, c_in: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = Conv(c_in, 320, 1)
        self.branch3x3_1 = Conv(c_in, 384, 1)
        self.branch3x3_2a = Conv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = Conv(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = Conv(c_in, 448, 1)
        self.branch3x3dbl_2 = Conv(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = Conv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = Conv(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = Conv(c_in, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        single = self.branch3x3_1(x)
        double = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg_pool(x)
        return torch.cat([
            self.branch1x1(x), self.branch3x3_2a(single), self.branch3x3_2b(single),
            self.branch3x3dbl_3a(double), self.branch3x3dbl_3b(double),
            self.branch_pool(pooled)], 1)


class FidInception(nn.Module):
    """uint8 ``(B, 3, H, W)`` RGB -> ``(B, 2048)`` pool features (the FID space).

    Input is resized to 299 x 299 (bilinear) and scaled to [-1, 1], as the FID graph expects.
    ``num_features`` tells torchmetrics the width without a trial forward pass.
    """

    num_features = FEATURES

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = Conv(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = Conv(32, 32, 3)
        self.Conv2d_2b_3x3 = Conv(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = Conv(64, 80, 1)
        self.Conv2d_4a_3x3 = Conv(80, 192, 3)
        self.Mixed_5b, self.Mixed_5c, self.Mixed_5d = BlockA(192, 32), BlockA(256, 64), \
            BlockA(288, 64)
        self.Mixed_6a = BlockB(288)
        self.Mixed_6b, self.Mixed_6c = BlockC(768, 128), BlockC(768, 160)
        self.Mixed_6d, self.Mixed_6e = BlockC(768, 160), BlockC(768, 192)
        self.Mixed_7a = BlockD(768)
        self.Mixed_7b, self.Mixed_7c = BlockE(1280, max_pool=False), BlockE(2048, max_pool=True)
        self.fc = nn.Linear(FEATURES, 1008)  # in the weights file; unused for FID

    def forward(self, images: Tensor) -> Tensor:
        x = images.float() / 255.0
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        x = 2.0 * x - 1.0
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(F.max_pool2d(x, 3, stride=2)))
        x = F.max_pool2d(x, 3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return x.mean(dim=(2, 3))


def load_inception(path: str | Path) -> FidInception:
    """The FID network with the state dict at ``path`` (safe loading; a pickled object is
    refused). Raises ``MissingWeightsError`` naming the file when it is absent, ``ValueError``
    when it does not fit. ``provenance`` records the file and its hash."""
    import pickle

    path = Path(path)
    if not path.is_file():
        raise MissingWeightsError(f"Inception weights file {path} not found. {WEIGHTS_HINT}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
        raise ValueError(f"{path} is not an Inception state dict: torch's safe loader refuses "
                         f"it ({type(err).__name__}). {WEIGHTS_HINT}") from None
    model = FidInception()
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"{path} does not fit FID's Inception-v3: {err}") from None
    model.provenance = {"name": "inception-v3-fid", "weights": str(path),
                        "sha256": file_sha256(path)}
    return model.eval()
