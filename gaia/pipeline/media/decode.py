"""Decoding: video frames with decord in bounded chunks, audio to 16 kHz mono with PyAV.

Memory stays bounded whatever the video's length or size: frames come ``chunk_frames`` at a
time, shrunk during decoding so the longer side is at most ``max_side``, and audio is streamed
in blocks. An hour of 1080p is measured in the same few hundred MB as a 10 s clip.

Audio goes through PyAV rather than decord's AudioReader, which loads a whole track at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from gaia.schemas.shards import AUDIO_RATE  # 16 kHz mono, the rate of every audio stream
from gaia.schemas.videos import video_fps


class DecodeError(RuntimeError):
    """A file that cannot be decoded; ``reason`` is a code from ``schemas.videos``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class VideoInfo:
    """What the container says, read before decoding any frame."""

    width: int
    height: int
    fps: float
    num_frames: int
    duration_s: float
    has_audio: bool
    codec: str


def probe(path: str) -> VideoInfo:
    """Read stream properties with PyAV; raises ``DecodeError('not_a_video')`` on failure."""
    import av

    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise DecodeError("not_a_video", f"{path} has no video stream")
            stream = container.streams.video[0]
            ctx = stream.codec_context
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else 0.0
            duration = 0.0
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / 1_000_000
            frames = int(stream.frames or round(duration * fps))
            return VideoInfo(
                width=int(ctx.width or 0),
                height=int(ctx.height or 0),
                fps=fps,
                num_frames=frames,
                duration_s=duration,
                has_audio=bool(container.streams.audio),
                codec=str(ctx.name),
            )
    except DecodeError:
        raise
    except Exception as err:  # PyAV raises many error types for unreadable input
        raise DecodeError(
            "not_a_video", f"{path} could not be opened as a video: {err}"
        ) from err


def analysis_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The (even) size frames are decoded at: the source shrunk to fit ``max_side``."""
    scale = min(1.0, max_side / max(width, height))
    if scale >= 1.0:
        return width, height
    return max(2, 2 * round(width * scale / 2)), max(2, 2 * round(height * scale / 2))


@dataclass
class FrameChunk:
    """Consecutive frames: ``frames`` (n, h, w, 3) uint8 RGB, their indices and times."""

    start: int
    frames: np.ndarray
    times_s: np.ndarray


class VideoFrames:
    """Frames of one video through decord, ``chunk_frames`` at a time, at ``analysis_size``."""

    def __init__(self, path: str, info: VideoInfo, max_side: int, chunk_frames: int = 32,
                 threads: int = 1) -> None:
        import decord

        self.width, self.height = analysis_size(info.width, info.height, max_side)
        self.scale = info.width / self.width if self.width else 1.0
        self.chunk_frames = chunk_frames
        try:
            if (self.width, self.height) == (info.width, info.height):
                self._reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=threads)
            else:
                self._reader = decord.VideoReader(
                    path, ctx=decord.cpu(0), width=self.width, height=self.height,
                    num_threads=threads,
                )
        except Exception as err:
            raise DecodeError("not_a_video", f"decord cannot open {path}: {err}") from err
        self.num_frames = len(self._reader)
        self.fps = video_fps(self._reader.get_avg_fps() or info.fps)

    def times(self) -> np.ndarray:
        """Presentation time of every frame (start of display), seconds."""
        if self.num_frames == 0:
            return np.zeros(0)
        stamps = np.asarray(self._reader.get_frame_timestamp(range(self.num_frames)))
        return stamps[:, 0].astype(np.float64)

    def __iter__(self) -> Iterator[FrameChunk]:
        times = self.times()
        for start in range(0, self.num_frames, self.chunk_frames):
            stop = min(start + self.chunk_frames, self.num_frames)
            try:
                frames = self._reader.get_batch(list(range(start, stop))).asnumpy()
            except Exception as err:
                raise DecodeError(
                    "decode_error", f"frames {start}-{stop - 1} could not be decoded: {err}"
                ) from err
            yield FrameChunk(start=start, frames=frames, times_s=times[start:stop])


def is_variable_rate(times_s: np.ndarray, tolerance: float = 0.1) -> bool:
    """Whether frame intervals vary by more than ``tolerance`` of their median."""
    if len(times_s) < 3:
        return False
    steps = np.diff(times_s)
    median = float(np.median(steps))
    if median <= 0 or not math.isfinite(median):
        return False
    return bool(np.mean(np.abs(steps - median) > tolerance * median) > 0.05)


def audio_blocks(path: str, block_s: float = 30.0) -> Iterator[np.ndarray]:
    """The first audio track as float32 mono at 16 kHz, in blocks of about ``block_s``.

    Yields nothing when the file has no audio track.
    """
    import av

    block = int(block_s * AUDIO_RATE)
    pending: list[np.ndarray] = []
    count = 0
    with av.open(path) as container:
        if not container.streams.audio:
            return
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
        for packet in container.demux(stream):
            for frame in packet.decode():
                for out in resampler.resample(frame):
                    samples = out.to_ndarray().reshape(-1)
                    pending.append(samples)
                    count += samples.size
                    if count >= block:
                        yield np.concatenate(pending).astype(np.float32, copy=False)
                        pending, count = [], 0
        for out in resampler.resample(None):
            pending.append(out.to_ndarray().reshape(-1))
    if pending:
        yield np.concatenate(pending).astype(np.float32, copy=False)
