"""68-point facial landmarks (iBUG 300-W order), from dlib or from face-alignment's FAN.

Paper, appendix A.1 computes every filter measure from 68 landmarks. Two backends:

- ``dlib`` (default): the 68-point shape predictor shipped in the ``face-recognition-models``
  wheel. Runs offline with nothing but pip; about a millisecond per face on one core.
- ``fan``: face-alignment's 2D FAN, more accurate under pose and occlusion. Its weights are
  read from the torch hub cache; nothing is downloaded (docs/weights.md).

Both take RGB frames and a face box ``(x0, y0, x1, y1)`` and return ``(68, 2)`` float32 pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from gaia.common.installed import package_folders
from gaia.common.weights import MissingWeightsError

# What the FAN backend loads, and where face-alignment 1.x expects it (torch hub cache).
FAN_WEIGHTS_FILE = "2DFAN4-11f355bf06.pth.tar"
FAN_WEIGHTS_URL = "https://www.adrianbulat.com/downloads/python-fan/" + FAN_WEIGHTS_FILE


class Landmarker(Protocol):
    """``landmarker(image, box, angle)``: 68 points of the face in ``box``; ``angle`` is the
    face's roll in radians (the face mesh fits an upright crop; dlib and FAN ignore it)."""

    wants_gray: bool  # True: pass the grayscale frame (cheaper, same result), else RGB

    def __call__(self, rgb: np.ndarray, box: np.ndarray, angle: float = 0.0) -> np.ndarray: ...


def dlib_models_dir() -> Path:
    """The ``models/`` folder of ``face-recognition-models``.

    Found with importlib, without importing the package: its ``__init__`` needs the removed
    ``pkg_resources`` (docs/weights.md).
    """
    folders = package_folders("face_recognition_models")
    if not folders:
        raise MissingWeightsError(
            "dlib's 68-point shape predictor ships in the 'face-recognition-models' package, "
            "which is not installed: pip install face-recognition-models"
        )
    return folders[0] / "models"


class DlibLandmarker:
    """dlib's ensemble-of-regression-trees 68-point predictor (it works on intensity only)."""

    wants_gray = True

    def __init__(self) -> None:
        import dlib

        path = dlib_models_dir() / "shape_predictor_68_face_landmarks.dat"
        if not path.is_file():
            raise MissingWeightsError(f"dlib shape predictor not found at {path}")
        self._predictor = dlib.shape_predictor(str(path))

    def __call__(self, image: np.ndarray, box: np.ndarray, angle: float = 0.0) -> np.ndarray:
        import dlib

        x0, y0, x1, y1 = (int(round(float(v))) for v in box)
        shape = self._predictor(image, dlib.rectangle(x0, y0, x1, y1))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def fan_weights_path() -> Path:
    """Where face-alignment keeps the 2D FAN weights: ``$TORCH_HOME/hub/checkpoints``."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints" / FAN_WEIGHTS_FILE


class FanLandmarker:
    """face-alignment's 2D FAN, fed with our own face boxes (its detector is not used)."""

    wants_gray = False

    def __init__(self, device: str = "cpu") -> None:
        path = fan_weights_path()
        if not path.is_file():
            raise MissingWeightsError(
                f"--landmark-backend fan needs face-alignment's FAN weights at {path}, and this "
                f"job never downloads. On a machine with network access fetch {FAN_WEIGHTS_URL} and "
                f"copy it there (or set TORCH_HOME to a folder holding hub/checkpoints/"
                f"{FAN_WEIGHTS_FILE}), or use --landmark-backend dlib."
            )
        try:
            import face_alignment
        except ImportError as err:
            raise MissingWeightsError(
                "--landmark-backend fan needs the face-alignment package: "
                "pip install --no-deps face-alignment 'gaia-avatar[fan]'"
            ) from err
        # The 'dlib' detector module runs dlib's HOG on CPU, so building it downloads nothing;
        # we pass our own boxes anyway.
        self._model = face_alignment.FaceAlignment(
            face_alignment.LandmarksType.TWO_D,
            device=device,
            face_detector="dlib",
            flip_input=False,
            compile=False,
        )

    def __call__(self, rgb: np.ndarray, box: np.ndarray, angle: float = 0.0) -> np.ndarray:
        found = self._model.get_landmarks_from_image(rgb, detected_faces=[np.asarray(box)])
        return np.asarray(found[0][:, :2], dtype=np.float32)


def load_landmarker(name: str, device: str = "cpu") -> Landmarker:
    """The landmark backend called ``name`` (``dlib`` or ``fan``)."""
    if name == "dlib":
        return DlibLandmarker()
    if name == "fan":
        return FanLandmarker(device=device)
    raise ValueError(f"unknown landmark backend {name!r}: use 'dlib' or 'fan'")
