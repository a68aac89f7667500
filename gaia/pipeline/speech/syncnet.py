"""SyncNet (Chung & Zisserman, "Out of time: automated lip sync in the wild", 2016) in the
layout of ``syncnet_v2.model``, the checkpoint joonson/syncnet_python publishes and the field
scores lip sync with (Sync-C / Sync-D of GAIA tables 3, 5, 6, 8, 9; LatentSync's curation).

Two streams map 0.2 s of each modality to a 1024-d embedding; in-sync pairs are close:

- audio (``netcnnaud`` + ``netfcaud``): 13 MFCCs x 20 frames at 100 Hz as a 1-channel image
  (``gaia.pipeline.speech.mfcc``), six 2-D convolutions to 512 x 1 x 1, two linear layers;
- video (``netcnnlip`` + ``netfclip``): 5 colour face crops of 224 x 224 (0.2 s at 25 fps) in
  BGR order with values 0..255 (syncnet_python reads them with ``cv2.imread``), a 3-D first
  convolution over the 5 frames, then 2-D-like ones (kernel depth 1) to 512 x 1 x 1, two
  linear layers.

The ``nn.Sequential`` indices and shapes below are syncnet_python's ``SyncNetModel.S`` (its
pools and ReLUs keep their places, so the state-dict keys are the published file's); the code
is ours. Weights are the user's file (docs/weights.md); nothing is downloaded. The scoring
(distances over lags, Sync-C/D, per-frame offset and confidence) is ``syncnet_scores``, the
input framing ``syncnet_crops``; both are re-exported here.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn

from gaia.common.weights import MissingWeightsError, file_sha256
from gaia.pipeline.speech.syncnet_crops import CROP, face_crops, landmark_boxes
from gaia.pipeline.speech.syncnet_scores import (
    clip_sync,
    embedding_distances,
    frame_sync,
    syncnet_distances,
)

__all__ = ["CROP", "EMBEDDING", "WEIGHTS_HINT", "SyncNet", "clip_sync", "embedding_distances",
           "face_crops", "frame_sync", "landmark_boxes", "load_syncnet", "syncnet_distances"]

EMBEDDING = 1024  # syncnet_python's num_layers_in_fc_layers
WEIGHTS_HINT = (
    "SyncNet weights are not shipped and never downloaded: get syncnet_v2.model from "
    "joonson/syncnet_python (its download_model.sh names the file's address), copy it to this "
    "machine and pass its path. Without weights, curation uses the weightless measure "
    "(gaia.filters.av_sync) and Sync-C/D are n/a."
)


def _conv_bn_relu(conv: nn.Module, channels: int, bn=nn.BatchNorm2d) -> list[nn.Module]:
    return [conv, bn(channels), nn.ReLU(inplace=True)]


def _fc(embedding: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(),
                         nn.Linear(512, embedding))


class SyncNet(nn.Module):
    """``audio(mfcc (B, 1, 13, 20))`` and ``video(crops (B, 3, 5, 224, 224))`` -> (B, 1024).

    ``video`` takes BGR crops with values 0..255 as float, as syncnet_python feeds them.
    """

    def __init__(self, embedding: int = EMBEDDING) -> None:
        super().__init__()
        conv2, conv3 = nn.Conv2d, nn.Conv3d
        self.netcnnaud = nn.Sequential(  # 13 x 20 -> 11 x 9 -> 5 x 4 -> 1 x 1
            *_conv_bn_relu(conv2(1, 64, 3, padding=1), 64),
            nn.MaxPool2d(1, stride=1),  # a no-op kept for the published indices
            *_conv_bn_relu(conv2(64, 192, 3, padding=1), 192),
            nn.MaxPool2d(3, stride=(1, 2)),
            *_conv_bn_relu(conv2(192, 384, 3, padding=1), 384),
            *_conv_bn_relu(conv2(384, 256, 3, padding=1), 256),
            *_conv_bn_relu(conv2(256, 256, 3, padding=1), 256),
            nn.MaxPool2d(3, stride=2),
            *_conv_bn_relu(conv2(256, 512, (5, 4)), 512),
        )
        self.netfcaud = _fc(embedding)
        self.netfclip = _fc(embedding)
        bn3 = nn.BatchNorm3d
        self.netcnnlip = nn.Sequential(  # 5 x 224^2 -> 1 x 109^2 -> 54 -> 26 -> 13 -> 6 -> 1
            *_conv_bn_relu(conv3(3, 96, (5, 7, 7), stride=(1, 2, 2)), 96, bn3),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2)),
            *_conv_bn_relu(conv3(96, 256, (1, 5, 5), stride=(1, 2, 2), padding=(0, 1, 1)),
                           256, bn3),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            *_conv_bn_relu(conv3(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, bn3),
            *_conv_bn_relu(conv3(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, bn3),
            *_conv_bn_relu(conv3(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, bn3),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2)),
            *_conv_bn_relu(conv3(256, 512, (1, 6, 6)), 512, bn3),
        )
        self.provenance: dict = {}

    def audio(self, mfcc: torch.Tensor) -> torch.Tensor:
        return self.netfcaud(self.netcnnaud(mfcc).flatten(1))

    def video(self, crops: torch.Tensor) -> torch.Tensor:
        return self.netfclip(self.netcnnlip(crops).flatten(1))


def _describe_mismatch(state: dict, expected: dict) -> str:
    """What the state dict at hand is not, in one line."""
    keys = set(state)
    if any(k.startswith(("audio_net.", "video_net.")) for k in keys):
        return ("this is gaia's old SyncNet layout (grayscale 111 px mouth crops, 256-d "
                "embedding), which is gone: use syncnet_v2.model")
    if keys and all(k.startswith("__S__.") for k in keys):
        return ("its keys carry SyncNetInstance's '__S__.' prefix: save "
                "instance.__S__.state_dict() instead")
    if {"state_dict", "model", "optimizer", "global_step"} & keys:
        return (f"it is a training checkpoint (keys {sorted(keys)[:6]}), not syncnet_v2's plain "
                "state dict (Wav2Lip's and LatentSync's SyncNets are other networks)")
    parts = []
    missing = sorted(set(expected) - keys)
    if missing:
        groups = sorted({k.split(".")[0] for k in missing})
        parts.append(f"missing keys {', '.join(g + '.*' for g in groups)} "
                     f"({len(missing)} of {len(expected)}, e.g. {missing[0]})")
    unexpected = sorted(keys - set(expected))
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
    shapes = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
              if k in state and hasattr(state[k], "shape") and state[k].shape != v.shape]
    if shapes:
        parts.append(f"{len(shapes)} shapes differ (e.g. {shapes[0]})")
    return "; ".join(parts) or "its tensors do not fit"


def load_syncnet(path: str | Path) -> SyncNet:
    """The SyncNet with ``syncnet_v2.model``'s weights (a plain state dict), in eval mode.

    Safe loading (``torch.load(weights_only=True)``): a pickled module is refused. Keys are
    strict, with one allowance: BatchNorm's ``num_batches_tracked`` counters, which files
    saved before PyTorch 0.4.1 lack, may be absent (they are unused in eval mode). Raises
    ``MissingWeightsError`` when the file is absent, ``ValueError`` saying what the file is not
    otherwise. ``model.provenance``: the file, its SHA-256 and the layout.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingWeightsError(f"SyncNet weights file {path} not found. {WEIGHTS_HINT}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as err:
        raise ValueError(f"{path} is not a SyncNet state dict: torch's safe loader refuses it "
                         f"({type(err).__name__}; a pickled model is never unpickled). "
                         f"{WEIGHTS_HINT}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise ValueError(f"{path} holds a {type(state).__name__} that is not a plain state dict "
                         "of tensors, as syncnet_v2.model is")
    model = SyncNet()
    expected = model.state_dict()
    state = dict(state)
    for key in set(expected) - set(state):
        if key.endswith(".num_batches_tracked"):
            state[key] = torch.zeros((), dtype=torch.long)
    if set(state) != set(expected) or any(state[k].shape != v.shape for k, v in expected.items()):
        raise ValueError(f"{path} is not syncnet_v2.model: "
                         f"{_describe_mismatch(state, expected)}")
    model.load_state_dict(state, strict=True)
    model.provenance = {"name": "syncnet", "layout": "syncnet_v2", "file": str(path),
                        "sha256": file_sha256(path)}
    return model.eval()
