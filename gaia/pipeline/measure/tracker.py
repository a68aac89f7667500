"""Following the main face through a video: scans, re-detection around it, landmark tracking.

Paper, appendix A.1 needs the face count and the main face's landmarks in every frame. Running
the detector everywhere would cost more than the decode, so three things alternate:

- a full scan (``FaceScanner.scan``, sized to the face) every ``scan_every`` frames, after a
  shot cut and whenever the track is lost: it counts the faces and finds new ones;
- every ``detect_every`` frames, the detector around the tracked face only (``roi``): the box
  reported there is the detector's own, not one derived from landmarks;
- in between, landmarks refitted inside the previous frame's box (lost when the box jumps or
  changes size more than a head can in one frame).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from gaia.pipeline.face.detect import DetectorConfig, box_from_landmarks, track_lost
from gaia.pipeline.face.landmarks import Landmarker
from gaia.pipeline.face.scan import FaceScanner

# dlib's predictor returns whole pixels of the image it runs on: a 60 px face fitted at its own
# size is quantised to 1/60 of its width, which is most of the jitter threshold. Faces smaller
# than this are fitted on an enlarged crop, so their landmarks are sub-pixel.
FIT_SIDE_PX = 160.0


@dataclass(frozen=True)
class FaceFix:
    """The main face in one frame: 68 landmarks, a detector-like box (the detector's own on
    ``detected`` frames), and whether a scan (a full-frame search) ran on this frame."""

    points: np.ndarray
    box: np.ndarray
    detected: bool
    scanned: bool


class FaceTracker:
    """Stateful over the frames of one video (see the module docstring)."""

    def __init__(self, scanner: FaceScanner, landmarker: Landmarker, config: DetectorConfig,
                 min_face_px: float, find_max_pixels: int | None = None) -> None:
        """``find_max_pixels``: the larger scan budget used, every ``scan_every`` frames while
        no face is tracked, to find a small face in a large frame (the periodic scans of a
        tracked face keep the scanner's own budget: the face itself is followed by ``roi``)."""
        self.find_max_pixels = find_max_pixels
        self.scanner = scanner
        self.landmarker = landmarker
        self.config = config
        self.min_face_px = min_face_px
        self.num_faces = 0
        self._since_scan = config.scan_every
        self._since_detect = config.detect_every
        self._landmark_box: np.ndarray | None = None
        # The detector's box relative to the landmark box (offsets / landmark-box size), measured
        # at each detection: tracking feeds the landmarker boxes of the shape it was trained on.
        self._offset = np.zeros(4, np.float32)

    def step(self, rgb: np.ndarray, gray: np.ndarray, cut: bool = False) -> FaceFix | None:
        """The main face in this frame, or None. ``cut``: a shot cut was seen here (re-scan)."""
        image = gray if self.landmarker.wants_gray else rgb
        self._since_scan += 1
        self._since_detect += 1
        if self._landmark_box is None:
            if self._since_scan > self.config.scan_every or cut:
                return self._scan(rgb, image, self.find_max_pixels)
            if self._since_detect > self.config.detect_every:
                return self._scan(rgb, image)
            return None
        if cut or self._since_scan > self.config.scan_every:
            return self._scan(rgb, image)
        predicted = self._predicted_box()
        if self._since_detect > self.config.detect_every:
            boxes, _ = self.scanner.roi(rgb, predicted)
            if not len(boxes):
                return self._scan(rgb, image)
            return self._fix(image, boxes[self._nearest(boxes)], scanned=False)
        points = self._fit(image, predicted)
        box = box_from_landmarks(points)
        if track_lost(self._landmark_box, box, self.config):
            return self._scan(rgb, image)
        self._landmark_box = box
        return FaceFix(points, self._predicted_box(), detected=False, scanned=False)

    def _scan(self, rgb: np.ndarray, image: np.ndarray, max_pixels: int | None = None
              ) -> FaceFix | None:
        self._since_scan = 1
        boxes, _ = self.scanner.scan(rgb, self.min_face_px, max_pixels)
        self.num_faces = len(boxes)
        if not len(boxes):
            self._since_detect = 1
            self._landmark_box = None
            return None
        return self._fix(image, boxes[self._nearest(boxes)], scanned=True)

    def _fix(self, image: np.ndarray, chosen: np.ndarray, scanned: bool) -> FaceFix:
        self._since_detect = 1
        points = self._fit(image, chosen)
        box = box_from_landmarks(points)
        side = max(float(box[2] - box[0]), 1.0)
        self._offset = (chosen - box) / side
        self._landmark_box = box
        return FaceFix(points, np.asarray(chosen, np.float32), detected=True, scanned=scanned)

    def _predicted_box(self) -> np.ndarray:
        side = float(self._landmark_box[2] - self._landmark_box[0])
        return (self._landmark_box + self._offset * side).astype(np.float32)

    def _nearest(self, boxes: np.ndarray) -> int:
        """The detection that continues the current track, else the largest face."""
        if self._landmark_box is None:
            return 0
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        mine = (self._landmark_box[:2] + self._landmark_box[2:]) / 2
        nearest = int(np.argmin(np.linalg.norm(centres - mine, axis=1)))
        size = boxes[nearest, 2] - boxes[nearest, 0]
        return nearest if np.linalg.norm(centres[nearest] - mine) < 0.5 * size else 0

    def _fit(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        side = float(box[2] - box[0])
        if not self.landmarker.wants_gray or side >= FIT_SIDE_PX or side <= 0:
            return self.landmarker(image, box)
        return fit_enlarged(self.landmarker, image, box, FIT_SIDE_PX / side)


def fit_enlarged(landmarker: Landmarker, image: np.ndarray, box: np.ndarray, scale: float
                 ) -> np.ndarray:
    """Landmarks fitted on a crop around ``box`` enlarged ``scale`` times, in ``image`` pixels."""
    side = float(box[2] - box[0])
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half = side  # the crop is twice the box: room for the jaw and the tracker's drift
    x0, y0 = int(np.floor(cx - half)), int(np.floor(cy - half))
    x1, y1 = int(np.ceil(cx + half)), int(np.ceil(cy + half))
    height, width = image.shape[:2]
    pad = ((max(0, -y0), max(0, y1 - height)), (max(0, -x0), max(0, x1 - width)))
    crop = image[max(0, y0):min(height, y1), max(0, x0):min(width, x1)]
    if any(p for pair in pad for p in pair):
        crop = np.pad(crop, pad + ((0, 0),) * (crop.ndim - 2), mode="edge")
    big = cv2.resize(crop, (round(crop.shape[1] * scale), round(crop.shape[0] * scale)),
                     interpolation=cv2.INTER_LINEAR)
    local = (np.asarray(box, np.float64) - [x0, y0, x0, y0]) * scale
    points = landmarker(np.ascontiguousarray(big), local.astype(np.float32))
    # A pixel's centre is at +0.5 in both images: map centres, not corners.
    return ((points + 0.5) / scale - 0.5 + np.array([x0, y0], np.float32)).astype(np.float32)
