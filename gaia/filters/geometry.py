"""Per-frame measures computed from landmarks and boxes alone (paper, appendix A.1).

Pure NumPy and vectorised over frames: ``landmarks`` is ``(n, 68, 2)`` in image pixels (x right,
y down), ``boxes`` is ``(n, 4)`` ``x0, y0, x1, y1``. Frames without a face hold NaN and give NaN.
docs/measures.md explains each measure.
"""

from __future__ import annotations

import numpy as np

# iBUG 300-W 68-point indices.
NOSE_TIP = 30
EYE_OUTER_RIGHT = 36  # the subject's right eye: on the image's left
EYE_OUTER_LEFT = 45
INNER_LIP_TOP = (61, 62, 63)
INNER_LIP_BOTTOM = (67, 66, 65)
MOUTH_CORNERS = (60, 64)


def interocular(landmarks: np.ndarray) -> np.ndarray:
    """Distance between the outer eye corners, ``(n,)`` pixels."""
    return np.linalg.norm(landmarks[:, EYE_OUTER_LEFT] - landmarks[:, EYE_OUTER_RIGHT], axis=-1)


def frontal_angle(landmarks: np.ndarray) -> np.ndarray:
    """Sum of the angles nose->outer eye corners against the horizontal; 180 when frontal.

    Angles are measured counter-clockwise from the image's +x axis with y pointing up, so for a
    symmetric upright face the corner on the left sits at ``180 - a`` and the one on the right at
    ``a``. Yaw slides the nose toward one corner and the sum leaves 180 (monotonically in the
    yaw); roll turns both vectors by the same angle and shifts the sum by twice the roll.
    """
    nose = landmarks[:, NOSE_TIP]
    to_left = landmarks[:, EYE_OUTER_RIGHT] - nose
    to_right = landmarks[:, EYE_OUTER_LEFT] - nose
    # Flip y so angles read counter-clockwise as on paper.
    left_angle = np.degrees(np.arctan2(-to_left[:, 1], to_left[:, 0]))
    right_angle = np.degrees(np.arctan2(-to_right[:, 1], to_right[:, 0]))
    # The left vector points up-left (90..180 degrees); keep it on that branch through 180.
    left_angle = np.where(left_angle < -90.0, left_angle + 360.0, left_angle)
    return (left_angle + right_angle).astype(np.float32)


def mouth_open(landmarks: np.ndarray) -> np.ndarray:
    """Mean inner-lip gap over mouth width (0 closed, about 0.3-0.6 wide open)."""
    gap = np.linalg.norm(
        landmarks[:, list(INNER_LIP_TOP)] - landmarks[:, list(INNER_LIP_BOTTOM)], axis=-1
    ).mean(axis=-1)
    width = np.linalg.norm(
        landmarks[:, MOUTH_CORNERS[1]] - landmarks[:, MOUTH_CORNERS[0]], axis=-1
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        return (gap / width).astype(np.float32)


def landmark_jitter(landmarks: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray:
    """Mean landmark displacement from the previous frame over inter-ocular distance.

    ``previous`` is the landmarks of the frame before ``landmarks[0]`` (from an earlier chunk),
    or None at the start of the video. NaN where either frame has no face.
    """
    prev = _shifted(landmarks, previous)
    step = np.linalg.norm(landmarks - prev, axis=-1).mean(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (step / interocular(landmarks)).astype(np.float32)


def box_jitter(boxes: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray:
    """max(centre shift, size change) from the previous frame, over the previous box size."""
    prev = _shifted(boxes, previous)
    size = np.sqrt(np.clip((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 0, None))
    size_prev = np.sqrt(np.clip((prev[:, 2] - prev[:, 0]) * (prev[:, 3] - prev[:, 1]), 0, None))
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    centre_prev = (prev[:, :2] + prev[:, 2:]) / 2
    shift = np.linalg.norm(centre - centre_prev, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.maximum(shift, np.abs(size - size_prev)) / size_prev).astype(np.float32)


def _shifted(values: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
    """``values`` moved down one frame, with ``previous`` (or NaN) in front."""
    head = np.full_like(values[:1], np.nan) if previous is None else previous[None]
    return np.concatenate([head, values[:-1]], axis=0)


def frontal_angle_eye_line(landmarks: np.ndarray) -> np.ndarray:
    """``frontal_angle`` read against the line through the outer eye corners, not the image's
    horizontal: 180 for a frontal face, whatever its roll.

    The paper's reading against the horizontal shifts the sum by twice the roll, so
    an upright face tilted 10 degrees deviates 20 while a face turned one way and tilted the
    other can cancel to 180. Rotating the landmarks so the eye line is horizontal first leaves
    only the yaw (and some pitch) in the sum.
    """
    eyes = landmarks[:, EYE_OUTER_LEFT] - landmarks[:, EYE_OUTER_RIGHT]
    roll = np.arctan2(eyes[:, 1], eyes[:, 0])
    cos, sin = np.cos(-roll)[:, None], np.sin(-roll)[:, None]
    centred = landmarks - landmarks[:, NOSE_TIP:NOSE_TIP + 1]
    upright = np.stack([cos * centred[..., 0] - sin * centred[..., 1],
                        sin * centred[..., 0] + cos * centred[..., 1]], axis=-1)
    return frontal_angle(upright)
