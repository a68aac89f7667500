"""Face embeddings for identity (paper, section 4 / appendix A.1: identities for the splits and
Table 1's counts; a change of person inside a run must split it).

dlib's face-recognition ResNet (128-d, same person under 0.6 Euclidean distance) ships in the
``face-recognition-models`` wheel beside the landmark predictor. It aligns the face from our 68
landmarks, so no second detector or predictor runs.
"""

from __future__ import annotations

import numpy as np

from gaia.common.weights import MissingWeightsError
from gaia.pipeline.face.landmarks import dlib_models_dir

MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"


class FaceEmbedder:
    """``embedder(rgb, landmarks68) -> (128,) float32``: about 150 ms per face on one AMD EPYC
    core (AVX2), so it runs only where the detector scanned (every 25 frames, after a cut)."""

    def __init__(self) -> None:
        import dlib

        path = dlib_models_dir() / MODEL_FILE
        if not path.is_file():
            raise MissingWeightsError(
                f"dlib's face-recognition model is missing ({path}); it ships in the "
                "'face-recognition-models' package: pip install face-recognition-models, or "
                "turn the identity measures off (--set identity=false)"
            )
        self._model = dlib.face_recognition_model_v1(str(path))

    def __call__(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        import dlib

        points = [dlib.point(int(round(float(x))), int(round(float(y)))) for x, y in landmarks]
        x0, y0 = np.floor(landmarks.min(axis=0)).astype(int)
        x1, y1 = np.ceil(landmarks.max(axis=0)).astype(int)
        shape = dlib.full_object_detection(dlib.rectangle(int(x0), int(y0), int(x1), int(y1)),
                                           points)
        descriptor = self._model.compute_face_descriptor(np.ascontiguousarray(rgb), shape)
        return np.asarray(descriptor, np.float32)
