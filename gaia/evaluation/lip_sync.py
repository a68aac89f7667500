"""Sync-C and Sync-D (Chung & Zisserman, SyncNet, 2016; the lip-sync columns of GAIA tables 3,
5, 6, 8 and 9, as Wav2Lip and SadTalker report them, with syncnet_python's ``syncnet_v2.model``).

SyncNet embeds each 0.2 s of colour face crops and of MFCCs; for every lag in -15..15 frames
the distance between the two is averaged over the clip's windows. Sync-D is the smallest mean
distance (lower: better sync), Sync-C the median of the mean distances minus the smallest
(higher: a clearer best lag), and the lag of the smallest is the clip's offset (positive: audio
late, the opposite sign of syncnet_python's printed "AV offset"). All of it is
``gaia.pipeline.speech.syncnet`` (the network in the published layout, its input framing, its
scoring); without weights both metrics are n/a, with the note naming the file.

syncnet_python frames its crops from S3FD detector boxes; evaluation has each frame's 68
landmarks instead, so the boxes are the landmarks' extent with the forehead added
(``syncnet_crops.landmark_boxes``: an assumption about S3FD's boxes, stated there).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gaia.common.weights import optional_model
from gaia.pipeline.speech.syncnet_scores import SYNCNET_FPS, WINDOW_FRAMES, clip_sync

__all__ = ["clip_sync", "sync_scores", "syncnet_scorer"]


def sync_scores(model, frames: np.ndarray, tracks: np.ndarray, audio_16k: np.ndarray,
                fps: float, max_lag_s: float = 0.6) -> dict | str:
    """Sync-C / Sync-D / offset of one clip (uint8 RGB ``frames``, their ``(n, 68, 2)``
    landmarks, its 16 kHz audio), or why not. ``max_lag_s``: the lags tried either way
    (0.6 s: syncnet_python's vshift of 15 frames at 25 fps)."""
    from gaia.pipeline.speech.syncnet import (
        face_crops,
        landmark_boxes,
        syncnet_distances,
    )

    boxes = landmark_boxes(tracks)
    if not np.isfinite(boxes).all(axis=1).any():
        return "no frame shows a face"
    crops = face_crops(frames, boxes)
    vshift = int(round(max_lag_s * SYNCNET_FPS))
    lags, distances = syncnet_distances(model, crops, audio_16k, fps, vshift)
    if len(distances) == 0:
        return (f"fewer than {WINDOW_FRAMES + 1} frames at 25 fps with audio under them "
                "(syncnet_python scores min_length - 5 windows of 5 frames)")
    return clip_sync(lags, distances)


def syncnet_scorer(weights: str | Path | None):
    """(the SyncNet, None) from ``weights`` (``syncnet_v2.model``), or (None, the note saying
    which file Sync-C/D need) when no path is given or the file is missing."""
    from gaia.pipeline.speech.syncnet import WEIGHTS_HINT, load_syncnet

    return optional_model("Sync-C, Sync-D", load_syncnet, weights, WEIGHTS_HINT)
