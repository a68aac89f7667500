"""Shot cuts: a frame unlike the one before it (segments never span one; paper, appendix A.1).

A hard cut changes the colour distribution of the whole frame at once, while head motion and
lighting drift change it slowly. The score is the total-variation distance between the
hue-saturation histograms of consecutive frames (0 identical, 1 disjoint), on a small copy so
it costs nothing beside the decode.
"""

from __future__ import annotations

import cv2
import numpy as np

from gaia.filters.shot_cut import CUT_SCORE

SMALL_SIDE = 64
BINS = (16, 8)


class CutDetector:
    """Stateful over a video's frames: ``score`` each frame in order."""

    def __init__(self, threshold: float = CUT_SCORE) -> None:
        self.threshold = threshold
        self._previous: np.ndarray | None = None

    def score(self, rgb: np.ndarray) -> float:
        """Distance of this frame's colour histogram from the previous frame's (NaN first)."""
        height, width = rgb.shape[:2]
        # Every k-th pixel first (k keeps at least 4 x SMALL_SIDE): an area resize of a whole
        # 1080p frame cost 2 ms, more than the rest of the frame's cut score and histogram.
        step = max(1, max(height, width) // (4 * SMALL_SIDE))
        if step > 1:
            rgb = np.ascontiguousarray(rgb[::step, ::step])
            height, width = rgb.shape[:2]
        scale = SMALL_SIDE / max(height, width)
        small = cv2.resize(rgb, (max(1, round(width * scale)), max(1, round(height * scale))),
                           interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
        hist = cv2.calcHist([hsv], [0, 1], None, list(BINS), [0, 180, 0, 256]).ravel()
        hist /= max(float(hist.sum()), 1.0)
        previous, self._previous = self._previous, hist
        if previous is None:
            return float("nan")
        return float(0.5 * np.abs(hist - previous).sum())

    def is_cut(self, score: float) -> bool:
        return bool(np.isfinite(score) and score >= self.threshold)
