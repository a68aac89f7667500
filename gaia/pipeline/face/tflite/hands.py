"""Hands near a face: MediaPipe's palm detector, then its 21-point hand landmarks.

Paper, appendix A.1 drops frames where a hand covers the mouth. The chroma measure
(``pipeline.face.occlusion``) misses a hand of the face's own skin colour, so hands are found
directly, with the two models of MediaPipe's hand tracking (lite variants, one CPU thread each):

- palm detection (192 px square input, 2016 SSD anchors): a palm box and 7 keypoints (wrist,
  the index, middle, ring and little fingers' bases, two on the thumb). A palm rather than a
  whole hand, because a palm is near-rigid and square, where a hand's outline is not.
- hand landmarks (224 px square input): 21 points of the hand in a crop turned so the fingers
  point up, a hand-presence score and handedness.

``find`` runs both on the square around the face the caller gives (a hand covering the mouth is
inside it; hands elsewhere in the frame do not matter to the filter). ``track`` skips the palm
detector: the next frame's crop is placed from the previous frame's landmarks, as MediaPipe does
between detections, and the presence score says when the hand has gone.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from gaia.pipeline.face.tflite.anchors import (
    AnchorSpec,
    anchor_centres,
    decode,
    sigmoid,
    weighted_nms,
)
from gaia.pipeline.face.tflite.crop import RotatedCrop, angle_to_horizontal
from gaia.pipeline.face.tflite.model_files import HAND, PALM, TFLiteModel

PALM_SPEC = AnchorSpec(192, (8, 16, 16, 16))  # palm_detection_lite: 2016 anchors

# The crop turn that makes wrist -> fingers point up. MediaPipe states it as 90 degrees with
# y pointing up; in image coordinates (y down) "up" is -90 degrees from the x axis.
FINGERS_UP = -np.pi / 2

# MediaPipe's hand-tracking graph: the palm box grown into a crop holding the whole hand
# (fingers reach about 1.5 palm sides beyond the palm), and the tighter crop placed from the
# previous frame's landmarks, which already span the fingers.
PALM_CROP_SCALE = 2.6
PALM_CROP_SHIFT = -0.5
TRACK_CROP_SCALE = 2.0
TRACK_CROP_SHIFT = -0.1

# Landmarks that place the tracking crop: wrist and the bases and first joints of the fingers.
# Fingertips are left out: they move most between frames and are the least accurate.
TRACK_POINTS = [0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18]
WRIST, INDEX_BASE, MIDDLE_BASE, RING_BASE = 0, 5, 9, 13


@dataclass(frozen=True)
class Hand:
    """One hand: ``points`` (21, 2) float32 image pixels in MediaPipe's order (0 wrist, 4 thumb
    tip, 8 index tip, 12 middle tip, 16 ring tip, 20 little-finger tip), ``presence`` the
    landmark model's hand-presence score in [0, 1], ``palm_score`` the palm detection's
    score the hand was first found with (kept along a track)."""

    points: np.ndarray
    presence: float
    palm_score: float


@dataclass(frozen=True)
class HandConfig:
    """min_palm_score: palm detections under this are dropped (MediaPipe's 0.5).
    nms_iou: palm detections overlapping more than this are one palm (MediaPipe's 0.3).
    min_presence: hands whose landmark model's presence is under this are dropped, on finding
        and on tracking (MediaPipe's 0.5): the palm detector fires on some faces and hair, the
        landmark model then says "no hand".
    same_hand_iou: two found hands whose landmark boxes overlap more than this are one hand
        (two palm detections of one hand that NMS kept apart).
    """

    min_palm_score: float = 0.5
    nms_iou: float = 0.3
    min_presence: float = 0.5
    same_hand_iou: float = 0.5


class HandFinder:
    """Palm detection and hand landmarks, each on ``threads`` CPU threads."""

    def __init__(self, threads: int = 1, config: HandConfig | None = None) -> None:
        self.config = config or HandConfig()
        self._palm = TFLiteModel(PALM, threads)
        self._hand = TFLiteModel(HAND, threads)
        self._centres = anchor_centres(PALM_SPEC)
        self._palm_size = self._palm.input_size[0]
        self._hand_size = self._hand.input_size[0]

    def palms(self, rgb: np.ndarray, region: np.ndarray) -> list[tuple[RotatedCrop, float]]:
        """The hand crops (in image pixels) of the palms found in ``region`` (x0, y0, x1, y1
        image pixels), with their palm scores, best first."""
        x0, y0, x1, y1 = (float(v) for v in region)
        side = max(x1 - x0, y1 - y0, 1.0)
        left, top = (x0 + x1 - side) / 2, (y0 + y1 - side) / 2
        batch = self._square(rgb, left, top, side)
        raw, logits = self._palm_outputs(self._palm(batch[None]))
        # Most frames have no palm near the face: check the best anchor first (with decode's
        # own sigmoid) and skip decoding and NMS then. Also keeps an empty selection away from
        # ``decode``, whose keypoint reshape failed on one before anchors.py was fixed.
        best = float(sigmoid(logits.max()))
        if best < self.config.min_palm_score:
            return []
        boxes, keypoints, scores = decode(raw, logits, self._centres, self._palm_size,
                                          self.config.min_palm_score)
        boxes, keypoints, scores = weighted_nms(boxes, keypoints, scores, self.config.nms_iou)
        found = []
        for box, points, score in zip(boxes, keypoints, scores, strict=True):
            box_px = box * side + np.array([left, top, left, top])
            points_px = points * side + np.array([left, top])
            found.append((_palm_crop(box_px, points_px), float(score)))
        return found

    def landmarks(self, rgb: np.ndarray, crop: RotatedCrop) -> tuple[np.ndarray, float]:
        """The 21 hand points (image pixels) the landmark model fits in ``crop``, and its
        presence score."""
        size = self._hand_size
        batch = crop.cut(rgb, size).astype(np.float32) * (1.0 / 255.0)
        outputs = self._hand(batch[None])
        # Outputs: screen landmarks (1, 63), presence (1, 1), handedness (1, 1), world
        # landmarks (1, 63, metres). The two (1, 63) differ by scale: the screen ones are
        # crop pixels (tens to hundreds), the world ones a few centimetres.
        wide = [o for o in outputs if o.size == 63]
        screen = max(wide, key=lambda o: float(np.abs(o).max()))
        presence = float(np.asarray(outputs[1]).reshape(-1)[0])
        points = crop.to_image(screen.reshape(21, 3)[:, :2], size)
        return points, presence

    def find(self, rgb: np.ndarray, region: np.ndarray) -> list[Hand]:
        """Hands in ``region`` (x0, y0, x1, y1 image pixels, e.g. a square about 3x the face)
        whose presence is at least ``config.min_presence``, most present first."""
        hands = []
        for crop, palm_score in self.palms(rgb, region):
            points, presence = self.landmarks(rgb, crop)
            if presence >= self.config.min_presence:
                hands.append(Hand(points, presence, palm_score))
        hands.sort(key=lambda h: -h.presence)
        kept: list[Hand] = []
        for hand in hands:
            if all(_box_iou(hand.points, other.points) <= self.config.same_hand_iou
                   for other in kept):
                kept.append(hand)
        return kept

    def track(self, rgb: np.ndarray, previous: Hand) -> Hand | None:
        """``previous`` re-fitted in ``rgb`` from a crop placed on its landmarks (no palm
        detection), or None when the presence falls under ``config.min_presence``."""
        points, presence = self.landmarks(rgb, track_crop(previous.points))
        if presence < self.config.min_presence:
            return None
        return Hand(points, presence, previous.palm_score)

    def _square(self, rgb: np.ndarray, left: float, top: float, side: float) -> np.ndarray:
        """The ``side`` square at (left, top) of ``rgb`` as the palm model's float input:
        the part inside the image resized once (area filter: the square is usually shrunk
        2-3x, and a linear warp would alias), the rest black (MediaPipe's letterbox)."""
        size = self._palm_size
        scale = size / side
        height, width = rgb.shape[:2]
        ix0, iy0 = max(int(np.floor(left)), 0), max(int(np.floor(top)), 0)
        ix1 = min(int(np.ceil(left + side)), width)
        iy1 = min(int(np.ceil(top + side)), height)
        canvas = np.zeros((size, size, 3), np.float32)
        if ix1 <= ix0 or iy1 <= iy0:
            return canvas
        ox, oy = max(round((ix0 - left) * scale), 0), max(round((iy0 - top) * scale), 0)
        w = min(max(round((ix1 - ix0) * scale), 1), size - ox)
        h = min(max(round((iy1 - iy0) * scale), 1), size - oy)
        if w <= 0 or h <= 0:
            return canvas
        shrink = scale < 1.0
        patch = cv2.resize(rgb[iy0:iy1, ix0:ix1], (w, h),
                           interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        # The palm model takes [0, 1] (with [-1, 1] no anchor scores above 1e-9 on real hands).
        canvas[oy:oy + h, ox:ox + w] = patch.astype(np.float32) * (1.0 / 255.0)
        return canvas

    @staticmethod
    def _palm_outputs(outputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(regressors (2016, 18), score logits (2016,)), told apart by their widths."""
        by_width = sorted(outputs, key=lambda o: o.shape[-1])
        return by_width[1].reshape(-1, 18), by_width[0].reshape(-1)


def _palm_crop(box: np.ndarray, keypoints: np.ndarray) -> RotatedCrop:
    """The hand crop of one palm (box x0, y0, x1, y1 and 7 keypoints, image pixels).

    As MediaPipe: the palm box turned so wrist (keypoint 0) -> middle-finger base (keypoint 2)
    points up, moved half its height towards the fingers, made square on its longer side and
    grown 2.6x. The box itself is the axis-aligned one the detector gives, not re-fitted to
    the turn: that is what the landmark model was trained with.
    """
    angle = angle_to_horizontal(keypoints[0], keypoints[2], FINGERS_UP)
    width, height = float(box[2] - box[0]), float(box[3] - box[1])
    cx, cy = float(box[0] + box[2]) / 2, float(box[1] + box[3]) / 2
    # The crop's y axis in the image is (-sin, cos); the shift is along it, in box heights.
    shift = PALM_CROP_SHIFT * height
    cx -= np.sin(angle) * shift
    cy += np.cos(angle) * shift
    return RotatedCrop(cx, cy, max(width, height) * PALM_CROP_SCALE, angle)


def track_crop(points: np.ndarray) -> RotatedCrop:
    """The landmark-model crop for the next frame, from one frame's 21 hand points.

    As MediaPipe: turned so the wrist -> the middle of the index, middle and ring fingers'
    bases points up, around the palm and finger-base points, 2x their extent.
    """
    points = np.asarray(points, np.float64)
    knuckles = ((points[INDEX_BASE] + points[RING_BASE]) / 2 + points[MIDDLE_BASE]) / 2
    angle = angle_to_horizontal(points[WRIST], knuckles, FINGERS_UP)
    return RotatedCrop.around(points[TRACK_POINTS], angle, TRACK_CROP_SCALE, TRACK_CROP_SHIFT)


def _box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Overlap of the axis-aligned boxes around two point sets."""
    a0, a1 = a.min(axis=0), a.max(axis=0)
    b0, b1 = b.min(axis=0), b.max(axis=0)
    inter = np.prod(np.clip(np.minimum(a1, b1) - np.maximum(a0, b0), 0, None))
    union = np.prod(a1 - a0) + np.prod(b1 - b0) - inter
    return float(inter / max(union, 1e-9))
