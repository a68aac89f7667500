"""Curation at real framing (issue 11): faces found in wide shots, cuts, identities, roll/yaw.

Real faces (the astronaut photo, the carphone man) placed as footage frames them: a face of
8-15 % of a 720p or 1080p frame, and a 64 px face in a 4K frame, over a real street scene.
"""

from __future__ import annotations

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest

from gaia.filters import geometry
from gaia.filters.thresholds import load_thresholds
from gaia.pipeline.measure.config import MeasureConfig
from gaia.samples.clips import portrait_motion
from gaia.samples.shipped import astronaut
from gaia.samples.wide_shots import SIZES, wide_shot_frames

FPS = 25.0


@pytest.fixture(scope="module")
def measure(tmp_path_factory):
    from gaia.pipeline.measure.video import Models, measure_video

    config = MeasureConfig()
    models = Models.load(config)
    out = tmp_path_factory.mktemp("framing-metrics")

    def run(path, name):
        record = measure_video(str(path), name, "framing", out, models, config)
        return record, pq.read_table(out / f"{name}.parquet")

    return run


@pytest.mark.parametrize(("size", "face_px", "seconds"), [
    ("720p", 146, 2.0), ("1080p", 200, 2.0), ("4k", 64, 1.0), ("720p", 64, 2.0),
])
def test_faces_at_ordinary_framing_are_found(measure, tmp_path, size, face_px, seconds):
    """Before: frames shrunk to 480 px for HOG, no face in any of these. Now every frame."""
    from gaia.pipeline.media.video_writer import write_video

    frames = wide_shot_frames(portrait_motion(astronaut(), int(seconds * FPS), seed=1),
                              SIZES[size], face_px)
    path = write_video(tmp_path / f"{size}_{face_px}.mp4", frames, FPS)
    record, table = measure(path, f"wide_{size}_{face_px}")
    assert record["status"] == "ok" and "no_face" not in record["flags"], record
    assert record["frames_with_face"] >= 0.95 * record["num_frames"], record
    # The box is in source pixels and about the face placed (HOG's box is brow to chin, a
    # little narrower than the hull the placement was measured by).
    widths = np.array(table["face_px"].to_pylist(), dtype=float)
    assert 0.7 * face_px < np.nanmedian(widths) < 1.2 * face_px
    # The analysis size follows the face: at least the source for the small faces.
    if face_px == 64:
        assert record["analysis_side"] == max(SIZES[size])


def test_a_cut_between_two_people_splits_and_gives_two_identities(measure, tmp_path):
    import decord

    from gaia.pipeline.media.video_writer import write_video
    from gaia.samples.shipped import carphone_path

    first = list(wide_shot_frames(portrait_motion(astronaut(), 90, seed=2), SIZES["720p"], 146))
    car = decord.VideoReader(str(carphone_path())).get_batch(list(range(90))).asnumpy()
    # The carphone man enlarged to 720 px high, the sides filled from his own frame's edge.
    second = [np.pad(cv2.resize(f, (880, 720)), ((0, 0), (200, 200), (0, 0)), mode="edge")
              for f in car]
    path = write_video(tmp_path / "cut.mp4", first + second, FPS)
    record, table = measure(path, "cut_two_people")
    cuts = np.array(table["cut_score"].to_pylist(), dtype=float)
    assert np.nanargmax(cuts) == 90 and cuts[90] >= 0.5
    assert np.nanmax(np.delete(cuts, 90)) < 0.3
    person = np.array(table["person"].to_pylist())
    assert set(person[5:85]) == {person[10]} and set(person[95:175]) == {person[100]}
    assert person[10] != person[100] and record["persons"] == 2
    from gaia.filters.base import code
    from gaia.filters.funnel import decide_video
    from gaia.filters.registry import measure_columns

    measures = {name: np.array(table[name].to_pylist(), dtype=np.float32)
                for name in measure_columns() if name in table.column_names}
    measures["duplicate_match"] = np.full(len(person), np.nan, np.float32)  # one video: none
    decision = decide_video(measures, FPS, "s", load_thresholds(
        "vae", ["frontal.enabled=false"]))
    assert decision.reasons[90] == code("shot_cut")
    assert all(s.stop <= 90 or s.start > 90 for s in decision.segments)


def test_roll_alone_is_frontal_and_a_turn_is_not(astronaut_landmarks):
    """The eye-line reading: rolls of 10 and 20 degrees stay near 180; the paper's literal
    reading counts roll twice; a turned head leaves 180 on both."""
    from gaia.pipeline.face.detect import primary_face_landmarks
    from gaia.samples.clips import turn_head

    image = astronaut()
    limit = load_thresholds("s2m").frontal.max_deviation_deg
    for roll in (10, 20):
        matrix = cv2.getRotationMatrix2D((256, 256), roll, 1.0)
        rolled = cv2.warpAffine(image, matrix, (512, 512), borderMode=cv2.BORDER_REFLECT101)
        points = primary_face_landmarks(rolled)[None]
        assert abs(geometry.frontal_angle_eye_line(points)[0] - 180) < 5
        assert abs(geometry.frontal_angle(points)[0] - 180) > 1.4 * roll - 5
    turned = primary_face_landmarks(turn_head(image, astronaut_landmarks, 0.15))[None]
    assert abs(geometry.frontal_angle_eye_line(turned)[0] - 180) > limit
