"""The models one measure worker loads once and reuses for every video.

The face backend (``MeasureConfig.backend``) is ``dlib``: HOG detection and dlib's 68-point
predictor (both ship in wheels); ``landmarks`` may swap the landmark model (``fan``). Any
sliding-window detector with the ``BaseDetector`` shape (``pipeline.face.scan``) plugs in here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gaia.pipeline.face.landmarks import Landmarker, load_landmarker
from gaia.pipeline.face.scan import BaseDetector, FaceScanner
from gaia.pipeline.measure.config import MeasureConfig
from gaia.pipeline.measure.tracker import FaceTracker
from gaia.pipeline.media.shot_cut import CutDetector
from gaia.pipeline.speech.vad import SpeechDetector


@dataclass
class Models:
    """What measuring a video needs, loaded once per worker."""

    scanner: FaceScanner
    landmarker: Landmarker
    speech: SpeechDetector
    embedder: Callable[[np.ndarray, np.ndarray], np.ndarray] | None
    identity_max_distance: float
    cut_threshold: float

    def new_cut_detector(self) -> CutDetector:
        return CutDetector(threshold=self.cut_threshold)

    @classmethod
    def load(cls, config: MeasureConfig) -> Models:
        embedder = None
        if config.identity:
            from gaia.pipeline.face.identity import FaceEmbedder

            embedder = FaceEmbedder()
        return cls(
            scanner=FaceScanner(load_detector(config)),
            landmarker=load_face_landmarker(config),
            speech=SpeechDetector(),
            embedder=embedder,
            identity_max_distance=config.identity_max_distance,
            cut_threshold=config.cut_threshold,
        )


def load_detector(config: MeasureConfig) -> BaseDetector:
    """The backend's face detector, as a ``BaseDetector`` for ``FaceScanner``."""
    from gaia.pipeline.face.detect import FaceDetector

    return FaceDetector(config.detector)


def load_face_landmarker(config: MeasureConfig) -> Landmarker:
    return load_landmarker(config.landmark_model)


def new_tracker(config: MeasureConfig, scale: float = 1.0,
                landmarker: Landmarker | None = None) -> FaceTracker:
    """A face tracker with ``config``'s backend, for frames shrunk ``scale`` times (source px
    per analysis px): what generation's pose tracks and driving videos use."""
    return FaceTracker(FaceScanner(load_detector(config)),
                       landmarker or load_face_landmarker(config), config.detector,
                       config.detector.min_face_px / max(scale, 1e-6))
