"""Hand over the mouth: the share of the lower face that found hands cover.

Paper, appendix A.1 drops frames where a hand covers the mouth. The chroma measure
(``pipeline.face.occlusion``) sees a mask, whose colour is not skin, but not a hand, whose colour
is. Here the hands come from MediaPipe's hand landmarks (``tflite.hands``) and the measure is
geometric: the lower face as a polygon, each hand as the convex hull of its 21 points grown by
about a finger's width (the points lie on the fingers' middle lines, so the hull alone falls
short of the hand's outline), and the share of the polygon under the hands.

The lower face is not taken from the lower landmarks: when a hand covers the mouth, dlib puts the
lips and jaw points on the fingers, and a region drawn from them follows the hand. It is placed
from the eyes instead, which a hand over the mouth leaves in place: a fixed outline in a frame
whose origin is the midpoint of the eye centres, whose x axis runs along the eye line (the face's
roll) and whose unit is the inter-ocular distance. The outline (``LOWER_FACE``) was measured on
dlib's landmarks of real faces with nothing in front of the mouth (the 71 hand-free frames of
``tests/test_hand_cover.py``'s video and the astronaut): in those units the nose base sits at
0.57-0.65 below the eyes, the mouth corners at +-0.5 across, the chin at 1.6-1.94 below (mean
1.83; its spread comes from head pitch), and the jaw 0.9 either side at the mouth's height.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

# The lower face (mouth, lips and chin) in eye units: x along the eye line from the eyes'
# midpoint, y down, both in inter-ocular distances. Its top runs under the nose base, its
# sides inside the jaw line (so a hand on the cheek, not on the mouth, barely counts) and its
# bottom follows the chin.
LOWER_FACE = np.array([
    (-0.60, 0.70), (0.60, 0.70), (0.68, 1.15), (0.55, 1.50), (0.30, 1.72), (0.00, 1.80),
    (-0.30, 1.72), (-0.55, 1.50), (-0.68, 1.15),
], np.float32)

RIGHT_EYE = slice(36, 42)  # iBUG 68: the subject's right eye (left in the image)
LEFT_EYE = slice(42, 48)

WORK_PX = 64  # the region is rasterised this many pixels across: a share to a couple of %
# Hand outline margin, in hand sizes (the longer of wrist -> middle-finger base and index base
# -> little-finger base): a finger is about a fifth of that wide.
FINGER_MARGIN = 0.2
# The hand indices of the wrist, index-finger, middle-finger and little-finger bases.
HAND_WRIST, HAND_INDEX_BASE, HAND_MIDDLE_BASE, HAND_LITTLE_BASE = 0, 5, 9, 17


def lower_face_region(landmarks68: np.ndarray) -> np.ndarray:
    """Polygon ``(k, 2)`` float32 image pixels of the lower face (mouth, lips, chin), placed
    from the eyes alone (see the module's docstring)."""
    points = np.asarray(landmarks68, np.float32)
    right, left = points[RIGHT_EYE].mean(axis=0), points[LEFT_EYE].mean(axis=0)
    across = left - right
    distance = float(np.hypot(*across))
    if distance < 1e-6:
        raise ValueError("the eye centres coincide: not a face's landmarks")
    unit_x = across / distance
    unit_y = np.array([-unit_x[1], unit_x[0]], np.float32)  # image y is down: the face's down
    origin = (right + left) / 2
    return (origin + distance * (LOWER_FACE[:, :1] * unit_x + LOWER_FACE[:, 1:] * unit_y)
            ).astype(np.float32)


def hand_cover(landmarks68: np.ndarray | None, hands: Sequence, shape: Sequence[int]) -> float:
    """Share in [0, 1] of the lower face's visible part (inside an image of ``shape``) that
    ``hands`` cover: 0.0 without hands, NaN without landmarks.

    ``hands``: ``tflite.hands.Hand`` objects or ``(21, 2)`` arrays of image pixels.
    """
    if landmarks68 is None or not np.isfinite(landmarks68).all():
        return float("nan")
    if len(hands) == 0:
        return 0.0
    region = lower_face_region(landmarks68)
    low, high = region.min(axis=0), region.max(axis=0)
    scale = WORK_PX / max(float(high[0] - low[0]), 1.0)
    width = int(np.ceil((high[0] - low[0]) * scale)) + 1
    height = int(np.ceil((high[1] - low[1]) * scale)) + 1

    face = np.zeros((height, width), np.uint8)
    cv2.fillPoly(face, [np.round((region - low) * scale).astype(np.int32)], 1)
    # Only the part inside the frame counts: a chin cut off by the frame's edge can be
    # neither seen nor covered.
    image_h, image_w = shape[:2]
    x_in = (np.arange(width) / scale + low[0] >= 0) & (np.arange(width) / scale + low[0] < image_w)
    y_in = (np.arange(height) / scale + low[1] >= 0) & (np.arange(height) / scale + low[1]
                                                        < image_h)
    face &= (y_in[:, None] & x_in[None, :]).astype(np.uint8)
    visible = int(face.sum())
    if visible == 0:
        return float("nan")

    cover = np.zeros_like(face)
    for hand in hands:
        points = np.asarray(getattr(hand, "points", hand), np.float32)
        hull = cv2.convexHull(np.round((points - low) * scale).astype(np.int32))
        cv2.fillConvexPoly(cover, hull, 1)
        # A thick outline of the hull grows it by the margin on every side (round joins).
        margin = FINGER_MARGIN * hand_size(points) * scale
        thickness = max(int(round(2 * margin)), 1)
        cv2.polylines(cover, [hull], True, 1, thickness=thickness)
    return float((face & cover).sum()) / visible


def hand_size(points: np.ndarray) -> float:
    """The hand's size in pixels: the longer of its palm's length and width, so a hand seen
    edge-on (a narrow palm) still gets the margin of its length."""
    length = float(np.hypot(*(points[HAND_MIDDLE_BASE] - points[HAND_WRIST])))
    breadth = float(np.hypot(*(points[HAND_LITTLE_BASE] - points[HAND_INDEX_BASE])))
    return max(length, breadth)
