"""Lower-face occlusion: does the mouth-and-chin area have the colour of the face's own skin?

Paper, appendix A.1 drops frames where a mask or a hand covers the mouth. No mask classifier
ships in any wheel we can install, so we measure it (docs/measures.md): take the skin colour
of the upper face (the band from the brows to the middle of the nose, eyes excluded, where
neither a mask nor a hand over the mouth reaches), then the share of the lower face (cheeks below
the nose, mouth area and chin, lips excluded) whose chroma is far from it. Chroma (Cr, Cb) rather
than RGB, so shading and lighting changes across the face matter little.
"""

from __future__ import annotations

import cv2
import numpy as np

# Polygons in iBUG 68 indices.
UPPER_BAND = [17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 16, 15, 29, 1, 0]
EYES = ([36, 37, 38, 39, 40, 41], [42, 43, 44, 45, 46, 47])
LOWER_FACE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 35, 33, 31]
OUTER_LIPS = list(range(48, 60))

WORK_WIDTH = 96  # the face is resampled to this width: plenty for a colour share, and cheap
MIN_SPREAD = 4.0  # floor on the chroma spread, so a very even skin does not flag every pixel
SKIN_DISTANCE = 3.0  # a pixel is skin within this many spreads of the reference chroma


def lower_face_occlusion(rgb: np.ndarray, landmarks: np.ndarray) -> float:
    """Share in [0, 1] of lower-face pixels that do not look like the upper face's skin."""
    if not np.isfinite(landmarks).all():
        return float("nan")
    x0, y0 = np.floor(landmarks.min(axis=0)).astype(int)
    x1, y1 = np.ceil(landmarks.max(axis=0)).astype(int)
    height, width = rgb.shape[:2]
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, width - 1), min(y1, height - 1)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return float("nan")
    scale = WORK_WIDTH / (x1 - x0)
    size = (WORK_WIDTH, max(8, round((y1 - y0) * scale)))
    crop = cv2.resize(rgb[y0 : y1 + 1, x0 : x1 + 1], size, interpolation=cv2.INTER_AREA)
    chroma = cv2.cvtColor(crop, cv2.COLOR_RGB2YCrCb)[:, :, 1:].reshape(-1, 2).astype(np.float32)
    points = ((landmarks - (x0, y0)) * scale).astype(np.int32)

    upper = _mask(size, points, [UPPER_BAND], exclude=list(EYES))
    lower = _mask(size, points, [LOWER_FACE], exclude=[OUTER_LIPS])
    if upper.sum() < 10 or lower.sum() < 10:
        return float("nan")
    reference = chroma[upper]
    centre = np.median(reference, axis=0)
    spread = np.maximum(1.4826 * np.median(np.abs(reference - centre), axis=0), MIN_SPREAD)
    distance = np.abs((chroma[lower] - centre) / spread).max(axis=1)
    return float(np.mean(distance > SKIN_DISTANCE))


def _mask(size: tuple[int, int], points: np.ndarray, include: list[list[int]],
          exclude: list[list[int]]) -> np.ndarray:
    """Flat boolean mask of the pixels inside ``include`` polygons and outside ``exclude``."""
    canvas = np.zeros((size[1], size[0]), np.uint8)
    cv2.fillPoly(canvas, [points[idx] for idx in include], 1)
    cv2.fillPoly(canvas, [points[idx] for idx in exclude], 0)
    return canvas.reshape(-1).astype(bool)
