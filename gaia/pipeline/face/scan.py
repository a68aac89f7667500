"""Face detection sized to the face, not to the frame (paper, appendix A.1, at real framing).

A detector has a smallest face it finds: dlib's HOG window is 80 px of the image it is given,
BlazeFace finds faces down to a fixed share of its 128 or 192 px input. Shrinking a 4K frame to
480 px before detection (what a frame-sized detector does) makes an interview's 200 px face
25 px and invisible. So detection here is asked for faces of at least ``min_face_px`` pixels of
the frame it is given, and the scan sizes itself to that:

- a sliding-window detector (HOG) sees the region rescaled so ``min_face_px`` becomes its
  window (it searches larger faces itself, by its own pyramid);
- a fixed-input network (BlazeFace) sees the region whole (large faces) and then in
  overlapping tiles, each so small that ``min_face_px`` is the network's smallest face.

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
        (sliding window), or as a share of the image's longer side (``tiled``: 0 < value < 1).
    tiled: a fixed-input network: small faces need tiles, not a larger image.
    """

    native_min_px: float
    tiled: bool

    def detect(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Boxes ``(n, 4)`` x0, y0, x1, y1 in ``rgb``'s pixels and scores ``(n,)``."""
        ...


@dataclass(frozen=True)
class ScanConfig:
    """max_upscale: the most a region is enlarged for a sliding-window detector (cost grows
        with its square). tile_overlap: share of a tile's side shared with its neighbour, so a
        face on a tile border is whole in one of them. max_pixels: a sliding-window scan
        larger than this is shrunk to it (bounds a 4K frame's cost; smaller faces are then
        missed rather than taking seconds). nms_iou: overlap above which two boxes are one face.
    """

    max_upscale: float = 2.0
    tile_overlap: float = 0.3
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
        if self.base.tiled:
            boxes, scores = self._tiled(rgb, region, min_face_px)
        else:
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

    def _tiled(self, rgb, region, min_face_px):
        x0, y0, x1, y1 = region
        longer = max(x1 - x0, y1 - y0)
        found_boxes, found_scores = [], []
        tile = float(longer)
        while True:
            for tx, ty in _tile_origins(region, tile, self.config.tile_overlap):
                crop = rgb[ty:ty + int(tile), tx:tx + int(tile)]
                boxes, scores = self.base.detect(crop)
                found_boxes.append(boxes + np.array([tx, ty, tx, ty], np.float32))
                found_scores.append(scores)
            if tile * self.base.native_min_px <= min_face_px or tile < 32:
                break
            tile /= 2.0
        return (np.concatenate(found_boxes).reshape(-1, 4),
                np.concatenate(found_scores).reshape(-1))


def _tile_origins(region: tuple[int, int, int, int], tile: float, overlap: float
                  ) -> list[tuple[int, int]]:
    """Top-left corners of square tiles of side ``tile`` covering ``region`` with overlap."""
    x0, y0, x1, y1 = region
    step = max(tile * (1.0 - overlap), 1.0)

    def starts(lo: int, hi: int) -> list[int]:
        if hi - lo <= tile:
            return [lo]
        count = int(np.ceil((hi - lo - tile) / step)) + 1
        return [int(round(v)) for v in np.linspace(lo, hi - tile, count)]

    return [(x, y) for y in starts(y0, y1) for x in starts(x0, x1)]


def _nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression (best score first).

    Overlap is intersection over the smaller box: a tile that cut a face in half reports a
    smaller box inside the whole one, which plain IoU would keep as a second face.
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
