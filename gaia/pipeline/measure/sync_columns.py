"""The measures that need the whole video: mouth motion, speech envelope and A/V sync.

Paper, appendix A.1 drops clips whose "lip movements and speech are not aligned". The sync
measure (``filters.av_sync``) correlates the mouth with the speech over a window of about two
seconds around each frame, across chunk boundaries, so it runs once the frames are measured:
the chunked metrics file is copied row group by row group with these columns filled in, and
memory stays bounded by a row group, not the video.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gaia.filters.av_sync import (
    clip_offset_frames,
    lag_agreement,
    mouth_motion,
    speech_envelope,
    sync_lags,
)
from gaia.schemas.metrics import METRICS_COMPRESSION, METRICS_SCHEMA
from gaia.schemas.shards import AUDIO_RATE

ENERGY_RATE = 100  # speech energy is kept per 10 ms: an hour of audio is 1.4 MB, not 230 MB


class EnergyTap:
    """Passes audio blocks through (to the VAD) while keeping their mean square per 10 ms."""

    def __init__(self, blocks: Iterable[np.ndarray], rate: int = AUDIO_RATE) -> None:
        self.blocks = blocks
        self.hop = rate // ENERGY_RATE
        self._parts: list[np.ndarray] = []
        self._rest = np.zeros(0, np.float32)

    def __iter__(self) -> Iterator[np.ndarray]:
        for block in self.blocks:
            audio = np.concatenate([self._rest, np.asarray(block, np.float32).reshape(-1)])
            whole = len(audio) // self.hop * self.hop
            if whole:
                hops = audio[:whole].astype(np.float64).reshape(-1, self.hop)
                self._parts.append((hops ** 2).mean(axis=1))
            self._rest = audio[whole:]
            yield block

    def rms(self) -> np.ndarray:
        """RMS per 10 ms hop: as a signal at ``ENERGY_RATE`` Hz its RMS over any window of
        whole hops is the audio's RMS there, so ``speech_envelope`` reads it directly."""
        if not self._parts:
            return np.zeros(0, np.float32)
        return np.sqrt(np.concatenate(self._parts)).astype(np.float32)


def sync_measures(mouth: np.ndarray, times_s: np.ndarray, fps: float,
                  energy_rms: np.ndarray | None, av_offset_s: float,
                  covered: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-frame mouth motion, speech envelope, sync offset, confidence and lag agreement
    (NaN: no audio).

    ``covered``: frames where a hand hides the mouth; their mouth motion is 0, never motion
    (fingers over the lips move the fitted lip points, not the mouth)."""
    n = len(mouth)
    motion = mouth_motion(mouth, fps)
    if covered is not None and len(covered) == n:
        motion = np.where(covered, np.float32(0.0), motion).astype(np.float32)
    columns = {"mouth_motion": motion}
    nan = np.full(n, np.nan, np.float32)
    if energy_rms is None or not len(energy_rms):
        columns.update(speech_env=nan, sync_offset_frames=nan, sync_confidence=nan.copy(),
                       sync_agreement=nan.copy())
        return columns
    # Audio sample 0 is at video time av_offset_s: read the envelope on the video's clock.
    envelope = speech_envelope(energy_rms, ENERGY_RATE, times_s - av_offset_s, fps)
    offsets, confidence = sync_lags(mouth, envelope, fps)
    columns.update(speech_env=envelope, sync_offset_frames=offsets, sync_confidence=confidence,
                   sync_agreement=lag_agreement(offsets, confidence, fps))
    return columns


def video_sync_offset_s(columns: dict[str, np.ndarray], fps: float) -> float:
    """The video's median offset over confident windows, seconds (NaN: none confident)."""
    frames = clip_offset_frames(columns["sync_offset_frames"], columns["sync_confidence"])
    return frames / fps if np.isfinite(frames) else float("nan")


def rewrite_with(source: Path, target: Path, columns: dict[str, np.ndarray]) -> None:
    """Copy the metrics file ``source`` to ``target`` with ``columns`` replaced, batch by batch."""
    reader = pq.ParquetFile(source)
    start = 0
    with pq.ParquetWriter(target, METRICS_SCHEMA, compression=METRICS_COMPRESSION) as writer:
        for batch in reader.iter_batches(batch_size=4096):
            stop = start + batch.num_rows
            arrays = []
            for name in METRICS_SCHEMA.names:
                if name in columns:
                    values = np.asarray(columns[name][start:stop], np.float32)
                    arrays.append(pa.array(values, mask=~np.isfinite(values)))
                else:
                    arrays.append(batch.column(name))
            writer.write_batch(pa.record_batch(arrays, schema=METRICS_SCHEMA))
            start = stop
