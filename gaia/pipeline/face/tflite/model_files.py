"""Where the MediaPipe ``.tflite`` files are, what they hash to, and the LiteRT runner.

The files ship in the ``mediapipe`` 0.10.21 wheel under ``mediapipe/modules/`` (Apache 2.0,
like the rest of MediaPipe). The package is found with importlib and never imported. A file
that is missing, or not the size that release ships, is refused with one line naming it and
the package it comes from, before any video is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from gaia.common.installed import package_folders
from gaia.common.weights import MissingWeightsError, file_sha256

PACKAGE = "mediapipe"
PACKAGE_PIN = "mediapipe==0.10.21"
INSTALL = f"pip install --no-deps '{PACKAGE_PIN}'"


@dataclass(frozen=True)
class ModelFile:
    """One model: its path inside the package and the size the pinned release ships."""

    name: str
    relative: str
    size: int


FACE_SHORT = ModelFile("face_detection_short_range",
                       "modules/face_detection/face_detection_short_range.tflite", 229_714)
FACE_FULL = ModelFile("face_detection_full_range_sparse",
                      "modules/face_detection/face_detection_full_range_sparse.tflite", 676_746)
FACE_MESH = ModelFile("face_landmark", "modules/face_landmark/face_landmark.tflite", 1_242_398)
PALM = ModelFile("palm_detection_lite", "modules/palm_detection/palm_detection_lite.tflite",
                 1_985_440)
HAND = ModelFile("hand_landmark_lite", "modules/hand_landmark/hand_landmark_lite.tflite",
                 2_071_597)
ALL = (FACE_SHORT, FACE_FULL, FACE_MESH, PALM, HAND)


def package_dir() -> Path:
    """The installed ``mediapipe`` folder (found, not imported)."""
    folders = package_folders(PACKAGE)
    if not folders:
        raise MissingWeightsError(
            f"--face-backend mediapipe reads its models from the '{PACKAGE}' wheel, which is not "
            f"installed: {INSTALL} (or use --face-backend dlib)")
    return folders[0]


def model_path(model: ModelFile) -> Path:
    """The checked path of ``model``: present, and the size its release ships."""
    path = package_dir() / model.relative
    if not path.is_file():
        raise MissingWeightsError(
            f"MediaPipe model {model.name} is missing ({path}); it ships in the '{PACKAGE}' "
            f"wheel: {INSTALL}")
    size = path.stat().st_size
    if size != model.size:
        raise MissingWeightsError(
            f"MediaPipe model {model.name} at {path} is {size} bytes, not the {model.size} of "
            f"{PACKAGE_PIN} (a damaged or other release): reinstall with {INSTALL} --force-reinstall")
    return path


@cache
def model_sha256(model: ModelFile) -> str:
    return file_sha256(model_path(model))


def check_models(models: tuple[ModelFile, ...] = ALL) -> None:
    """Raise ``MissingWeightsError`` for the first model that is missing or damaged, or when
    the LiteRT runtime is not installed."""
    for model in models:
        model_path(model)
    if not package_folders("ai_edge_litert"):
        raise MissingWeightsError(
            "--face-backend mediapipe runs its models with LiteRT, which is not installed: "
            "pip install ai-edge-litert")


class TFLiteModel:
    """One ``.tflite`` model on one CPU thread: ``model(x)`` returns its outputs, in order.

    One thread because parallelism comes from measuring videos side by side (one per core).
    """

    def __init__(self, model: ModelFile, threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.model = model
        self._interpreter = Interpreter(model_path=str(model_path(model)), num_threads=threads)
        self._interpreter.allocate_tensors()
        (self._input,) = self._interpreter.get_input_details()
        self._outputs = [d["index"] for d in self._interpreter.get_output_details()]
        self.input_shape = tuple(int(v) for v in self._input["shape"])  # (1, H, W, 3)

    @property
    def input_size(self) -> tuple[int, int]:
        """(width, height) the model takes."""
        return self.input_shape[2], self.input_shape[1]

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        """``batch``: float32 ``(1, H, W, 3)``. Outputs are copies (the runtime reuses its
        buffers)."""
        self._interpreter.set_tensor(self._input["index"], np.ascontiguousarray(batch, np.float32))
        self._interpreter.invoke()
        return [self._interpreter.get_tensor(i) for i in self._outputs]
