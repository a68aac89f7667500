"""Rotated square crops: what the face-mesh and hand-landmark models take, and the way back.

Both models were trained on a square crop around the face (or hand) turned upright; their
outputs are pixels of that crop. ``RotatedCrop`` holds the crop's centre, side and angle in the
source image, cuts it with one affine warp (the resize is part of the warp: one interpolation),
and maps the model's points back to source pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class RotatedCrop:
    """cx, cy, side in source pixels; angle in radians, counter-clockwise positive in image
    coordinates (the crop's x axis is the source turned by ``angle``)."""

    cx: float
    cy: float
    side: float
    angle: float

    def _forward(self, size: int) -> np.ndarray:
        """2 x 3 affine map from crop pixels (of a ``size`` square) to source pixels."""
        scale = self.side / size
        cos, sin = np.cos(self.angle) * scale, np.sin(self.angle) * scale
        # crop (u, v) -> source: centre + R(angle) * scale * ((u, v) - size / 2)
        half = size / 2
        return np.array([[cos, -sin, self.cx - cos * half + sin * half],
                         [sin, cos, self.cy - sin * half - cos * half]], np.float64)

    def cut(self, image: np.ndarray, size: int) -> np.ndarray:
        """The crop, ``size`` x ``size``, from ``image`` (outside the image: edge pixels
        repeated, as a face at the frame's border is better guessed than blacked out)."""
        return cv2.warpAffine(image, self._forward(size), (size, size),
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REPLICATE)

    def to_image(self, points: np.ndarray, size: int) -> np.ndarray:
        """Points ``(..., 2)`` in crop pixels (of a ``size`` square) to source pixels."""
        forward = self._forward(size)
        flat = np.asarray(points, np.float64).reshape(-1, 2)
        mapped = flat @ forward[:, :2].T + forward[:, 2]
        return mapped.reshape(np.shape(points)[:-1] + (2,)).astype(np.float32)

    @classmethod
    def around(cls, points: np.ndarray, angle: float, scale: float, shift_y: float = 0.0
               ) -> RotatedCrop:
        """The square around ``points`` (source pixels) in the frame turned by ``angle``:
        its longer side times ``scale``, its centre moved ``shift_y`` of that side along the
        turned y axis (hands: towards the fingers)."""
        cos, sin = np.cos(angle), np.sin(angle)
        upright = np.asarray(points, np.float64) @ np.array([[cos, -sin], [sin, cos]])
        low, high = upright.min(axis=0), upright.max(axis=0)
        side = float(max(high - low))
        centre = (low + high) / 2 + np.array([0.0, shift_y * side])
        cx = centre[0] * cos - centre[1] * sin
        cy = centre[0] * sin + centre[1] * cos
        return cls(float(cx), float(cy), side * scale, float(angle))


def angle_to_horizontal(left: np.ndarray, right: np.ndarray, target: float = 0.0) -> float:
    """The turn (radians) that brings the line ``left -> right`` to ``target`` radians from
    the image's x axis (MediaPipe's rotation: 0 for eyes, 90 degrees for wrist -> fingers)."""
    return float(np.arctan2(right[1] - left[1], right[0] - left[0]) - target)
