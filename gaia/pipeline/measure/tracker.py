"""Following the main face through a video: scans, re-detection around it, landmark tracking.

Paper, appendix A.1 needs the face count and the main face's landmarks in every frame. Running
the detector everywhere would cost more than the decode, so three things alternate:

- a full scan (``FaceScanner.scan``, sized to the face) every ``scan_every`` frames, after a
  shot cut and whenever the track is lost: it counts the faces and finds new ones;
- every ``detect_every`` frames, the detector around the tracked face only (``roi``): the box
  reported there is the detector's own, not one derived from landmarks;
- in between, landmarks refitted inside the box held from earlier frames (lost when the fit
  jumps or changes size more than a head can in one frame).

Stable landmarks: the box (and, for the face mesh, the roll) the landmarks are fitted in is
held still while the face's landmark box stays within ``hold_shift`` of it, and moved to it
only past that. Re-deriving the box from every frame's fit (or from every detection) fed the
fit's own noise into the next frame's box: on a still photograph encoded to H.264 landmarks
moved 0.019 of the inter-ocular distance per frame. A moving face still moves its landmarks (the
fit follows the face inside a held box) and drags the box along once it has moved far enough.

Each track has an id (``FaceFix.track``): a new one starts whenever a scan picks a face that
does not continue the current track (after a cut, a lost track, or no face), so the measures
say which face they were taken on.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from gaia.pipeline.face.detect import DetectorConfig, box_from_landmarks, track_lost
from gaia.pipeline.face.landmarks import Landmarker
from gaia.pipeline.face.scan import FaceScanner
from gaia.pipeline.face.tflite.crop import angle_to_horizontal

# dlib's predictor returns whole pixels of the image it runs on: a 60 px face fitted at its own
# size is quantised to 1/60 of its width, which is most of the jitter threshold. Faces smaller
# than this are fitted on an enlarged crop, so their landmarks are sub-pixel.
FIT_SIDE_PX = 160.0
DETECTION_AGREES = 0.2  # box shift under which a re-detection keeps the held fitting box


@dataclass(frozen=True)
class FaceFix:
    """The main face in one frame: 68 landmarks, a detector-like box (the detector's own on
    ``detected`` frames), whether a scan (a full-frame search) ran on this frame, and the id
    of the face track it belongs to."""

    points: np.ndarray
    box: np.ndarray
    detected: bool
    scanned: bool
    track: int = 0


def eye_line_angle(points: np.ndarray) -> float:
    """Roll of the eye line of 68 landmarks, radians (0: level; the face-mesh crop's turn)."""
    return angle_to_horizontal(points[36:42].mean(axis=0), points[42:48].mean(axis=0))


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
        self.track = -1
        self._since_scan = config.scan_every
        self._since_detect = config.detect_every
        self._landmark_box: np.ndarray | None = None
        # The detector's box relative to the landmark box (offsets / landmark-box size), taken
        # when a track starts: tracking feeds the landmarker boxes of the shape it was trained on.
        self._offset = np.zeros(4, np.float32)
        # The same, held from the track's start: where the held fitting box aims (the reported
        # box follows each detection; the fitting box must not, or it would move with it).
        self._fit_offset = np.zeros(4, np.float32)
        self._fit_box = np.zeros(4, np.float32)  # held box the landmarks are fitted in
        self._angle = 0.0  # held roll of the fit (radians)

    def step(self, rgb: np.ndarray, gray: np.ndarray, cut: bool = False) -> FaceFix | None:
        """The main face in this frame, or None. ``cut``: a shot cut was seen here (re-scan)."""
        image = gray if self.landmarker.wants_gray else rgb
        self._since_scan += 1
        self._since_detect += 1
        if self._landmark_box is None:
            if self._since_scan > self.config.scan_every or cut:
                return self._scan(rgb, image, self.find_max_pixels, new=True)
            if self._since_detect > self.config.detect_every:
                return self._scan(rgb, image, new=True)
            return None
        if cut or self._since_scan > self.config.scan_every:
            return self._scan(rgb, image, new=cut)
        if self._since_detect > self.config.detect_every:
            boxes, _ = self.scanner.roi(rgb, self._predicted_box())
            if not len(boxes):
                return self._scan(rgb, image, new=False)
            return self._fix(image, boxes[self._nearest(boxes)], scanned=False, new=False)
        points = self._fit(image, self._fit_box)
        box = box_from_landmarks(points)
        if track_lost(self._landmark_box, box, self.config):
            return self._scan(rgb, image, new=False)
        self._follow(box, points)
        return FaceFix(points, self._predicted_box(), detected=False, scanned=False,
                       track=self.track)

    def forget(self) -> None:
        """Drop the current track (a frame a model refused): the next frame scans afresh."""
        self._landmark_box = None
        self._since_scan = self.config.scan_every

    def _scan(self, rgb: np.ndarray, image: np.ndarray, max_pixels: int | None = None,
              new: bool = False) -> FaceFix | None:
        self._since_scan = 1
        boxes, _ = self.scanner.scan(rgb, self.min_face_px, max_pixels)
        self.num_faces = len(boxes)
        if not len(boxes):
            self._since_detect = 1
            self._landmark_box = None
            return None
        index = 0 if new else self._nearest(boxes)
        continues = self._landmark_box is not None and not new and self._continues(boxes, index)
        return self._fix(image, boxes[index], scanned=True, new=not continues)

    def _fix(self, image: np.ndarray, chosen: np.ndarray, scanned: bool, new: bool
             ) -> FaceFix:
        """A detection of the face: refit from the detector's box when the track starts, or
        when the detection disagrees with the held box by more than the hold allows."""
        self._since_detect = 1
        chosen = np.asarray(chosen, np.float32)
        # Detector boxes of one face differ by about 0.1 of its size from scan to scan (HOG's
        # pyramid step), so a detection confirms the held box unless it is well away from it.
        agrees = not new and _box_shift(self._fit_box, chosen) <= DETECTION_AGREES
        if agrees:
            points = self._fit(image, self._fit_box)
        else:
            points = self._fit(image, chosen, angle=0.0)
            angle = eye_line_angle(points)
            if abs(angle) > np.radians(self.config.hold_angle_deg):
                points = self._fit(image, chosen, angle=angle)  # turned faces: fit upright
            self._angle = eye_line_angle(points)
            self._fit_box = chosen
        box = box_from_landmarks(points)
        side = max(float(box[2] - box[0]), 1.0)
        self._offset = (chosen - box) / side
        if new:
            self.track += 1
            self._fit_offset = self._offset
        self._landmark_box = box
        return FaceFix(points, chosen, detected=True, scanned=scanned, track=self.track)

    def _follow(self, box: np.ndarray, points: np.ndarray) -> None:
        """Move the held fitting box (and roll) to the face only once it has moved past the
        hold (see the module docstring)."""
        self._landmark_box = box
        side = float(box[2] - box[0])
        target = (box + self._fit_offset * side).astype(np.float32)
        angle = eye_line_angle(points)
        if (_box_shift(self._fit_box, target) > self.config.hold_shift
                or abs(angle - self._angle) > np.radians(self.config.hold_angle_deg)):
            self._fit_box, self._angle = target, angle

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
        return nearest if self._continues(boxes, nearest) else 0

    def _continues(self, boxes: np.ndarray, index: int) -> bool:
        centre = (boxes[index, :2] + boxes[index, 2:]) / 2
        mine = (self._landmark_box[:2] + self._landmark_box[2:]) / 2
        return bool(np.linalg.norm(centre - mine) < 0.5 * (boxes[index, 2] - boxes[index, 0]))

    def _fit(self, image: np.ndarray, box: np.ndarray, angle: float | None = None
             ) -> np.ndarray:
        angle = self._angle if angle is None else angle
        side = float(box[2] - box[0])
        if not self.landmarker.wants_gray or side >= FIT_SIDE_PX or side <= 0:
            return self.landmarker(image, box, angle)
        return fit_enlarged(self.landmarker, image, box, FIT_SIDE_PX / side, angle)


def _box_shift(held: np.ndarray, box: np.ndarray) -> float:
    """How far ``box`` is from ``held``: the larger of the centre shift and the size change,
    as a fraction of ``held``'s size."""
    side = max(float(held[2] - held[0]), 1.0)
    shift = float(np.hypot((box[0] + box[2] - held[0] - held[2]) / 2,
                           (box[1] + box[3] - held[1] - held[3]) / 2))
    return max(shift, abs(float(box[2] - box[0]) - side)) / side


def fit_enlarged(landmarker: Landmarker, image: np.ndarray, box: np.ndarray, scale: float,
                 angle: float = 0.0) -> np.ndarray:
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
    points = landmarker(np.ascontiguousarray(big), local.astype(np.float32), angle)
    # A pixel's centre is at +0.5 in both images: map centres, not corners.
    return ((points + 0.5) / scale - 0.5 + np.array([x0, y0], np.float32)).astype(np.float32)
