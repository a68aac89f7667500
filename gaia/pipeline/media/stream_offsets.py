"""Where audio and video start in a file, and the audio moved onto the video's clock.

GAIA appendix A.1 drops clips whose "lip movements and speech are not aligned"; before any
measured lag means anything, the two decoders must share a time origin. They do not:

- frame times (``VideoFrames.times``, decord) count from the video stream's start: a video
  stream stamped to start at 0.4 s still has its first frame at 0.0;
- ``audio_blocks`` (PyAV, resampled) yields the audio track from its first decoded sample,
  which sits at the audio stream's start (AAC priming samples included: an encoder that
  stamps speech at 0.4 s puts its first, priming, frame 1024 samples earlier).

So sample 0 of ``audio_blocks`` is shown at video time ``offset_s = audio_start - video_start``,
and ``audio_on_video_clock`` pads or trims the front by that much. Edit lists (``elst``) are
applied by FFmpeg's mp4 demuxer before PyAV reports any start time, so the start times here
already include them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StreamStarts:
    """Start times of a file's first video and audio streams, seconds on the container clock.

    offset_s: ``audio_start_s - video_start_s`` (0 with no audio): where audio sample 0 falls on
    the video's clock. note: how the starts were read, for the record.
    """

    video_start_s: float
    audio_start_s: float | None
    offset_s: float
    note: str = ""


def _start_of(stream, container, kind: str) -> tuple[float, str]:
    """The stream's start time: its header value, else its first decoded frame's time."""
    if stream.start_time is not None and stream.time_base is not None:
        return float(stream.start_time * stream.time_base), f"{kind}: stream start_time"
    container.seek(0)
    for frame in container.decode(stream):
        if frame.time is not None:
            return float(frame.time), f"{kind}: first frame pts"
        break
    return 0.0, f"{kind}: no start time, 0 assumed"


def stream_start_times(path: str) -> StreamStarts:
    """Read the start times of ``path``'s first video and audio streams with PyAV."""
    import av

    with av.open(path) as container:
        if not container.streams.video:
            raise ValueError(f"{path} has no video stream")
        video_s, video_note = _start_of(container.streams.video[0], container, "video")
        if not container.streams.audio:
            return StreamStarts(video_s, None, 0.0, f"{video_note}; no audio")
        audio_s, audio_note = _start_of(container.streams.audio[0], container, "audio")
    notes = f"{video_note}; {audio_note}; edit lists applied by the demuxer"
    return StreamStarts(video_s, audio_s, audio_s - video_s, notes)


def audio_on_video_clock(audio: np.ndarray, rate: int, offset_s: float) -> np.ndarray:
    """``audio`` (sample 0 at video time ``offset_s``) moved so sample 0 is at video time 0.

    Positive offset (audio starts after the video): silence is put in front; negative: the
    samples before the first frame are dropped. The length changes by the same amount.
    """
    audio = np.asarray(audio)
    shift = int(round(offset_s * rate))
    if shift > 0:
        return np.concatenate([np.zeros(shift, audio.dtype), audio])
    return audio[-shift:] if shift < 0 else audio
