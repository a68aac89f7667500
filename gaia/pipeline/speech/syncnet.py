"""SyncNet (Chung & Zisserman, "Out of time: automated lip sync in the wild", 2016), our code.

The option to ``gaia.filters.av_sync`` (weightless) for GAIA appendix A.1's "lip movements and
speech are not aligned". Two streams map 0.2 s of each modality to one embedding, trained so
that in-sync pairs are close (contrastive loss):

- audio: 13 MFCCs x 20 frames at 100 Hz (0.2 s) as a 1-channel image, a VGG-M-like stack of
  3x3 convolutions (section 3.1, Fig. 1);
- video: 5 consecutive grayscale mouth crops (0.2 s at 25 fps) stacked as channels
  (early fusion), 111 x 111, a VGG-M stack (conv1 7x7/2 ... conv5, fc6 as a 6x6 convolution).

Offsets follow the paper's section 4.1: for each video frame, the distance between its video
embedding and the audio embeddings at lags ``-K..K``; distances averaged over a window;
offset = the lag of the smallest, confidence = median distance minus the smallest. Sign and
meaning match ``av_sync.sync_lags``: positive offset = audio late.

Weights are the user's (docs/weights.md): a state dict of *this* module's layout (keys as
``SyncNet().state_dict()``), loaded with ``torch.load(weights_only=True)``; nothing is
downloaded. Published SyncNet checkpoints (syncnet_v2) use a different layer layout (colour
224 x 224 crops, 3-D first convolution) and must be converted to these keys first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gaia.common.weights import MissingWeightsError, file_sha256
from gaia.schemas.shards import AUDIO_RATE, FPS

MFCC_RATE_HZ = 100
AUDIO_FRAMES = 20  # MFCC frames per 0.2 s window
VIDEO_FRAMES = 5  # mouth crops per 0.2 s window at 25 fps
CROP = 111
WEIGHTS_HINT = (
    "SyncNet weights are not shipped and never downloaded: train this module's SyncNet (or "
    "convert a published syncnet_v2 checkpoint to its state-dict keys) on a machine with the "
    "data, save with torch.save(model.state_dict(), PATH) and pass PATH. Without weights use the "
    "weightless measure, gaia.filters.av_sync."
)


@dataclass(frozen=True)
class SyncNetConfig:
    """Widths of the two streams (the paper's by default; smaller for tests)."""

    audio_channels: tuple[int, ...] = (64, 192, 384, 256, 256, 512)
    video_channels: tuple[int, ...] = (96, 256, 256, 256, 256, 512)
    embedding: int = 256


def _block(c_in: int, c_out: int, kernel, stride=1, padding=0) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, stride, padding), nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True)]


