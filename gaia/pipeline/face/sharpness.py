"""Face sharpness: is the face in focus (paper, appendix A.1, as a filter measure).

Motion blur and defocus make the VAE learn blurred faces. The face crop is resized to a fixed
side first, so a small sharp face and a large sharp face score alike, and the Laplacian's
spread is divided by the crop's contrast, so lighting does not read as focus.
"""

from __future__ import annotations

import cv2
import numpy as np

SIDE_PX = 64  # the crop's side: small enough that a 64 px face is not enlarged much


def face_sharpness(image: np.ndarray, box: np.ndarray) -> float:
    """``image``: grayscale, or RGB (only the face crop is converted). Standard deviation of the Laplacian of the face crop at ``SIDE_PX`` over its intensity
    standard deviation (about 0.3-0.6 in focus, under 0.15 for a blurred face); NaN when the
    box holds no pixels."""
    height, width = image.shape[:2]
    x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
    x1, y1 = min(width, int(np.ceil(box[2]))), min(height, int(np.ceil(box[3])))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return float("nan")
    crop = image[y0:y1, x0:x1]
    if crop.ndim == 3:
        crop = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    interpolation = cv2.INTER_AREA if crop.shape[0] > SIDE_PX else cv2.INTER_LINEAR
    crop = cv2.resize(crop, (SIDE_PX, SIDE_PX), interpolation=interpolation).astype(np.float32)
    contrast = float(crop.std())
    if contrast < 1.0:
        return 0.0
    return float(cv2.Laplacian(crop, cv2.CV_32F).std() / contrast)
