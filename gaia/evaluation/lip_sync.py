"""Sync-C and Sync-D (Chung & Zisserman, SyncNet, 2016; the lip-sync columns of GAIA table 3,
as Wav2Lip and SadTalker report them): a SyncNet embeds each 0.2 s of mouth crops and of audio;
for every lag in ``-K..K`` frames the distance between the two is averaged over the clip's
frames. Sync-D is the smallest mean distance (lower: better sync), Sync-C the median of the
mean distances minus the smallest (higher: a clearer best lag), and the lag of the smallest is
the clip's offset.

The SyncNet is ``pipeline.speech.syncnet`` (our own layout, not syncnet_v2's; the user's
weights, ``torch.load(weights_only=True)``; curation does not use it); without weights both are
n/a, with the note naming the file. Mouth crops come from the frames' 68 landmarks (48-67): a square of
``MOUTH_SPAN`` mouth widths around the mouth centre, grayscale, 111 x 111.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from gaia.common.weights import optional_model

MOUTH_SPAN = 2.0


def clip_sync(lags: np.ndarray, distances: np.ndarray) -> dict:
    """Sync-C, Sync-D and the offset (frames) of a ``(frames, lags)`` distance matrix."""
    mean = np.asarray(distances, np.float64).mean(axis=0)
    best = int(np.argmin(mean))
    return {"sync_c": float(np.median(mean) - mean[best]), "sync_d": float(mean[best]),
            "sync_offset_frames": int(lags[best])}


def mouth_crops(frames: np.ndarray, tracks: np.ndarray, size: int = 111) -> np.ndarray | None:
    """``(n, size, size)`` uint8 grayscale mouth crops of uint8 RGB ``frames`` from their
    ``(n, 68, 2)`` landmarks; a frame without landmarks takes the previous frame's box (the
    next one's at the start). None when no frame has a mouth."""
    finite = np.isfinite(tracks).all(axis=(1, 2))
    if not finite.any():
        return None
    centres = np.full((len(tracks), 2), np.nan)
    centres[finite] = tracks[finite, 48:68].mean(axis=1)
    widths = np.linalg.norm(tracks[:, 54] - tracks[:, 48], axis=-1)
    first = int(np.argmax(finite))
    out = np.empty((len(frames), size, size), np.uint8)
    centre, width = centres[first], widths[first]
    for n, frame in enumerate(frames):
        if finite[n]:
            centre, width = centres[n], widths[n]
        half = max(2.0, MOUTH_SPAN * width / 2)
        x0, y0 = centre - half
        # An affine warp crops and scales at once, with edge pixels past the frame's border.
        scale = size / (2 * half)
        warp = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], np.float32)
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        out[n] = cv2.warpAffine(gray, warp, (size, size), flags=cv2.INTER_AREA,
                                borderMode=cv2.BORDER_REPLICATE)
    return out


def sync_scores(model, frames: np.ndarray, tracks: np.ndarray, audio_16k: np.ndarray,
                fps: float, max_lag_s: float = 0.6) -> dict | str:
    """Sync-C / Sync-D of one clip (frames, their landmarks, its audio), or why not."""
    from gaia.pipeline.speech.syncnet import syncnet_distances

    crops = mouth_crops(frames, tracks)
    if crops is None:
        return "no frame shows a mouth"
    if len(crops) < 5:
        return "fewer than 5 frames (one SyncNet window)"
    lags, distances = syncnet_distances(model, crops, audio_16k, fps, max_lag_s)
    return clip_sync(lags, distances)


def syncnet_scorer(weights: str | Path | None):
    """(the SyncNet, None) from ``weights``, or (None, the note saying which file Sync-C/D
    need) when no path is given or the file is missing."""
    from gaia.pipeline.speech.syncnet import WEIGHTS_HINT, load_syncnet

    return optional_model("Sync-C, Sync-D", load_syncnet, weights, WEIGHTS_HINT)
