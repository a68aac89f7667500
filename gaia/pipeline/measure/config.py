"""Settings of ``gaia curate measure``: one frozen dataclass, saved resolved in ``config.yaml``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from gaia.common.config_files import build_config
from gaia.pipeline.face.detect import DetectorConfig


@dataclass(frozen=True)
class MeasureConfig:
    """How videos are measured.

    landmarks: ``dlib`` (ships in a wheel) or ``fan`` (face-alignment; weights from the torch
        hub cache, never downloaded).
    max_side: frames are decoded shrunk so the longer side is at most this many pixels; the
        measures are ratios, so they do not need more, and decode, detection and memory all
        shrink with it. Stored coordinates are scaled back to the source's pixels.
    chunk_frames: frames decoded and measured at a time (bounds memory).
    decode_threads: decoder threads per video; parallelism comes from running videos side by
        side, so 1 is right unless a cluster has few, very long videos.
    min_duration_s: shorter videos are measured but flagged ``too_short`` (no 3 s segment).
    stall_timeout_s: a video whose decoding makes no progress for this long is stopped with
        reason ``timeout`` (a hung decoder, a stalled network mount).
    time_limit_base_s, time_limit_per_video_s: the whole video must finish within
        ``base + per_video_s * duration`` seconds, or it is stopped with reason ``timeout``.
    """

    landmarks: str = "dlib"
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    max_side: int = 640
    chunk_frames: int = 32
    decode_threads: int = 1
    min_duration_s: float = 3.0
    stall_timeout_s: float = 120.0
    time_limit_base_s: float = 300.0
    time_limit_per_video_s: float = 10.0

    def __post_init__(self) -> None:
        if self.landmarks not in ("dlib", "fan"):
            raise ValueError(f"landmarks must be 'dlib' or 'fan', not {self.landmarks!r}")
        for name in ("max_side", "chunk_frames", "decode_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.detector.detect_every < 1:
            raise ValueError("detector.detect_every must be at least 1")
        if self.stall_timeout_s <= 0 or self.time_limit_base_s <= 0:
            raise ValueError("stall_timeout_s and time_limit_base_s must be positive")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> MeasureConfig:
        """From plain values (``config.yaml``, ``--set``), checked by the one config loader."""
        return build_config(cls, values, "measure")
