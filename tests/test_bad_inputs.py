"""Bad input never stops the job: every kind ends with a status and a reason (ground rule 5).

These go through the supervised worker process, as the Ray job does, so a hang and a crash are
tested for real.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from gaia.pipeline.measure.config import MeasureConfig
from gaia.pipeline.measure.worker_process import IsolatedMeasurer
from tests.conftest import portrait_clip


@pytest.fixture(scope="module")
def measurer(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    worker = IsolatedMeasurer(MeasureConfig(stall_timeout_s=60.0), out / "metrics", out / "logs")
    yield worker
    worker.close()


@pytest.fixture(scope="module")
def bad_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bad")


def measure(measurer, path) -> dict:
    return measurer.measure(str(path), Path(path).stem, "bad")


def metrics_of(measurer, record) -> pq.ParquetFile:
    return pq.read_table(measurer.metrics_dir / f"{record['video_id']}.parquet")


def test_zero_byte_file(measurer, bad_dir):
    path = bad_dir / "empty.mp4"
    path.write_bytes(b"")
    record = measure(measurer, path)
    assert (record["status"], record["reason"]) == ("failed", "empty_file")
    assert "zero bytes" in record["error"]


def test_not_a_video(measurer, bad_dir):
    path = bad_dir / "notes.mp4"
    path.write_text("these are meeting notes, not a video\n" * 50)
    record = measure(measurer, path)
    assert (record["status"], record["reason"]) == ("failed", "not_a_video")
    assert str(path) in record["error"]


def test_truncated_file(measurer, bad_dir, talking_clip):
    data = talking_clip.read_bytes()
    path = bad_dir / "truncated.mp4"
    path.write_bytes(data[: int(len(data) * 0.4)])
    record = measure(measurer, path)
    # An mp4 cut before its index cannot be opened; one cut after it decodes partly. Either way
    # the input gets a status, and a partial decode is flagged, never silently taken as whole.
    if record["status"] == "failed":
        assert record["reason"] in ("not_a_video", "decode_error")
    else:
        assert "truncated" in record["flags"]


def test_missing_file(measurer, bad_dir):
    record = measure(measurer, bad_dir / "gone.mp4")
    assert (record["status"], record["reason"]) == ("failed", "not_found")


def test_no_audio_track(measurer):
    from gaia.samples.shipped import carphone_path

    record = measure(measurer, carphone_path())
    assert record["status"] == "ok" and record["has_audio"] is False
    assert "no_audio" in record["flags"]
    assert metrics_of(measurer, record)["speech_prob"].null_count == record["num_frames"]


def test_no_face(measurer, cartoon_clip):
    record = measure(measurer, cartoon_clip)
    assert record["status"] == "ok" and record["reason"] == "no_face"
    assert record["has_audio"] is True


def test_several_faces(measurer, bad_dir):
    from gaia.samples.shipped import astronaut

    head = astronaut()[0:300, 90:350]
    pair = np.concatenate([head, head[:, ::-1]], axis=1)  # two real faces side by side
    path = portrait_clip(bad_dir / "two_faces.mp4", 1.0, None, image=pair)
    record = measure(measurer, path)
    assert record["status"] == "ok" and "multiple_faces" in record["flags"]
    assert np.median(metrics_of(measurer, record)["num_faces"]) == 2


def test_very_short(measurer, bad_dir):
    path = portrait_clip(bad_dir / "short.mp4", 1.0, None)
    record = measure(measurer, path)
    assert record["status"] == "ok" and record["reason"] == "too_short"
    assert record["num_frames"] == 25


def test_very_large_frames_are_measured_shrunk_in_source_pixels(measurer, bad_dir):
    import cv2

    from gaia.samples.shipped import astronaut

    head = astronaut()[0:300, 90:350]
    big = cv2.resize(head, (1872, 2160), interpolation=cv2.INTER_CUBIC)
    big = np.pad(big, ((0, 0), (984, 984), (0, 0)))  # 3840 x 2160, the head in the middle
    path = portrait_clip(bad_dir / "uhd.mp4", 0.4, None, image=big)
    record = measure(measurer, path)
    assert record["status"] == "ok" and "downscaled" in record["flags"]
    assert (record["width"], record["height"]) == (3840, 2160)
    table = metrics_of(measurer, record)
    points = np.array(table.filter(table["landmarks"].is_valid())["landmarks"].to_pylist()[0])
    # The face sits in the middle of the 3840-wide frame: source pixels, not the 640 px copy.
    assert 1400 < points[:, 0].mean() < 2400


def test_variable_frame_rate(measurer, bad_dir):
    from gaia.pipeline.media.video_writer import write_vfr_video
    from gaia.samples.clips import portrait_motion
    from gaia.samples.shipped import astronaut

    rng = np.random.default_rng(0)
    times = np.concatenate([[0.0], np.cumsum(rng.choice([1 / 30, 1 / 20], size=99))])
    path = write_vfr_video(bad_dir / "vfr.mp4", portrait_motion(astronaut(), 100, seed=2), times)
    record = measure(measurer, path)
    assert record["status"] == "ok" and "vfr" in record["flags"]
    measured = np.array(metrics_of(measurer, record)["time_s"])
    assert np.allclose(measured, times, atol=2e-3)


def test_a_hanging_decode_is_stopped_and_the_next_video_still_runs(tmp_path, talking_clip):
    fifo = tmp_path / "stalled_mount.mp4"
    os.mkfifo(fifo)  # opening it blocks forever, as a read from a dead network mount does
    # Long enough for a real video's first chunk on a busy machine, short enough for a test.
    worker = IsolatedMeasurer(MeasureConfig(stall_timeout_s=10.0), tmp_path / "m", tmp_path / "l")
    try:
        started = time.monotonic()
        record = measure(worker, fifo)
        assert (record["status"], record["reason"]) == ("failed", "timeout")
        assert time.monotonic() - started < 30
        assert measure(worker, talking_clip)["status"] == "ok"
    finally:
        worker.close()


def test_a_crashing_worker_costs_one_video(tmp_path, talking_clip):
    worker = IsolatedMeasurer(MeasureConfig(), tmp_path / "m", tmp_path / "l")
    worker._ensure_child()
    child = worker._child

    def kill_soon() -> None:
        time.sleep(0.5)
        child.kill()  # what a segfault in a decoder looks like from outside

    try:
        threading.Thread(target=kill_soon).start()
        record = measure(worker, talking_clip)
        assert (record["status"], record["reason"]) == ("failed", "crashed")
        assert "worker process died" in record["error"]
        assert not list((tmp_path / "m").glob("*.parquet"))  # no half-written metrics
        assert measure(worker, talking_clip)["status"] == "ok"
    finally:
        worker.close()


def test_replies_that_arrive_together_are_all_read(tmp_path):
    """Several reply lines in one pipe read (a fast video: probe, progress, done) must not be
    left in a buffer where the supervisor's wait cannot see them."""
    read_end, write_end = os.pipe()
    os.write(write_end, b'{"type": "probe"}\n{"type": "progress"}\n{"type": "done"}\n')
    worker = IsolatedMeasurer(MeasureConfig(), tmp_path / "m", tmp_path / "l")
    worker._replies = read_end
    try:
        kinds = [worker._read_reply(0.5)["type"] for _ in range(3)]
        assert kinds == ["probe", "progress", "done"]
        os.close(write_end)
        assert worker._read_reply(0.5) is None  # the child closed its end
    finally:
        os.close(read_end)
