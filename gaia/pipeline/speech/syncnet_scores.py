"""SyncNet's distances over audio-visual lags and what is read from them: Sync-C, Sync-D and the
offset of a clip (GAIA tables 3, 5, 6, 8, 9, as Wav2Lip and SadTalker report them), and a
per-frame offset and confidence for curation (GAIA appendix A.1: "lip movements and speech are
not aligned"; LatentSync keeps clips with confidence >= 3 and |offset| <= 6 frames).

As syncnet_python's ``SyncNetInstance.evaluate`` and ``calc_pdist`` (our code):
- video at 25 fps, audio at 16 kHz; ``min_length = min(frames, floor(samples / 640))`` and
  ``lastframe = min_length - 5``: windows ``v = 0 .. lastframe - 1`` (one fewer than would
  fit), each the crops ``v .. v + 4`` and the MFCC frames ``4 v .. 4 v + 19``;
- for window ``v`` and lag ``k`` in ``-vshift .. vshift``: the distance between window ``v``'s
  video embedding and window ``v + k``'s audio embedding, where the audio embeddings past
  either end are zero vectors (``F.pad`` of the embeddings), so edge windows compare with the
  video embedding's own norm;
- the clip: ``mdist`` = the distances averaged over windows; Sync-D = its least value,
  Sync-C = its median (torch's: the lower middle value) minus the least.

Sign: syncnet_python reports ``offset = vshift - argmin``, which is ``-k`` for the best lag
``k``: positive when the audio is early. gaia's convention (``gaia.filters.av_sync``) is
positive = audio late, so ``sync_offset_frames`` and ``frame_sync``'s offsets are ``+k``:
syncnet_python's number with its sign flipped. ``lags`` and the distance columns are in
syncnet_python's column order (column ``j`` is lag ``j - vshift``).

Other frame rates: syncnet_python converts every video to 25 fps (ffmpeg ``-r 25``) first; so
do we, picking for each 1/25 s the frame shown nearest that time, and ``frame_sync`` maps the
results back to the video's own frames.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gaia.pipeline.speech.mfcc import syncnet_mfcc

SYNCNET_FPS = 25.0
WINDOW_FRAMES = 5  # video frames per window (0.2 s)
MFCC_PER_FRAME = 4  # 100 Hz MFCCs per 25 fps frame
MFCC_FRAMES = 20
SAMPLES_PER_FRAME = 640  # 16 kHz / 25 fps
VSHIFT = 15  # syncnet_python's default --vshift: lags -15..15 (0.6 s either way)
FRAME_WINDOW = 51  # frame_sync's default: about 2 s of windows around each frame


def to_25fps(frames: int, fps: float) -> np.ndarray:
    """Indices of the frames (of ``frames`` at ``fps``) shown nearest each 1/25 s."""
    if abs(fps - SYNCNET_FPS) < 1e-6:
        return np.arange(frames)
    count = int(np.floor(frames * SYNCNET_FPS / fps + 1e-9))
    return np.minimum(np.floor(np.arange(count) * fps / SYNCNET_FPS + 0.5).astype(int), frames - 1)


def embedding_distances(video: torch.Tensor, audio: torch.Tensor, vshift: int = VSHIFT
                        ) -> torch.Tensor:
    """``(windows, 2 vshift + 1)``: column ``j`` is the distance between each window's video
    embedding and the audio embedding ``j - vshift`` windows later, zero vectors past the ends
    (``calc_pdist``; ``F.pairwise_distance`` with its eps of 1e-6, as there)."""
    width = 2 * vshift + 1
    padded = F.pad(audio, (0, 0, vshift, vshift))
    index = torch.arange(len(video))[:, None] + torch.arange(width)[None]
    return F.pairwise_distance(video[:, None].expand(-1, width, -1), padded[index])


@torch.no_grad()
def syncnet_distances(model: nn.Module, crops: np.ndarray, audio_16k: np.ndarray,
                      fps: float = SYNCNET_FPS, vshift: int = VSHIFT, batch: int = 20
                      ) -> tuple[np.ndarray, np.ndarray]:
    """``(lags, dists)``: lags ``-vshift..vshift`` (positive: audio late) and the
    ``(windows, 2 vshift + 1)`` float32 distances of syncnet_python's ``evaluate``.

    ``crops``: ``(n, 224, 224, 3)`` uint8 RGB face crops (``face_crops``) at ``fps``, turned
    to BGR here as syncnet_python's network sees them; ``audio_16k``: the clip's audio in
    [-1, 1] on the video's clock (sample 0 at frame 0). ``windows = min(n25, samples // 640)
    - 5`` (``n25``: the frames at 25 fps), none when that is not positive.
    """
    lags = np.arange(-vshift, vshift + 1)
    crops = np.asarray(crops)
    crops = crops[to_25fps(len(crops), fps)]
    audio = np.asarray(audio_16k).reshape(-1)
    min_length = min(len(crops), audio.size // SAMPLES_PER_FRAME)
    last = min_length - WINDOW_FRAMES
    if last <= 0:
        return lags, np.zeros((0, lags.size), np.float32)
    frames = torch.from_numpy(np.ascontiguousarray(crops[:min_length]))
    video = torch.cat([video_embeddings(model, frames[start:min(last, start + batch)
                                                     + WINDOW_FRAMES - 1])
                       for start in range(0, last, batch)])
    dists = embedding_distances(video, audio_embeddings(model, audio, last, batch), vshift)
    return lags, dists.numpy().astype(np.float32)


@torch.no_grad()
def video_embeddings(model: nn.Module, crops: torch.Tensor) -> torch.Tensor:
    """The embeddings (on the CPU) of every 5-crop window of ``crops`` ``(t, 224, 224, 3)``
    uint8 RGB: ``t - 4`` windows, turned to BGR 0..255 ``(3, 5, H, W)`` stacks as
    syncnet_python's ``imtv``."""
    device = next(model.parameters()).device
    clip = crops.flip(-1).to(device).permute(3, 0, 1, 2).float()  # RGB -> BGR, (3, t, H, W)
    count = crops.shape[0] - WINDOW_FRAMES + 1
    return model.video(torch.stack([clip[:, v:v + WINDOW_FRAMES] for v in range(count)])
                       ).float().cpu()


