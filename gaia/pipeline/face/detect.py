"""Face detection (dlib HOG) and tracking between detections.

Paper, appendix A.1: every frame needs the face count and the main face's box. Running the
detector on every frame would cost more than the decode, so we detect every ``k`` frames and
track in between by re-fitting landmarks inside the previous frame's landmark box; the track is
"lost" (and the detector runs again at once) when the fitted box jumps or changes size more than
a real head can between two frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class DetectorConfig:
    """How faces are found.

    detect_every: run the detector every k frames and track in between (1 = every frame).
    detect_max_side: frames are shrunk so their longer side is at most this before HOG runs;
        faces in talking-head video are large, and HOG's cost grows with the pixel count.
    detect_min_side: smaller frames are enlarged to this (at most 3x): HOG misses faces under
        about 80 px, which low-resolution video has.
    upsample: dlib's upsampling passes (each finds faces half as small, at 4x the cost).
    confident_score: HOG scores (dlib's threshold is 0) of real faces run from about 0 for
        a small blurred face to 2 for a clear frontal one; false positives on textured
        backgrounds stay near 0. So the faces counted are those scoring at least this, or, when
        none does, the single best-scoring detection.
    lost_shift: a tracked box whose centre moves more than this fraction of its size between
        two frames is lost.
    lost_scale: ... or whose size changes by more than this factor.
    scan_every: frames between full-frame scans (which count the faces and find new ones);
        between them the detector runs every ``detect_every`` frames around the tracked face
        only (``pipeline.face.scan``), at that face's size.
    min_face_px: smallest face looked for, in pixels of the source video: faces at ordinary
        framing are 8-15 % of the frame width (100-600 px from 720p to 4K); 48 keeps a
        64 px face of a 4K frame in reach.
    hold_shift: the box the landmarks are fitted in is held still until the face's own
        landmark box has moved (or grown) by more than this fraction of its size. A box
        re-derived from each frame's fit feeds the fit's noise back into the next frame: on a
        still face that loop, not the face, moved the landmarks (``pipeline.measure.tracker``).
    hold_angle_deg: ... or the eye line has turned by more than this (the face-mesh crop is
        turned upright by it).
    """

    detect_every: int = 5
    detect_max_side: int = 480
    detect_min_side: int = 400
    upsample: int = 0
    confident_score: float = 0.3
    lost_shift: float = 0.35
    lost_scale: float = 1.3
    scan_every: int = 25
    min_face_px: float = 48.0
    hold_shift: float = 0.04
    hold_angle_deg: float = 4.0


class FaceDetector:
    """dlib's HOG frontal face detector on a shrunk grayscale copy of the frame.

    Called with a grayscale frame, it shrinks it to ``detect_max_side`` first (portraits and
    close-ups); ``detect`` runs on the image as given, for ``pipeline.face.scan``, which sizes
    the image to the face.
    """

    native_min_px = 80.0  # HOG's window: the smallest face it finds, in the image's pixels

    def __init__(self, config: DetectorConfig | None = None) -> None:
        import dlib

        self.config = config or DetectorConfig()
        self._detector = dlib.get_frontal_face_detector()

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Boxes ``(n, 4)`` and HOG scores of the confident faces in ``image`` (RGB or gray)."""
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
        found, scores, _ = self._detector.run(np.ascontiguousarray(gray), self.config.upsample,
                                              0.0)
        boxes = np.array(
            [(r.left(), r.top(), r.right(), r.bottom()) for r in found], dtype=np.float32
        ).reshape(-1, 4)
        scores = np.asarray(scores, np.float32).reshape(-1)
        confident = scores >= self.config.confident_score
        if len(scores) and not confident.any():
            confident = scores == scores.max()
        return boxes[confident], scores[confident]

    def __call__(self, gray: np.ndarray) -> np.ndarray:
        """Boxes ``(n, 4)`` as float32 ``x0, y0, x1, y1`` in the frame's pixels, largest first.

        ``gray`` is the frame in grayscale (HOG ignores colour).
        """
        height, width = gray.shape[:2]
        longer = max(height, width)
        scale = 1.0
        if longer > self.config.detect_max_side:
            scale = self.config.detect_max_side / longer
        elif longer < self.config.detect_min_side:
            scale = min(3.0, self.config.detect_min_side / longer)
        if scale != 1.0:
            interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
            gray = cv2.resize(
                gray, (round(width * scale), round(height * scale)), interpolation=interpolation
            )
        boxes = self.detect(gray)[0] / scale
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        return boxes[np.argsort(-areas, kind="stable")]


def box_from_landmarks(points: np.ndarray) -> np.ndarray:
    """A detector-like square box around 68 landmarks, for tracking into the next frame.

    dlib's HOG boxes run from the brows to the chin and tightly across the cheeks; the landmark
    hull (jaw and brows) is about that, so a square on the hull's centre is a good prior.
    """
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    side = max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], np.float32)


def track_lost(previous: np.ndarray, current: np.ndarray, config: DetectorConfig) -> bool:
    """Whether ``current`` is too far from ``previous`` to be the same head one frame later."""
    size_prev = max(float(previous[2] - previous[0]), 1.0)
    size_cur = max(float(current[2] - current[0]), 1.0)
    shift = np.hypot(
        (current[0] + current[2] - previous[0] - previous[2]) / 2,
        (current[1] + current[3] - previous[1] - previous[3]) / 2,
    )
    ratio = max(size_cur / size_prev, size_prev / size_cur)
    return bool(shift > config.lost_shift * size_prev or ratio > config.lost_scale)


def primary_face_landmarks(rgb: np.ndarray, landmarker=None) -> np.ndarray | None:
    """68 landmarks of the largest face in one RGB image, or None when there is no face.

    For still images (demo sample, portraits); videos go through the tracker in
    ``pipeline.measure.video``.
    """
    from gaia.pipeline.face.landmarks import DlibLandmarker

    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    boxes = FaceDetector(DetectorConfig(detect_max_side=max(rgb.shape[:2])))(gray)
    if len(boxes) == 0:
        return None
    landmarker = landmarker or DlibLandmarker()
    return landmarker(gray if landmarker.wants_gray else rgb, boxes[0])
