"""Average keypoint distance (AKD) as the video-driven literature defines it (Siarohin et al.,
FOMM, 2019, section 4; GAIA tables 2 and 7): one detector runs on the real frame and on the
generated one, and each frame scores the differences of the two detections' keypoints. Both
sides come from the same detector, so its bias cancels; its noise does not, and the metric's
floor is the detector's noise, not zero.

``akd`` is FOMM's definition, the one the tables print: FOMM's pose-evaluation averages the
absolute coordinate differences, ``mean |a - b|`` over every keypoint and both coordinates,
per frame, then over all scored frames. ``akd_euclidean`` is the mean Euclidean distance per
keypoint, kept beside it and labelled: for isotropic Gaussian errors it reads pi/2, about 1.57
times FOMM's (a Rayleigh variable's mean, s*sqrt(pi/2), over a half-normal's, s*sqrt(2/pi)).

The detector is passed in (``LandmarkFn``: uint8 ``(S, S, 3)`` RGB -> ``(68, 2)`` or None);
frames where it finds no face on either side are counted, not scored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

LandmarkFn = Callable[[np.ndarray], "np.ndarray | None"]


def _pair(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"keypoints must be two (K, 2) sets of one shape, got {a.shape} and "
                         f"{b.shape}")
    return a - b


def akd_fomm(a: np.ndarray, b: np.ndarray) -> float:
    """FOMM's per-frame AKD: the mean absolute coordinate difference of two ``(K, 2)`` sets."""
    return float(np.abs(_pair(a, b)).mean())


def akd_euclidean(a: np.ndarray, b: np.ndarray) -> float:
    """The mean Euclidean distance between two ``(K, 2)`` keypoint sets, in their pixels."""
    return float(np.linalg.norm(_pair(a, b), axis=1).mean())


def describe_detector(detector: LandmarkFn | None) -> str | None:
    """The detector's name for the report: ``evaluation.cli`` passes
    ``generation.reenact.CropLandmarks`` (a face box, then 68 landmarks, on the frame enlarged
    to its ``work_size``); any other callable is named by its class or function."""
    if detector is None:
        return None
    landmarker = getattr(detector, "landmarker", None)
    if landmarker is not None:
        size = getattr(detector, "work_size", None)
        names = {"DlibLandmarker": "dlib's 68-point shape predictor",
                 "FaceDetector": "dlib's HOG face boxes"}
        points, boxes = (names.get(type(part).__name__, type(part).__name__)
                         for part in (landmarker, getattr(detector, "detector", None)))
        at = f", on the frame enlarged to {size} px" if size else ""
        return f"{points} in {boxes}{at}"
    return getattr(detector, "__name__", type(detector).__name__)


@dataclass
class KeypointScore:
    """AKD over frames: per-frame scores where both detections exist (FOMM's and the
    Euclidean), misses counted by side."""

    detector: LandmarkFn
    distances: list[float] = field(default_factory=list)  # FOMM's, per frame
    euclidean: list[float] = field(default_factory=list)
    missed_real: int = 0
    missed_generated: int = 0

    def add_detections(self, found_real: np.ndarray | None, generated: np.ndarray
                       ) -> np.ndarray | None:
        """Score one generated frame (uint8 RGB) against the real frame's detection (found
        once by the caller, who may reuse it); returns the generated frame's detection (or
        None) so callers can keep the track for MSI."""
        found = self.detector(generated)
        if found_real is None:
            self.missed_real += 1
        if found is None:
            self.missed_generated += 1
        if found_real is not None and found is not None:
            self.distances.append(akd_fomm(found_real, found))
            self.euclidean.append(akd_euclidean(found_real, found))
        return found

    def report(self) -> dict:
        def mean(values: list[float]) -> float | None:
            return float(np.mean(values)) if values else None

        return {"akd": mean(self.distances), "akd_euclidean": mean(self.euclidean),
                "akd_frames": len(self.distances), "akd_missed_real": self.missed_real,
                "akd_missed_generated": self.missed_generated}
