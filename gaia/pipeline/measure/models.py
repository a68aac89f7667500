"""The models one measure worker loads once and reuses for every video.

The face backend (``MeasureConfig.backend``):

- ``dlib``: HOG detection and dlib's 68-point predictor (both ship in wheels);
- ``mediapipe``: BlazeFace full range (tiled, ``face.tflite.blazeface``) and the 468-point face
  mesh mapped to the 68 iBUG points (``face.tflite.face_mesh``), from the ``mediapipe`` wheel.

``landmarks`` may swap the landmark model (``dlib``, ``mesh``, ``fan``). Any detector with
the ``BaseDetector`` shape (``pipeline.face.scan``) plugs in here. ``hands`` adds MediaPipe's
palm and hand models, whatever the backend, for the hand-over-mouth measure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gaia.pipeline.face.landmarks import Landmarker, load_landmarker
from gaia.pipeline.face.scan import BaseDetector, FaceScanner, ScanConfig
from gaia.pipeline.face.tflite.hands import HandFinder
from gaia.pipeline.measure.config import MeasureConfig
from gaia.pipeline.measure.face_scale import PROBE_MAX_PIXELS, FaceScale, probe_face_scale
from gaia.pipeline.measure.tracker import FaceTracker
from gaia.pipeline.media.decode import VideoFrames, VideoInfo
from gaia.pipeline.media.shot_cut import CutDetector
from gaia.pipeline.speech.vad import SpeechDetector

if TYPE_CHECKING:
    import torch

SCAN_FACE_SHARE = 0.6  # periodic scans look for faces down to this share of the main face


@dataclass
class Models:
    """What measuring a video needs, loaded once per worker."""

    scanner: FaceScanner
    landmarker: Landmarker
    speech: SpeechDetector
    embedder: Callable[[np.ndarray, np.ndarray], np.ndarray] | None
    identity_max_distance: float
    cut_threshold: float
    hands: HandFinder | None = None
    syncnet: torch.nn.Module | None = None  # syncnet_v2, when measure has its weights

    def new_cut_detector(self) -> CutDetector:
        return CutDetector(threshold=self.cut_threshold)

    @classmethod
    def load(cls, config: MeasureConfig) -> Models:
        embedder = None
        if config.identity:
            from gaia.pipeline.face.identity import FaceEmbedder

            embedder = FaceEmbedder()
        landmarker = load_face_landmarker(config)
        return cls(
            scanner=new_scanner(config, landmarker),
            landmarker=landmarker,
            hands=HandFinder() if config.hands else None,
            speech=SpeechDetector(),
            embedder=embedder,
            identity_max_distance=config.identity_max_distance,
            cut_threshold=config.cut_threshold,
            syncnet=_syncnet(config),
        )


def _syncnet(config: MeasureConfig):
    """The SyncNet of ``config.syncnet_weights`` (None without), on the GPU when there is one."""
    if not config.syncnet_weights:
        return None
    import torch

    from gaia.pipeline.speech.syncnet import load_syncnet

    model = load_syncnet(config.syncnet_weights)
    return model.to("cuda") if torch.cuda.is_available() else model


def load_detector(config: MeasureConfig, landmarker: Landmarker | None = None) -> BaseDetector:
    """The backend's face detector, as a ``BaseDetector`` for ``FaceScanner``. BlazeFace checks
    its doubtful detections with the face mesh: ``landmarker``'s when it is one (one model in
    memory), else a mesh of its own."""
    if config.backend == "mediapipe":
        from gaia.pipeline.face.tflite.blazeface import BlazeFaceDetector
        from gaia.pipeline.face.tflite.face_mesh import MeshLandmarker

        mesh = landmarker if isinstance(landmarker, MeshLandmarker) else MeshLandmarker()
        return BlazeFaceDetector(config.blazeface, verifier=mesh)
    from gaia.pipeline.face.detect import FaceDetector

    return FaceDetector(config.detector)


def new_scanner(config: MeasureConfig, landmarker: Landmarker | None = None) -> FaceScanner:
    """The backend's detector in a ``FaceScanner``. BlazeFace's cost is per input tile, so its
    scans get a smaller pixel budget than HOG's."""
    if config.backend == "mediapipe":
        return FaceScanner(load_detector(config, landmarker),
                           ScanConfig(max_pixels=config.blazeface.max_scan_pixels))
    return FaceScanner(load_detector(config))


def load_face_landmarker(config: MeasureConfig) -> Landmarker:
    if config.landmark_model == "mesh":
        from gaia.pipeline.face.tflite.face_mesh import MeshLandmarker

        return MeshLandmarker()
    return load_landmarker(config.landmark_model)


def tracked_video(path: str, info: VideoInfo, config: MeasureConfig, scanner: FaceScanner,
                  landmarker: Landmarker) -> tuple[FaceScale, VideoFrames, FaceTracker]:
    """A video opened for face tracking as ``measure`` opens it: keyframes pre-scanned for the
    faces' size, frames decoded at the size that gives, and a tracker whose scans look for
    faces down to ``SCAN_FACE_SHARE`` of the main face (the configured floor when none was
    found). Generation's pose tracks and driving videos go through here too, so they see what
    curation saw."""
    detector = config.detector
    scale = probe_face_scale(path, info, scanner, detector.min_face_px, config.min_side,
                             config.face_px, config.probe_frames)
    frames = VideoFrames(path, info, scale.analysis_side, config.chunk_frames,
                         config.decode_threads)
    # The smallest face looked for, in analysis pixels: the configured floor, or 0.6 of the
    # pre-scan's face when that is larger (a scan sized to the face is a cheaper scan; faces
    # of people in the same shot are of about one size).
    min_face = detector.min_face_px / frames.scale
    if scale.face_px:
        min_face = max(min_face, SCAN_FACE_SHARE * scale.face_px / frames.scale)
    tracker = FaceTracker(scanner, landmarker, detector, min_face,
                          find_max_pixels=PROBE_MAX_PIXELS)
    return scale, frames, tracker


def new_tracker(config: MeasureConfig, scale: float = 1.0,
                landmarker: Landmarker | None = None) -> FaceTracker:
    """A face tracker with ``config``'s backend, for frames shrunk ``scale`` times (source px
    per analysis px): what generation's pose tracks and driving videos use."""
    return FaceTracker(new_scanner(config),
                       landmarker or load_face_landmarker(config), config.detector,
                       config.detector.min_face_px / max(scale, 1e-6))
