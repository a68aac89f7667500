"""Face detection sized to the face, not to the frame (paper, appendix A.1, at real framing).

A detector has a smallest face it finds: dlib's HOG window is 80 px of the image it is given.
Shrinking a 4K frame to 480 px before detection (what a frame-sized detector does) makes an
interview's 200 px face 25 px and invisible. So detection here is asked for faces of at least
``min_face_px`` pixels of the frame it is given, and the scan sizes itself to that: the sliding-
window detector sees the region rescaled so ``min_face_px`` becomes its window (it searches
larger faces itself, by its own pyramid).

``roi`` looks for the tracked face only, in a square around its last box, at the size that face
has: the cheap re-detection between full scans.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np


class BaseDetector(Protocol):
    """A face detector run on one image as given.

    native_min_px: smallest face side it finds, in pixels of the image it is called on
        (a sliding window's side).
    """

    native_min_px: float

    def detect(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Boxes ``(n, 4)`` x0, y0, x1, y1 in ``rgb``'s pixels and scores ``(n,)``."""
        ...


@dataclass(frozen=True)
class ScanConfig:
    """max_upscale: the most a region is enlarged for a sliding-window detector (cost grows
        with its square). max_pixels: a sliding-window scan larger than this is shrunk to it
        (bounds a 4K frame's cost; smaller faces are then missed rather than taking seconds).
        nms_iou: overlap above which two boxes are one face.
    """

    max_upscale: float = 2.0
    max_pixels: int = 4_000_000
    nms_iou: float = 0.4


class FaceScanner:
    """Full-frame scans and re-detection around a track, with any ``BaseDetector``."""

    def __init__(self, base: BaseDetector, config: ScanConfig | None = None) -> None:
        self.base = base
        self.config = config or ScanConfig()

    def scan(self, rgb: np.ndarray, min_face_px: float, max_pixels: int | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
        """Every face of at least ``min_face_px`` in ``rgb``: boxes and scores, largest first.

        ``max_pixels`` overrides the sliding-window budget (the one-off pre-scan of a video
        affords more than the periodic scans)."""
        height, width = rgb.shape[:2]
        return self._in_region(rgb, (0, 0, width, height), min_face_px, max_pixels)

    def roi(self, rgb: np.ndarray, box: np.ndarray, grow: float = 2.2
            ) -> tuple[np.ndarray, np.ndarray]:
        """Faces inside a square of ``grow`` times ``box``'s side around its centre, searched
        from 0.6 of its size: the tracked face's own detection, at little cost."""
        side = float(max(box[2] - box[0], box[3] - box[1]))
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        half = grow * side / 2
        height, width = rgb.shape[:2]
        region = (max(0, int(cx - half)), max(0, int(cy - half)),
                  min(width, int(np.ceil(cx + half))), min(height, int(np.ceil(cy + half))))
        if region[2] - region[0] < 8 or region[3] - region[1] < 8:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        return self._in_region(rgb, region, 0.6 * side)

    def _in_region(self, rgb: np.ndarray, region: tuple[int, int, int, int],
                   min_face_px: float, max_pixels: int | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
        boxes, scores = self._scaled(rgb, region, min_face_px,
                                     max_pixels or self.config.max_pixels)
        keep = _nms(boxes, scores, self.config.nms_iou)
        boxes, scores = boxes[keep], scores[keep]
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        order = np.argsort(-areas, kind="stable")
        return boxes[order].astype(np.float32), scores[order].astype(np.float32)

    def _scaled(self, rgb, region, min_face_px, max_pixels):
        x0, y0, x1, y1 = region
        crop = rgb[y0:y1, x0:x1]
        scale = min(self.config.max_upscale, self.base.native_min_px / max(min_face_px, 1.0))
        pixels = crop.shape[0] * crop.shape[1] * scale * scale
        if pixels > max_pixels:
            scale *= float(np.sqrt(max_pixels / pixels))
        if abs(scale - 1.0) > 1e-3:
            size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
            crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA if scale < 1
                              else cv2.INTER_LINEAR)
        boxes, scores = self.base.detect(crop)
        return boxes / scale + np.array([x0, y0, x0, y0], np.float32), scores


def _nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression (best score first).

    Overlap is intersection over the smaller box: a detection of part of a face (a region's
    edge through it) is a smaller box inside the whole one, which plain IoU would keep as a
    second face.
    """
    if not len(boxes):
        return np.zeros(0, np.int64)
    order = np.argsort(-scores, kind="stable")
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0,
                                                                      None)
    kept: list[int] = []
    for i in order:
        if kept:
            k = np.asarray(kept)
            w = np.clip(np.minimum(boxes[k, 2], boxes[i, 2]) - np.maximum(boxes[k, 0], boxes[i, 0]),
                        0, None)
            h = np.clip(np.minimum(boxes[k, 3], boxes[i, 3]) - np.maximum(boxes[k, 1], boxes[i, 1]),
                        0, None)
            smaller = np.maximum(np.minimum(areas[k], areas[i]), 1e-6)
            if ((w * h) / smaller > iou).any():
                continue
        kept.append(int(i))
    return np.asarray(kept, np.int64)
