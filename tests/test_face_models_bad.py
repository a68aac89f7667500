"""Bad input to the MediaPipe face models: a missing or damaged model file is one line naming
it and its package, before any video is read; a frame the runtime refuses costs that frame."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from gaia.common.weights import MissingWeightsError
from gaia.pipeline.face.tflite import model_files


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """A copy of the mediapipe folder's model files the test can damage."""
    real = model_files.package_dir()
    for model in model_files.ALL:
        target = tmp_path / model.relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(real / model.relative, target)
    monkeypatch.setattr(model_files, "package_dir", lambda: tmp_path)
    return tmp_path


def test_missing_model_file_names_it_and_its_package(fake_package):
    (fake_package / model_files.PALM.relative).unlink()
    with pytest.raises(MissingWeightsError) as caught:
        model_files.check_models()
    message = str(caught.value)
    assert "\n" not in message
    assert "palm_detection_lite" in message and "pip install --no-deps 'mediapipe==" in message


def test_damaged_model_file_is_refused_by_size(fake_package):
    path = fake_package / model_files.FACE_MESH.relative
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(MissingWeightsError, match=r"face_landmark .* 1000 bytes, not the 1242398"):
        model_files.model_path(model_files.FACE_MESH)


def test_measure_refuses_to_start_without_the_models(fake_package):
    from gaia.pipeline.measure.config import MeasureConfig
    from gaia.pipeline.measure.provenance import check_models_available

    (fake_package / model_files.FACE_FULL.relative).unlink()
    with pytest.raises(MissingWeightsError, match="face_detection_full_range_sparse"):
        check_models_available(MeasureConfig(backend="mediapipe"))
    # dlib without hands needs nothing from the wheel.
    check_models_available(MeasureConfig(backend="dlib", hands=False))


def test_package_not_installed(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mediapipe" else real(name, *a))
    with pytest.raises(MissingWeightsError, match="--face-backend dlib"):
        model_files.package_dir()


def test_a_frame_the_runtime_refuses_costs_that_frame(tmp_path):
    import pyarrow.parquet as pq

    from gaia.pipeline.measure.config import MeasureConfig
    from gaia.pipeline.measure.video import Models, measure_video
    from gaia.samples.media_truth import feat_file

    config = MeasureConfig(backend="mediapipe")
    models = Models.load(config)
    fit = models.landmarker.fit
    calls = {"n": 0}

    def refusing(rgb, crop):
        calls["n"] += 1
        if calls["n"] == 30:
            raise RuntimeError("tensor data is not valid")  # what LiteRT raises
        return fit(rgb, crop)

    models.landmarker.fit = refusing
    record = measure_video(str(feat_file("single_face.mp4")), "single", "bad", tmp_path,
                           models, config)
    assert record["status"] == "ok"
    assert "frame_errors" in record["flags"] and "tensor data is not valid" in record["error"]
    marks = pq.read_table(tmp_path / "single.parquet").column("landmarks").to_pylist()
    missing = [i for i, v in enumerate(marks) if v is None]
    assert len(missing) == 1 and record["frames_with_face"] == 71
    assert np.isfinite(np.asarray(marks[missing[0] + 1], float)).all()
