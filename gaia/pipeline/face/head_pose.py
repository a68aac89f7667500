"""Head pose (pitch, yaw, roll) from 68 landmarks by PnP against a generic 3D face.

Paper, appendix A.1 / B.1 uses 3DDFA for pose; ours needs no weights: OpenCV's ``solvePnP``
fits a rigid generic face to a few stable landmarks with a pinhole camera whose focal length is
the image width. Accurate to a few degrees for moderate poses, which is what the pose filter and
the s2m model's pose condition need.

Conventions (camera frame: x right, y down, z away from the camera): the generic face looks at
the camera when its rotation is identity. ``pitch`` turns about x (> 0: looks down), ``yaw``
about y (> 0: turns toward the image's right), ``roll`` about z (> 0: tilts clockwise in the
image). ``R = Rz(roll) @ Ry(yaw) @ Rx(pitch)``.
"""

from __future__ import annotations

import cv2
import numpy as np

# A generic adult face in millimetres, origin at the nose tip, in the camera frame above.
# Rounded from average anthropometric proportions; only rigid points (no jaw, lips or brows
# that move with expression) except the chin, which keeps pitch well conditioned.
FACE_MODEL_INDICES = np.array([30, 8, 36, 45, 39, 42, 31, 35, 48, 54, 27, 33])
FACE_MODEL_MM = np.array(
    [
        [0.0, 0.0, 0.0],  # 30 nose tip
        [0.0, 66.0, 13.0],  # 8 chin
        [-45.0, -34.0, 27.0],  # 36 outer corner, subject's right eye (image left)
        [45.0, -34.0, 27.0],  # 45 outer corner, subject's left eye
        [-15.0, -33.0, 24.0],  # 39 inner corner, right eye
        [15.0, -33.0, 24.0],  # 42 inner corner, left eye
        [-13.0, 5.0, 12.0],  # 31 right nostril wing
        [13.0, 5.0, 12.0],  # 35 left nostril wing
        [-30.0, 30.0, 25.0],  # 48 right mouth corner
        [30.0, 30.0, 25.0],  # 54 left mouth corner
        [0.0, -34.0, 20.0],  # 27 nose bridge between the eyes
        [0.0, 8.0, 8.0],  # 33 nose base
    ],
    dtype=np.float64,
)


def rotation_matrix(pitch_deg: float, yaw_deg: float, roll_deg: float) -> np.ndarray:
    """``Rz(roll) @ Ry(yaw) @ Rx(pitch)`` in the module's conventions."""
    p, y, r = np.radians([pitch_deg, yaw_deg, roll_deg])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    # Yaw > 0 turns the face toward the image's right: the nose (z < 0 side) moves to +x.
    ry = np.array([[np.cos(y), 0, -np.sin(y)], [0, 1, 0], [np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


def euler_from_matrix(rot: np.ndarray) -> tuple[float, float, float]:
    """Inverse of ``rotation_matrix``: ``(pitch, yaw, roll)`` in degrees."""
    # Our Ry(yaw) is the textbook Ry(-yaw), so the textbook ZYX angle beta is -yaw.
    beta = np.arcsin(np.clip(-rot[2, 0], -1.0, 1.0))
    pitch = np.arctan2(rot[2, 1], rot[2, 2])
    roll = np.arctan2(rot[1, 0], rot[0, 0])
    return float(np.degrees(pitch)), float(-np.degrees(beta)), float(np.degrees(roll))


def camera_matrix(width: int, height: int) -> np.ndarray:
    """Pinhole intrinsics with focal length = image width, centre at the image centre."""
    return np.array(
        [[width, 0.0, width / 2.0], [0.0, width, height / 2.0], [0.0, 0.0, 1.0]], np.float64
    )


def project(rot: np.ndarray, translation_mm: np.ndarray, width: int, height: int,
            points_mm: np.ndarray = FACE_MODEL_MM) -> np.ndarray:
    """Image pixels of ``points_mm`` rotated by ``rot`` and moved by ``translation_mm``."""
    cam = (rot @ points_mm.T).T + translation_mm
    uvw = (camera_matrix(width, height) @ cam.T).T
    return uvw[:, :2] / uvw[:, 2:3]


def head_pose(landmarks: np.ndarray, width: int, height: int) -> tuple[float, float, float]:
    """``(pitch, yaw, roll)`` degrees of one face's 68 landmarks; NaNs when PnP fails."""
    image_points = landmarks[FACE_MODEL_INDICES].astype(np.float64)
    if not np.isfinite(image_points).all():
        return (np.nan, np.nan, np.nan)
    # Start from a frontal head at the distance its eye span implies: without a guess the
    # iterative solver sometimes lands on the mirrored solution (roll near 180 degrees).
    span_px = float(np.linalg.norm(image_points[3] - image_points[2]))
    span_mm = float(np.linalg.norm(FACE_MODEL_MM[3] - FACE_MODEL_MM[2]))
    centre = image_points[0]
    depth = width * span_mm / max(span_px, 1.0)
    tvec = np.array([(centre[0] - width / 2) * depth / width,
                     (centre[1] - height / 2) * depth / width, depth])
    ok, rvec, _ = cv2.solvePnP(
        FACE_MODEL_MM, image_points, camera_matrix(width, height), None,
        rvec=np.zeros(3), tvec=tvec, useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE,
    )
    if not ok:
        return (np.nan, np.nan, np.nan)
    rot, _ = cv2.Rodrigues(rvec)
    return euler_from_matrix(rot)
