"""One crop box per clip: the head centred, at the same scale in every clip (docs/measures.md).

Paper, section 4 / appendix A.1: frames are cropped around the talking head and resized to
256 x 256. A box that followed the face frame by frame would add its own jitter to the motion
the model must learn, so each clip gets one static box: the median of its frames' landmark
boxes (robust to a few bad fits), widened by ``CropConfig.scale`` and lifted a little so the
forehead and hair fit. Out-of-frame parts of the box are filled by replicating the edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class CropConfig:
    """size: output side in pixels. scale: box side over the landmark box side (jaw to brows).
    lift: the box centre moves up by this fraction of the landmark box side."""

    size: int = 256
    scale: float = 1.8
    lift: float = 0.12


def clip_box(face_boxes: np.ndarray, config: CropConfig) -> np.ndarray:
    """The clip's square box ``x0, y0, x1, y1`` from its frames' face boxes ``(n, 4)``."""
    valid = face_boxes[np.isfinite(face_boxes).all(axis=1)]
    if not len(valid):
        raise ValueError("no frame of the clip has a face box")
    centre = np.median((valid[:, :2] + valid[:, 2:]) / 2, axis=0)
    side = float(np.median(valid[:, 2] - valid[:, 0]))
    centre[1] -= config.lift * side
    # Whole pixels, so the frames and the landmarks are mapped by exactly the same box.
    full = max(int(round(side * config.scale)), 2)
    x0, y0 = int(round(centre[0] - full / 2)), int(round(centre[1] - full / 2))
    return np.array([x0, y0, x0 + full, y0 + full], np.float64)


def crop_frame(rgb: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """``rgb`` cut to ``box`` and resized to ``size`` x ``size`` (edge-replicated outside).

    Cut first, then resize with area averaging: a warp would alias when shrinking a large
    source face to 256 px.
    """
    height, width = rgb.shape[:2]
    x0, y0, side = int(box[0]), int(box[1]), max(int(box[2] - box[0]), 1)
    pad_left, pad_top = max(0, -x0), max(0, -y0)
    pad_right, pad_bottom = max(0, x0 + side - width), max(0, y0 + side - height)
    inside = rgb[max(y0, 0):min(y0 + side, height), max(x0, 0):min(x0 + side, width)]
    if pad_left or pad_top or pad_right or pad_bottom:
        inside = cv2.copyMakeBorder(inside, pad_top, pad_bottom, pad_left, pad_right,
                                    cv2.BORDER_REPLICATE)
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(inside, (size, size), interpolation=interpolation)


def to_crop_pixels(points: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """Source-pixel points (..., 2) mapped into the crop's pixels."""
    scale = size / (box[2] - box[0])
    return ((points - box[:2]) * scale).astype(np.float32)


def to_model_pixels(points: np.ndarray, crop_size: int, size: int) -> np.ndarray:
    """Crop-pixel points at ``crop_size`` -> pixels of the ``size`` image, as the training
    loader maps them (pixel centres through the resize)."""
    return ((points + 0.5) * (size / crop_size) - 0.5).astype(np.float32)
