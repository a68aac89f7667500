"""measure_video on real media: a real talking man, a real face photo, real speech, a cartoon."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from gaia.pipeline.measure.config import MeasureConfig
from gaia.pipeline.measure.video import Models, measure_video
from gaia.schemas.metrics import METRICS_SCHEMA

CONFIG = MeasureConfig()


@pytest.fixture(scope="module")
def models() -> Models:
    return Models.load(CONFIG)


@pytest.fixture(scope="module")
def measure(models, tmp_path_factory):
    out = tmp_path_factory.mktemp("metrics")

    def run(path, video_id):
        record = measure_video(str(path), video_id, "test", out, models, CONFIG)
        table = pq.read_table(out / f"{video_id}.parquet") if record["status"] == "ok" else None
        return record, table

    return run


def test_carphone_has_a_face_in_nearly_every_frame(measure):
    from gaia.samples.shipped import carphone_path

    record, table = measure(carphone_path(), "carphone")
    assert record["status"] == "ok" and record["num_frames"] == table.num_rows == 120
    assert "no_audio" in record["flags"] and record["has_audio"] is False
    assert table.schema.equals(METRICS_SCHEMA, check_metadata=False)
    with_face = np.array(table["num_faces"]) > 0
    assert with_face.mean() >= 0.95
    # Landmarks exactly where a face is, inside the 176 x 144 frame and inside the face box.
    has_landmarks = np.array(table["landmarks"].is_valid())
    assert (has_landmarks == with_face).all()
    points = np.array(table.filter(table["landmarks"].is_valid())["landmarks"].to_pylist())
    assert points.shape[1:] == (68, 2)
    assert (points[..., 0] > -5).all() and (points[..., 0] < 181).all()
    assert (points[..., 1] > -5).all() and (points[..., 1] < 149).all()
    boxes = np.array(table.filter(table["face_box"].is_valid())["face_box"].to_pylist())
    # The box is the detector's (HOG's runs brow to chin): the landmarks' centre is inside it
    # and the box is about the face's size.
    centre = points.mean(axis=1)
    assert ((centre >= boxes[:, :2]) & (centre <= boxes[:, 2:])).all()
    ratio = (boxes[:, 2] - boxes[:, 0]) / np.ptp(points[..., 0], axis=1)
    assert (ratio > 0.7).all() and (ratio < 1.4).all()
    # Speech columns are null without audio; the detector ran about every 5th frame.
    assert table["speech_prob"].null_count == table.num_rows
    assert 0.15 <= np.mean(table["detected"]) <= 0.4


def test_astronaut_clip_is_one_frontal_unoccluded_face(measure, talking_clip):
    record, table = measure(talking_clip, "astronaut")
    assert record["status"] == "ok" and record["reason"] == "ok", record
    assert record["has_audio"] and record["duration_s"] == pytest.approx(6.0, abs=0.1)
    assert (np.array(table["num_faces"]) == 1).all()
    assert abs(np.median(table["frontal_angle_deg"]) - 180) < 12
    assert np.median(table["occlusion"]) < 0.1
    assert np.nanmedian(np.array(table["jitter_landmarks"], dtype=float)) < 0.03
    assert abs(np.median(table["yaw_deg"])) < 15 and abs(np.median(table["roll_deg"])) < 10


def test_speech_scores_high_and_silence_low(measure, talking_clip):
    _, table = measure(talking_clip, "speech_then_silence")
    times = np.array(table["time_s"])
    speech = np.array(table["speech_prob"])
    assert np.isfinite(speech).all()
    assert speech[(times > 0.3) & (times < 2.7)].mean() > 0.6
    assert speech[times > 3.5].mean() < 0.1


def test_cartoon_has_no_human_face(measure, cartoon_clip):
    record, table = measure(cartoon_clip, "cartoon")
    assert record["status"] == "ok" and "no_face" in record["flags"]
    assert record["frames_with_face"] == 0
    assert table["landmarks"].null_count == table.num_rows
    assert table["frontal_angle_deg"].null_count == table.num_rows