@torch.no_grad()
def audio_embeddings(model: nn.Module, audio_16k: np.ndarray, windows: int, batch: int
                     ) -> torch.Tensor:
    """The embeddings (on the CPU) of the audio windows ``0 .. windows - 1``: the MFCC frames
    ``4 v .. 4 v + 19`` of window ``v``, ``batch`` windows a pass."""
    device = next(model.parameters()).device
    mfcc = torch.from_numpy(syncnet_mfcc(audio_16k)).float()
    out = []
    for start in range(0, windows, batch):
        stacked = torch.stack([mfcc[:, MFCC_PER_FRAME * v:MFCC_PER_FRAME * v + MFCC_FRAMES]
                               for v in range(start, min(windows, start + batch))])[:, None]
        out.append(model.audio(stacked.to(device)).float().cpu())
    return torch.cat(out)


def _lower_median(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """torch.median's median: the lower of the two middle values for an even count."""
    ordered = np.sort(values, axis=axis)
    return np.take(ordered, (ordered.shape[axis] - 1) // 2, axis=axis)


def clip_sync(lags: np.ndarray, dists: np.ndarray) -> dict:
    """``{"sync_c", "sync_d", "sync_offset_frames"}`` of a ``(windows, lags)`` distance matrix,
    syncnet_python's numbers: Sync-D its least mean distance, Sync-C the median mean distance
    minus that; the offset in frames with gaia's sign (positive: audio late), i.e. minus
    syncnet_python's "AV offset". Raises ``ValueError`` on a matrix without windows."""
    dists = np.asarray(dists, np.float64)
    if dists.ndim != 2 or len(dists) == 0:
        raise ValueError(f"a (windows, lags) distance matrix with windows is needed, "
                         f"not {dists.shape}")
    mean = dists.mean(axis=0)
    best = int(np.argmin(mean))  # the first least value, as torch.min
    return {"sync_c": float(_lower_median(mean) - mean[best]), "sync_d": float(mean[best]),
            "sync_offset_frames": int(lags[best])}


def frame_sync(lags: np.ndarray, dists: np.ndarray, window: int = FRAME_WINDOW,
               n_frames: int | None = None, fps: float = SYNCNET_FPS
               ) -> tuple[np.ndarray, np.ndarray]:
    """Per video frame: ``(offset_frames, confidence)``, float32, in SyncNet's units.

    Around each window, the distances of up to ``window`` windows (centred, cut at the clip's
    ends) are averaged per lag; the offset is the lag of the least average (gaia's sign:
    positive = audio late; 25 fps frames) and the confidence the median minus the least: the
    clip's ``clip_sync`` over a sliding stretch, so with ``window`` >= the windows of the clip
    every frame gets the clip's Sync-C and offset. (syncnet_python's framewise ``fconf`` is
    another quantity: the clip's median minus each window's distance at the clip's best lag,
    median-filtered over 9 windows; it needs no per-frame lag.)

    Frame ``t`` (at 25 fps) takes the window centred on it, ``t - 2``; frames before the first
    window's centre take the first window's values and frames past the last one (the
    ``lastframe`` rule leaves at least 3) the last window's. ``n_frames``: the video's frames
    at ``fps`` (default: the windows plus 5, at 25 fps); at another rate each frame takes the
    25 fps frame nearest its time. All NaN when there are no windows.
    """
    dists = np.asarray(dists, np.float64)
    count = len(dists)
    if n_frames is None:
        n_frames = int(round((count + WINDOW_FRAMES) * fps / SYNCNET_FPS))
    if count == 0:
        return np.full(n_frames, np.nan, np.float32), np.full(n_frames, np.nan, np.float32)
    # Sums over [i - window // 2, i - window // 2 + window) by cumulative sums, cut at the ends.
    sums = np.concatenate([np.zeros((1, dists.shape[1])), np.cumsum(dists, axis=0)])
    low = np.clip(np.arange(count) - window // 2, 0, count)
    high = np.clip(np.arange(count) - window // 2 + window, 0, count)
    average = (sums[high] - sums[low]) / (high - low)[:, None]
    best = np.argmin(average, axis=1)
    offset = np.asarray(lags)[best].astype(np.float32)
    confidence = (_lower_median(average, axis=1) - average[np.arange(count), best])
    at_25 = np.floor(np.arange(n_frames) * SYNCNET_FPS / fps + 0.5).astype(int)
    which = np.clip(at_25 - WINDOW_FRAMES // 2, 0, count - 1)
    return offset[which], confidence.astype(np.float32)[which]
