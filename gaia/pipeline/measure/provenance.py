"""What a run was made with: resolved settings, model weights (by hash) and library versions.

Written to ``RUN_DIR/config.yaml`` before any work starts. A run directory holds the measures
of one configuration: resuming with different settings is refused, so metrics never mix.
"""

from __future__ import annotations

import platform
from dataclasses import asdict

import yaml

from gaia import __version__
from gaia.common.weights import MissingWeightsError, file_sha256, version_of
from gaia.pipeline.face.landmarks import FAN_WEIGHTS_FILE, dlib_models_dir, fan_weights_path
from gaia.pipeline.face.tflite import model_files
from gaia.pipeline.measure.config import MeasureConfig, current_settings
from gaia.pipeline.run_dir import RunDir
from gaia.schemas.atomic import write_text_atomic
from gaia.schemas.metrics import METRICS_VERSION

LIBRARIES = ("ray", "decord", "av", "dlib-bin", "opencv-python-headless", "torch", "silero-vad",
             "pyarrow", "numpy", "face-alignment", "pyloudnorm", "transformers", "demucs",
             "mediapipe", "ai-edge-litert")


class ConfigMismatchError(ValueError):
    """RUN_DIR already holds measures made with other settings."""


def check_models_available(config: MeasureConfig) -> None:
    """Fail before starting any worker when a model the config needs is missing."""
    if config.landmark_model == "fan" and not fan_weights_path().is_file():
        from gaia.pipeline.face.landmarks import FanLandmarker

        FanLandmarker()  # raises MissingWeightsError with the full instructions
    if config.landmark_model == "dlib":
        path = dlib_models_dir() / "shape_predictor_68_face_landmarks.dat"
        if not path.is_file():
            raise MissingWeightsError(f"dlib shape predictor not found at {path}")
    if config.needs_mediapipe:
        model_files.check_models(_mediapipe_models(config))
    if config.syncnet_weights:
        from gaia.pipeline.speech.syncnet import load_syncnet

        load_syncnet(config.syncnet_weights)  # missing or not syncnet_v2: says which, now


def _mediapipe_models(config: MeasureConfig) -> tuple[model_files.ModelFile, ...]:
    """The ``.tflite`` files ``config`` runs."""
    models = []
    if config.backend == "mediapipe":
        models.append(model_files.FACE_FULL if config.blazeface.model == "full"
                      else model_files.FACE_SHORT)
    if config.backend == "mediapipe" or config.landmark_model == "mesh":
        models.append(model_files.FACE_MESH)
    if config.hands:
        models += [model_files.PALM, model_files.HAND]
    return tuple(models)


def _tflite(model: model_files.ModelFile) -> dict:
    return {"name": f"mediapipe-{model.name}", "version": version_of("mediapipe"),
            "weights": model.relative, "sha256": model_files.model_sha256(model),
            "runtime": f"ai-edge-litert {version_of('ai-edge-litert')}",
            "license": "Apache-2.0"}


def model_provenance(config: MeasureConfig) -> dict:
    """Name, version, file and SHA-256 of every model the measures come from."""
    import importlib.resources

    detector = {"name": "dlib-hog-frontal", "version": version_of("dlib-bin"),
                "weights": "built into dlib", "sha256": ""}
    if config.backend == "mediapipe":
        detector = _tflite(model_files.FACE_FULL if config.blazeface.model == "full"
                           else model_files.FACE_SHORT)
    if config.landmark_model == "dlib":
        predictor = dlib_models_dir() / "shape_predictor_68_face_landmarks.dat"
        landmarks = {"name": "dlib-shape-predictor-68", "weights": predictor.name,
                     "version": version_of("dlib-bin"), "sha256": file_sha256(predictor)}
    elif config.landmark_model == "mesh":
        landmarks = _tflite(model_files.FACE_MESH) | {"mapping": "gaia.pipeline.face.tflite."
                                                                 "mesh68 (468 -> iBUG 68)"}
    else:
        landmarks = {"name": "face-alignment-2DFAN4", "weights": FAN_WEIGHTS_FILE,
                     "version": version_of("face-alignment"),
                     "sha256": file_sha256(fan_weights_path())}
    vad = importlib.resources.files("silero_vad.data").joinpath("silero_vad.jit")
    models = {
        "face_detector": detector,
        "landmarks": landmarks,
        "head_pose": {"name": "solvepnp-generic-face", "version": version_of(
            "opencv-python-headless"), "weights": "none", "sha256": ""},
        "speech_activity": {"name": "silero-vad", "version": version_of("silero-vad"),
                            "weights": "silero_vad.jit", "sha256": file_sha256(str(vad))},
    }
    if config.hands:
        models["palm_detection"] = _tflite(model_files.PALM)
        models["hand_landmarks"] = _tflite(model_files.HAND)
    if config.syncnet_weights:
        models["syncnet"] = {"name": "syncnet_v2 (joonson/syncnet_python layout)",
                             "weights": str(config.syncnet_weights),
                             "sha256": file_sha256(config.syncnet_weights)}
    if config.identity:
        embedder = dlib_models_dir() / "dlib_face_recognition_resnet_model_v1.dat"
        models["face_embedding"] = {"name": "dlib-face-recognition-resnet-v1",
                                    "version": version_of("dlib-bin"), "weights": embedder.name,
                                    "sha256": file_sha256(embedder)}
    return models


def check_run_config(run: RunDir, config: MeasureConfig) -> None:
    """Raise ``ConfigMismatchError`` if the run was measured with other settings; writes
    nothing, so a resume can check before it removes or writes anything."""
    settings = asdict(config)
    if run.config.is_file():
        previous = yaml.safe_load(run.config.read_text(encoding="utf-8")) or {}
        if previous.get("measure") is not None:  # a run of an older version: current names,
            # and settings added since at their defaults (what that version did)
            previous["measure"] = {**asdict(MeasureConfig()),
                                   **current_settings(previous["measure"], str(run.config))}
        if previous.get("measure") not in (None, settings):
            changed = sorted(k for k in settings if previous["measure"].get(k) != settings[k])
            raise ConfigMismatchError(
                f"{run.root} was measured with other settings ({', '.join(changed)} differ). "
                "Use a new --out, or the same settings to resume."
            )


def write_run_config(run: RunDir, config: MeasureConfig) -> dict:
    """Write ``config.yaml``; raise ``ConfigMismatchError`` if the run used other settings.
    An unchanged file is not rewritten: a resume on a full disk needs no space for it."""
    check_run_config(run, config)
    settings = asdict(config)
    document = {
        "gaia_version": __version__,
        "metrics_version": METRICS_VERSION,
        "measure": settings,
        "models": model_provenance(config),
        "libraries": {name: version_of(name) for name in LIBRARIES},
        "python": platform.python_version(),
    }
    text = yaml.safe_dump(document, sort_keys=False)
    if not run.config.is_file() or run.config.read_text(encoding="utf-8") != text:
        write_text_atomic(run.config, text)
    return document
