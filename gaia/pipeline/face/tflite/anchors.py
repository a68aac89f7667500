"""SSD anchors of the BlazeFace and palm detectors, and the decoding of their raw outputs.

The detectors predict, per anchor, a box and keypoints as offsets from the anchor's centre in
input pixels, and a score logit. The anchors are a grid per feature-map stride: layers that
share a stride share a grid, each adding one anchor per cell, plus one more per layer when the
model was trained with an interpolated scale (MediaPipe's SSD anchor options; with a fixed
anchor size every anchor is 1 x 1, so only centres matter).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AnchorSpec:
    """input_size: the square input's side. strides: one per layer. interpolated: each layer
    adds a second anchor per cell (the interpolated scale)."""

    input_size: int
    strides: tuple[int, ...]
    interpolated: bool = True


def anchor_centres(spec: AnchorSpec) -> np.ndarray:
    """``(n, 2)`` anchor centres in [0, 1], in the order the models' outputs use."""
    centres = []
    layer = 0
    while layer < len(spec.strides):
        stride = spec.strides[layer]
        same = 0
        while layer < len(spec.strides) and spec.strides[layer] == stride:
            same += 2 if spec.interpolated else 1
            layer += 1
        cells = int(np.ceil(spec.input_size / stride))
        ys, xs = np.meshgrid((np.arange(cells) + 0.5) / cells, (np.arange(cells) + 0.5) / cells,
                             indexing="ij")
        grid = np.stack([xs.reshape(-1), ys.reshape(-1)], axis=1)
        centres.append(np.repeat(grid, same, axis=0))
    return np.concatenate(centres).astype(np.float32)


def decode(raw: np.ndarray, logits: np.ndarray, centres: np.ndarray, input_size: int,
           min_score: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes ``(m, 4)`` x0, y0, x1, y1 and keypoints ``(m, k, 2)``, both in [0, 1] of the
    input, and scores ``(m,)`` of the anchors scoring at least ``min_score``."""
    raw = raw.reshape(len(centres), -1)
    scores = sigmoid(logits.reshape(-1))
    keep = np.flatnonzero(scores >= min_score)
    raw, anchor = raw[keep] / input_size, centres[keep]
    cx, cy = raw[:, 0] + anchor[:, 0], raw[:, 1] + anchor[:, 1]
    half_w, half_h = raw[:, 2] / 2, raw[:, 3] / 2
    boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
    keypoints = raw[:, 4:].reshape(len(keep), (raw.shape[1] - 4) // 2, 2) + anchor[:, None, :]
    return boxes, keypoints, scores[keep].astype(np.float32)


def sigmoid(logits: np.ndarray | float) -> np.ndarray:
    """The models' scores from their logits (clipped as MediaPipe does, so none overflows)."""
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(logits, np.float64), -100.0, 100.0)))


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's weighted non-maximum suppression: each kept detection is the score-weighted
    mean of the detections overlapping the best one by more than ``iou`` (steadier boxes
    than keeping the single best, which is why the models were tuned with it)."""
    order = np.argsort(-scores, kind="stable")
    out_boxes, out_points, out_scores = [], [], []
    while len(order):
        best = order[0]
        overlap = _iou(boxes[best], boxes[order])
        group = order[overlap > iou]
        weights = scores[group][:, None]
        out_boxes.append((boxes[group] * weights).sum(0) / weights.sum())
        out_points.append((keypoints[group] * weights[:, :, None]).sum(0) / weights.sum())
        out_scores.append(scores[best])
        order = order[overlap <= iou]
    if not out_boxes:
        return (np.zeros((0, 4), np.float32), np.zeros((0,) + keypoints.shape[1:], np.float32),
                np.zeros(0, np.float32))
    return (np.asarray(out_boxes, np.float32), np.asarray(out_points, np.float32),
            np.asarray(out_scores, np.float32))


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    w = np.clip(np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]), 0, None)
    inter = w * h
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)