class SyncNet(nn.Module):
    """``audio(mfcc (B, 1, 13, 20))`` and ``video(crops (B, 5, 111, 111))`` -> (B, embedding)."""

    def __init__(self, config: SyncNetConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or SyncNetConfig()
        a = config.audio_channels
        self.audio_net = nn.Sequential(
            *_block(1, a[0], 3, padding=1),
            *_block(a[0], a[1], 3, padding=1), nn.MaxPool2d(3, stride=(1, 2)),
            *_block(a[1], a[2], 3, padding=1),
            *_block(a[2], a[3], 3, padding=1),
            *_block(a[3], a[4], 3, padding=1), nn.MaxPool2d(3, stride=2),
            *_block(a[4], a[5], (5, 4)),  # the 13 x 20 input is 5 x 4 here: fc6 as a conv
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(a[5], config.embedding),
        )
        v = config.video_channels
        self.video_net = nn.Sequential(
            *_block(VIDEO_FRAMES, v[0], 7, stride=2), nn.MaxPool2d(3, stride=2),
            *_block(v[0], v[1], 5, stride=2, padding=1), nn.MaxPool2d(3, stride=2),
            *_block(v[1], v[2], 3, padding=1),
            *_block(v[2], v[3], 3, padding=1),
            *_block(v[3], v[4], 3, padding=1), nn.MaxPool2d(3, stride=2),
            *_block(v[4], v[5], 1),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(v[5], config.embedding),
        )

    def audio(self, mfcc: torch.Tensor) -> torch.Tensor:
        return self.audio_net(mfcc)

    def video(self, crops: torch.Tensor) -> torch.Tensor:
        return self.video_net(crops)


def load_syncnet(path: str | Path, config: SyncNetConfig | None = None) -> SyncNet:
    """A ``SyncNet`` with the state dict at ``path`` (safe loading: a pickled object is refused).

    Raises ``MissingWeightsError`` naming the file when it is absent, ``ValueError`` when it is
    not a plain state dict or does not fit. ``model.provenance`` records the file and its hash.
    """
    import pickle

    path = Path(path)
    if not path.is_file():
        raise MissingWeightsError(f"SyncNet weights file {path} not found. {WEIGHTS_HINT}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
        raise ValueError(f"{path} is not a SyncNet state dict: torch's safe loader refuses it "
                         f"({type(err).__name__}), and it is not unpickled. {WEIGHTS_HINT}") \
            from None
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict")
    model = SyncNet(config)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{path} does not fit this SyncNet: {err}") from None
    model.provenance = {"name": "syncnet", "weights": str(path), "sha256": file_sha256(path)}
    return model.eval()


def mfcc(audio_16k: np.ndarray, n_mfcc: int = 13) -> np.ndarray:
    """``(n_mfcc, frames)`` MFCCs at 100 Hz: 25 ms Hann windows, 40 mel bands, log, DCT-II."""
    from gaia.pipeline.speech.features import LogMelSettings, mel_filterbank

    settings = LogMelSettings(n_mels=40)
    signal = np.asarray(audio_16k, np.float32).reshape(-1)
    hop, window = AUDIO_RATE // MFCC_RATE_HZ, 400
    count = max(1, -(-signal.size // hop))
    padded = np.zeros((count - 1) * hop + window, np.float32)
    padded[: signal.size] = signal[: padded.size]
    frames = np.lib.stride_tricks.sliding_window_view(padded, window)[::hop]
    power = np.abs(np.fft.rfft(frames * np.hanning(window), n=settings.n_fft)) ** 2
    logmel = np.log(power @ mel_filterbank(settings).T + settings.floor)
    k = np.arange(settings.n_mels)
    dct = np.cos(np.pi / settings.n_mels * (k[None] + 0.5) * np.arange(n_mfcc)[:, None])
    return (dct @ logmel.T).astype(np.float32)


@torch.no_grad()
def syncnet_distances(model: SyncNet, mouth_crops: np.ndarray, audio_16k: np.ndarray,
                      fps: float = FPS, max_lag_s: float = 0.5, batch: int = 64
                      ) -> tuple[np.ndarray, np.ndarray]:
    """``(lags, distances)``: the lags in frames ``-K..K`` and, per frame ``t`` and lag ``k``,
    the distance between frame ``t``'s video embedding (frames ``t-2..t+2``) and the embedding
    of the 0.2 s of audio centred on frame ``t + k``: ``(n, 2K + 1)``.

    ``mouth_crops``: ``(n, 111, 111)`` grayscale mouth crops (uint8 or float in [0, 1]) at
    ``fps`` (25 as the model's training; other rates are read as if 25); ``audio_16k``: the
    clip's audio on the video's clock.
    """
    crops = np.asarray(mouth_crops, np.float32)
    if crops.max(initial=0.0) > 1.0:
        crops = crops / 255.0
    n = crops.shape[0]
    lags = np.arange(-int(round(max_lag_s * fps)), int(round(max_lag_s * fps)) + 1)
    if n == 0:
        return lags, np.zeros((0, lags.size))
    device = next(model.parameters()).device
    half = VIDEO_FRAMES // 2
    padded = np.pad(crops, ((half, half), (0, 0), (0, 0)), mode="edge")
    stacks = np.lib.stride_tricks.sliding_window_view(padded, VIDEO_FRAMES, axis=0)
    stacks = np.moveaxis(stacks, -1, 1)  # (n, 5, H, W)
    video = torch.cat([model.video(torch.from_numpy(np.ascontiguousarray(stacks[i:i + batch]))
                                   .to(device)) for i in range(0, n, batch)])
    coeffs = mfcc(audio_16k)
    per_frame = MFCC_RATE_HZ / fps
    span = n + 2 * lags.max()  # audio windows centred on frames -K..n-1+K
    starts = np.round((np.arange(span) - lags.max() + 0.5) * per_frame - AUDIO_FRAMES / 2)
    starts = starts.astype(int)
    left = max(0, -int(starts.min()))
    right = max(0, int(starts.max()) + AUDIO_FRAMES - coeffs.shape[1])
    mf = np.pad(coeffs, ((0, 0), (left, right)), mode="edge")  # silence-free edges: repeat
    starts = starts + left
    windows = np.stack([mf[:, s:s + AUDIO_FRAMES] for s in starts])[:, None]
    audio = torch.cat([model.audio(torch.from_numpy(windows[i:i + batch]).to(device))
                       for i in range(0, span, batch)])
    index = np.arange(n)[:, None] + lags[None] + lags.max()  # (n, lags) into audio windows
    dist = torch.linalg.vector_norm(video[:, None] - audio[torch.from_numpy(index)], dim=-1)
    return lags, dist.cpu().numpy().astype(np.float64)


def syncnet_offsets(model: SyncNet, mouth_crops: np.ndarray, audio_16k: np.ndarray,
                    fps: float = FPS, window_s: float = 2.0, max_lag_s: float = 0.5,
                    batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: (offset_frames, confidence) as ``av_sync.sync_lags``, from SyncNet distances
    (``syncnet_distances``) averaged over a ``window_s`` window around each frame."""
    lags, dist = syncnet_distances(model, mouth_crops, audio_16k, fps, max_lag_s, batch)
    n = len(dist)
    if n == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    width = max(1, int(round(window_s * fps)))
    kernel = np.ones(width) / width
    smooth = np.stack([np.convolve(np.pad(dist[:, j], (width // 2, width - 1 - width // 2),
                                          mode="edge"), kernel, mode="valid")
                       for j in range(lags.size)], axis=1)
    best = np.argmin(smooth, axis=1)
    confidence = np.median(smooth, axis=1) - smooth[np.arange(n), best]
    return lags[best].astype(np.float32), confidence.astype(np.float32)
