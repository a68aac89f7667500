"""SyncNet's per-frame offset and confidence while a video is measured (GAIA appendix A.1: "lip
movements and speech are not aligned"; LatentSync's curation rule reads these columns).

The measure stage decodes a video chunk by chunk, so the video half of SyncNet runs as the
chunks pass: each 1/25 s the frame shown then is cropped around the tracked face as
syncnet_python frames it (``speech.syncnet_crops``), and every window of 5 such crops becomes a
1024-d embedding as soon as its last crop arrives. Only the embeddings (4 KB a window) and the
last 4 crops are kept, never the frames. At the end the audio is read once more, on the video's
clock, its windows embedded, and the distances at lags -15..15 reduced per frame
(``speech.syncnet_scores.frame_sync``). Faces are cropped from the analysis-size frames (the
face about 96-128 px wide, enlarged to SyncNet's 224 px crop); frames without a face get null.
"""

from __future__ import annotations

import numpy as np
import torch

from gaia.pipeline.speech.syncnet import SyncNet
from gaia.pipeline.speech.syncnet_crops import face_crops
from gaia.pipeline.speech.syncnet_scores import (
    SAMPLES_PER_FRAME,
    SYNCNET_FPS,
    VSHIFT,
    WINDOW_FRAMES,
    audio_embeddings,
    embedding_distances,
    frame_sync,
    video_embeddings,
)

BATCH = 20  # windows per forward pass (syncnet_python's batch size)


class SyncNetTap:
    """Feed it each chunk (``add``), then ``finish`` with the audio: per-frame columns."""

    def __init__(self, model: SyncNet, fps: float) -> None:
        self.model = model
        self.fps = fps
        self._next = 0  # the next 1/25 s tick to take a crop for
        self._pending: list[np.ndarray] = []  # crops not yet the start of a full window
        self._embeddings: list[torch.Tensor] = []
        self.ticks = 0

    def add(self, frames_rgb: np.ndarray, boxes: np.ndarray, start: int) -> None:
        """Frames ``start .. start + len(frames) - 1`` (uint8 RGB) with their face boxes
        (x0, y0, x1, y1 in those frames' pixels, NaN rows without a face)."""
        stop = start + len(frames_rgb)
        picks = []
        while True:  # the frame shown at each 1/25 s tick inside this chunk
            shown = int(np.floor(self._next * self.fps / SYNCNET_FPS + 0.5))
            if shown >= stop:
                break
            picks.append(max(shown, start) - start)
            self._next += 1
        if not picks:
            return
        picks = np.asarray(picks)
        if np.isfinite(boxes[picks]).all(axis=1).any():
            crops = face_crops(frames_rgb[picks], boxes[picks])
        else:  # no face in the chunk: grey crops hold the place (the frames get null later)
            crops = np.full((len(picks), 224, 224, 3), 128, np.uint8)
        self._pending.extend(crops)
        self.ticks += len(picks)
        self._embed(final=False)

    @torch.no_grad()
    def _embed(self, final: bool) -> None:
        whole = len(self._pending) - WINDOW_FRAMES + 1  # windows whose crops are all here
        while whole >= (1 if final else BATCH):
            count = min(whole, BATCH)
            crops = torch.from_numpy(np.stack(self._pending[:count + WINDOW_FRAMES - 1]))
            self._embeddings.append(video_embeddings(self.model, crops))
            del self._pending[:count]
            whole -= count

    @torch.no_grad()
    def finish(self, audio_16k: np.ndarray, n_frames: int, has_face: np.ndarray
               ) -> dict[str, np.ndarray]:
        """``syncnet_offset_frames``, ``syncnet_lag_frames``, ``syncnet_confidence`` per video
        frame from the audio (16 kHz, sample 0 at frame 0's time); null without a face."""
        self._embed(final=True)
        audio = np.asarray(audio_16k, np.float32).reshape(-1)
        last = min(self.ticks, audio.size // SAMPLES_PER_FRAME) - WINDOW_FRAMES  # lastframe
        nan = np.full(n_frames, np.nan, np.float32)
        if last <= 0 or not self._embeddings:
            return {"syncnet_offset_frames": nan, "syncnet_lag_frames": nan.copy(),
                    "syncnet_confidence": nan.copy()}
        video = torch.cat(self._embeddings)[:last]
        sound = audio_embeddings(self.model, audio, len(video), BATCH)
        dists = embedding_distances(video, sound, VSHIFT).numpy()
        lags = np.arange(-VSHIFT, VSHIFT + 1)
        offset, confidence = frame_sync(lags, dists, n_frames=n_frames, fps=self.fps)
        face = np.asarray(has_face, bool)[:n_frames]
        offset, confidence = np.where(face, offset, np.nan), np.where(face, confidence, np.nan)
        return {"syncnet_offset_frames": offset.astype(np.float32),
                "syncnet_lag_frames": np.abs(offset).astype(np.float32),
                "syncnet_confidence": confidence.astype(np.float32)}
