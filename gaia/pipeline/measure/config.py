"""Settings of ``gaia curate measure``: one frozen dataclass, saved resolved in ``config.yaml``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from gaia.common.config_files import build_config
from gaia.common.deprecation import renamed_keys
from gaia.filters.identity import IdentityThresholds
from gaia.filters.segments import SegmentRules
from gaia.filters.shot_cut import CUT_SCORE
from gaia.pipeline.face.detect import DetectorConfig
from gaia.pipeline.face.tflite.blazeface import BlazeFaceConfig

BACKENDS = ("dlib", "mediapipe")
LANDMARK_MODELS = ("auto", "dlib", "fan", "mesh")


@dataclass(frozen=True)
class MeasureConfig:
    """How videos are measured.

    backend: face detection and landmarks: ``dlib`` (HOG + the 68-point predictor) or
        ``mediapipe`` (BlazeFace full range + the 468-point face mesh mapped to 68 points, read
        from the ``mediapipe`` wheel and run with LiteRT); see ``measure.models``.
    landmarks: ``auto`` (the backend's own), ``dlib``, ``mesh`` (MediaPipe's face mesh) or
        ``fan`` (face-alignment; weights from the torch hub cache, never downloaded).
    blazeface: the ``mediapipe`` backend's detector settings.
    hands: look for hands over the lower face (MediaPipe's palm detection and hand landmarks,
        whatever the backend): the ``hand_cover`` measure the occlusion filter reads.
    min_side: the smallest longer side frames are decoded at (a floor; ``max_side`` before,
        still read from old ``config.yaml`` files). Measures are ratios, so frames
        are shrunk (decode, detection and memory all shrink with it), but only so far that the
        largest face the pre-scan found stays ``target_face_px`` wide (``measure.face_scale``).
        Stored coordinates are in the source's pixels.
    target_face_px: face width the analysis size aims at; 0: the backend's own (``face_px``:
        128 for dlib's predictor, 96 for the face mesh, which fits a 192 px crop of 1.7 face
        widths whatever the face's size in the frame).
    probe_frames: keyframes scanned at source size to find the faces' size.
    identity: embed the face at every scan (dlib's face-recognition ResNet) for the identity
        measures; off saves about 20 ms per scan.
    identity_max_distance: embeddings closer than this are the same person (dlib's 0.6).
    cut_threshold: ``cut_score`` at which the tracker treats a frame as a new shot and scans.
    chunk_frames: frames decoded and measured at a time (bounds memory).
    decode_threads: decoder threads per video; parallelism comes from running videos side by
        side, so 1 is right unless a cluster has few, very long videos.
    min_duration_s: shorter videos are measured but flagged ``too_short`` (no 3 s segment).
    stall_timeout_s: a video whose decoding makes no progress for this long is stopped with
        reason ``timeout`` (a hung decoder, a stalled network mount).
    time_limit_base_s, time_limit_per_video_s: the whole video must finish within
        ``base + per_video_s * duration`` seconds, or it is stopped with reason ``timeout``.
        syncnet_weights: a ``syncnet_v2.model`` state dict: SyncNet's per-frame offset and
        confidence (the ``syncnet_*`` columns the ``lip_sync`` filter and extract's audio shift
        read); None: those columns are null.
    """

    backend: str = "mediapipe"
    landmarks: str = "auto"
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    blazeface: BlazeFaceConfig = field(default_factory=BlazeFaceConfig)
    hands: bool = True
    min_side: int = 640
    target_face_px: float = 0.0
    probe_frames: int = 3
    identity: bool = True
    identity_max_distance: float = IdentityThresholds.max_distance  # the filter's default
    cut_threshold: float = CUT_SCORE
    chunk_frames: int = 32
    decode_threads: int = 1
    min_duration_s: float = SegmentRules.min_s  # the shortest clip the segment rules keep
    stall_timeout_s: float = 120.0
    time_limit_base_s: float = 300.0
    time_limit_per_video_s: float = 10.0
    syncnet_weights: str | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}")
        if self.landmarks not in LANDMARK_MODELS:
            raise ValueError(f"landmarks must be one of {', '.join(LANDMARK_MODELS)}, "
                             f"not {self.landmarks!r}")
        for name in ("min_side", "chunk_frames", "decode_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.detector.detect_every < 1:
            raise ValueError("detector.detect_every must be at least 1")
        if self.stall_timeout_s <= 0 or self.time_limit_base_s <= 0:
            raise ValueError("stall_timeout_s and time_limit_base_s must be positive")

    @property
    def landmark_model(self) -> str:
        """The landmark model actually used: ``auto`` resolved to the backend's own."""
        if self.landmarks == "auto":
            return "mesh" if self.backend == "mediapipe" else "dlib"
        return self.landmarks

    @property
    def face_px(self) -> float:
        """The face width frames are shrunk towards (``target_face_px`` resolved)."""
        if self.target_face_px > 0:
            return self.target_face_px
        return 96.0 if self.landmark_model == "mesh" else 128.0

    @property
    def needs_mediapipe(self) -> bool:
        """Whether any model comes from the ``mediapipe`` wheel."""
        return self.backend == "mediapipe" or self.landmark_model == "mesh" or self.hands

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> MeasureConfig:
        """From plain values (``config.yaml``, ``--set``), checked by the one config loader;
        keys of older runs are read under their new names (``current_settings``)."""
        return build_config(cls, current_settings(values), "measure")


# Keys renamed since a run could have written them (old -> new): still read for a release.
RENAMED = {"max_side": "min_side"}


def current_settings(values: dict, where: str = "measure settings") -> dict:
    """Measure settings as a run of any version wrote them, with renamed keys under their
    current names (one deprecation line each): what ``from_dict`` and resume compare."""
    return renamed_keys(values, RENAMED, where)
