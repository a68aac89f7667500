"""MediaPipe's face mesh (``face_landmark.tflite``) as a 68-point landmarker.

The model takes a 192 x 192 RGB crop (floats in [0, 1]) of a face turned upright, about 1.5
times the face's extent, and gives 468 points ``(x, y, z)`` in crop pixels plus a face-presence
logit. ``MeshLandmarker`` cuts that crop, maps the points back to the frame and turns them into
the 68 iBUG-300W points (``mesh68``), so it stands in for ``DlibLandmarker``.

Two ways to place the crop:

- from a detector box (``__call__``): the box is dlib-HOG-like (brows to chin, tight across the
  cheeks), so the crop's side is ``BOX_SCALE`` times the box's. 1.7 was measured: the crop the
  model's own tracking settles on (``next_crop``) has 1.76 times the box's side (median over
  105 real faces) and the same centre (within 0.5 % of the side), and the median NME against
  dlib over those faces was 0.042, 0.034, 0.032, 0.032, 0.033, 0.035 and 0.042 at scales 1.4,
  1.5, 1.6, 1.7, 1.8, 1.9 and 2.1.
- from the previous frame's fit (``next_crop``), as MediaPipe tracks: the mesh's bounding
  square in the eye-levelled frame, times 1.5, turned by the eye line (vertices 33 -> 263).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaia.pipeline.face.tflite.anchors import sigmoid
from gaia.pipeline.face.tflite.crop import RotatedCrop, angle_to_horizontal
from gaia.pipeline.face.tflite.mesh68 import MESH_POINTS, to_ibug68
from gaia.pipeline.face.tflite.model_files import FACE_MESH, TFLiteModel

BOX_SCALE = 1.7  # crop side / detector box side (measured, see the module docstring)
TRACK_SCALE = 1.5  # crop side / mesh extent: MediaPipe's face-landmark ROI
EYE_LINE = (33, 263)  # outer eye corners, image left then right: MediaPipe's rotation vertices


@dataclass(frozen=True)
class MeshFit:
    """One fit. ``mesh``: (468, 3) float32 in frame pixels (z in the same scale as x, larger
    away from the camera, relative to the face's centre); ``points``: its (68, 2) iBUG-300W
    points; ``presence``: the model's probability that the crop holds a face; ``crop``: where
    the model looked."""

    mesh: np.ndarray
    points: np.ndarray
    presence: float
    crop: RotatedCrop


class MeshLandmarker:
    """The face mesh on one face box or crop per call (``threads`` LiteRT CPU threads)."""

    wants_gray = False  # the model reads colour

    def __init__(self, threads: int = 1) -> None:
        self._model = TFLiteModel(FACE_MESH, threads)
        width, height = self._model.input_size
        if width != height:
            raise ValueError(f"{FACE_MESH.name} takes {width} x {height}, not a square crop")
        self.size = width

    def crop_for_box(self, box: np.ndarray, angle: float = 0.0) -> RotatedCrop:
        """The model's crop for a detector box ``(x0, y0, x1, y1)`` of a face rolled by
        ``angle`` radians (eye line left -> right against the image's x axis)."""
        x0, y0, x1, y1 = (float(v) for v in np.asarray(box).reshape(4))
        # The geometric mean keeps a slightly non-square box's scale.
        side = float(np.sqrt(max(x1 - x0, 1.0) * max(y1 - y0, 1.0)))
        return RotatedCrop((x0 + x1) / 2, (y0 + y1) / 2, side * BOX_SCALE, float(angle))

    def fit(self, rgb: np.ndarray, crop: RotatedCrop) -> MeshFit:
        """The mesh of the face in ``crop`` of the uint8 RGB frame ``rgb``."""
        patch = crop.cut(rgb, self.size)  # the one warp: rotation and resize together
        batch = patch[None].astype(np.float32)
        batch *= np.float32(1 / 255)
        outputs = self._model(batch)
        # Told apart by size, not by position: the output order is the converter's choice.
        raw = next(o for o in outputs if o.size == MESH_POINTS * 3)
        logit = next(o for o in outputs if o.size == 1)
        in_crop = raw.reshape(MESH_POINTS, 3)
        mesh = np.empty((MESH_POINTS, 3), np.float32)
        mesh[:, :2] = crop.to_image(in_crop[:, :2], self.size)
        mesh[:, 2] = in_crop[:, 2] * np.float32(crop.side / self.size)
        presence = float(sigmoid(logit.reshape(())))
        return MeshFit(mesh, to_ibug68(mesh), presence, crop)

    def next_crop(self, fit: MeshFit) -> RotatedCrop:
        """The crop for the next video frame, from this fit's landmarks (no detector)."""
        angle = angle_to_horizontal(fit.mesh[EYE_LINE[0], :2], fit.mesh[EYE_LINE[1], :2])
        return RotatedCrop.around(fit.mesh[:, :2], angle, TRACK_SCALE)

    def __call__(self, rgb: np.ndarray, box: np.ndarray, angle: float = 0.0) -> np.ndarray:
        """(68, 2) float32 iBUG-300W points in frame pixels for the face in ``box``, rolled
        by ``angle`` radians."""
        return self.fit(rgb, self.crop_for_box(box, angle)).points
