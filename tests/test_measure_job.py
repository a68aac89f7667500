"""The measure job on an embedded local Ray: outputs, summary, resume, and refused settings."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
import yaml

from gaia.pipeline.measure.config import MeasureConfig
from gaia.pipeline.measure.job import run_measure
from gaia.pipeline.measure.provenance import ConfigMismatchError
from gaia.schemas.metrics import METRICS_SCHEMA
from gaia.schemas.videos import VIDEOS_SCHEMA


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, talking_clip):
    from gaia.samples.shipped import carphone_path

    folder = tmp_path_factory.mktemp("raw")
    (folder / "spk1").mkdir()
    (folder / "spk2").mkdir()
    shutil.copy(talking_clip, folder / "spk1" / "astronaut.mp4")
    shutil.copy(carphone_path(), folder / "spk2" / "carphone.mp4")
    (folder / "spk2" / "empty.mp4").write_bytes(b"")
    (folder / "spk2" / "notes.mkv").write_text("not a video")
    yield folder
    import ray

    ray.shutdown()


@pytest.fixture(scope="module")
def first_run(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    lines: list[str] = []
    summary = run_measure([str(inputs)], out, workers=2, log=lines.append)
    return out, summary, lines


def test_outputs_follow_the_schemas(first_run):
    out, summary, lines = first_run
    videos = pq.read_table(out / "videos.parquet")
    assert videos.schema.equals(VIDEOS_SCHEMA, check_metadata=False)
    rows = {r["path"].rsplit("/", 1)[-1]: r for r in videos.to_pylist()}
    assert set(rows) == {"astronaut.mp4", "carphone.mp4", "empty.mp4", "notes.mkv"}
    assert (rows["astronaut.mp4"]["status"], rows["astronaut.mp4"]["source"]) == ("ok", "spk1")
    assert rows["carphone.mp4"]["reason"] == "no_audio"
    assert rows["empty.mp4"]["reason"] == "empty_file"
    assert rows["notes.mkv"]["reason"] == "not_a_video"
    assert all(r["error"] for r in rows.values() if r["status"] == "failed")

    metrics = sorted(p.name for p in (out / "metrics").glob("*.parquet"))
    ok_ids = sorted(f"{r['video_id']}.parquet" for r in rows.values() if r["status"] == "ok")
    assert metrics == ok_ids
    table = pq.read_table(out / "metrics")
    assert table.num_rows == sum(r["num_frames"] for r in rows.values() if r["status"] == "ok")
    assert set(METRICS_SCHEMA.names) <= set(table.schema.names)

    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["measure"]["backend"] == "mediapipe" and config["measure"]["landmarks"] == "auto"
    assert len(config["models"]["landmarks"]["sha256"]) == 64
    assert not list(out.rglob(".*.partial"))

    assert summary.status == {"ok": 2, "failed": 2}
    assert summary.failed_by_reason == {"empty_file": 1, "not_a_video": 1}
    assert summary.hours_measured == pytest.approx((6.0 + 4.0) / 3600, rel=0.02)
    assert len([line for line in lines if line.startswith("[measure] ") and "/4 " in line]) == 4


def test_resume_skips_finished_and_measures_the_rest(first_run, inputs):
    out, _, _ = first_run
    before = pq.read_table(out / "videos.parquet").to_pylist()
    carphone = next(r for r in before if r["path"].endswith("carphone.mp4"))
    # A job killed mid-video: no status record, a partial metrics file left behind.
    (out / "status" / f"{carphone['video_id']}.json").unlink()
    (out / "metrics" / f"{carphone['video_id']}.parquet").rename(
        out / "metrics" / f".{carphone['video_id']}.parquet.1234abcd.partial")

    lines: list[str] = []
    summary = run_measure([str(inputs)], out, workers=2, log=lines.append)
    assert (summary.skipped, summary.measured_now) == (3, 1)
    assert any("removed 1 partial" in line for line in lines)
    after = pq.read_table(out / "videos.parquet").to_pylist()
    assert sorted(r["video_id"] for r in after) == sorted(r["video_id"] for r in before)
    assert len({r["video_id"] for r in after}) == 4
    assert (out / "metrics" / f"{carphone['video_id']}.parquet").is_file()
    assert not list(out.rglob(".*.partial"))

    again = run_measure([str(inputs)], out, workers=2, log=lines.append)
    assert (again.skipped, again.measured_now) == (4, 0)


def test_retry_failed_measures_failures_again(first_run, inputs):
    out, _, _ = first_run
    summary = run_measure([str(inputs)], out, workers=2, retry_failed=True, log=lambda _: None)
    assert (summary.skipped, summary.measured_now) == (2, 2)
    assert summary.status == {"ok": 2, "failed": 2}


def test_other_settings_on_the_same_run_are_refused(first_run, inputs):
    out, _, _ = first_run
    with pytest.raises(ConfigMismatchError, match="min_side"):
        run_measure([str(inputs)], out, MeasureConfig(min_side=320), log=lambda _: None)


def test_a_run_whose_config_says_max_side_resumes(first_run, inputs, caplog, monkeypatch):
    # Runs written before the rename hold `max_side` (the floor, now `min_side`) in config.yaml.
    from gaia.common import deprecation

    monkeypatch.setattr(deprecation, "_SAID", set())
    out, _, _ = first_run
    written = yaml.safe_load((out / "config.yaml").read_text())
    written["measure"]["max_side"] = written["measure"].pop("min_side")
    (out / "config.yaml").write_text(yaml.safe_dump(written, sort_keys=False))
    with caplog.at_level("WARNING", logger="gaia.deprecation"):
        again = run_measure([str(inputs)], out, workers=2, log=lambda _: None)
    assert (again.skipped, again.measured_now) == (4, 0)
    said = [r.getMessage() for r in caplog.records if r.name == "gaia.deprecation"]
    assert len(said) == 1 and "'max_side'" in said[0] and "'min_side'" in said[0]
    measure = yaml.safe_load((out / "config.yaml").read_text())["measure"]
    assert measure["min_side"] == 640 and "max_side" not in measure


def test_cli_help_and_clear_errors(tmp_path):
    gaia = [sys.executable, "-m", "gaia.cli"]
    shown = subprocess.run([*gaia, "curate", "measure", "--help"], capture_output=True,
                           text=True, check=True).stdout
    assert "--address" in shown and "resumes" in shown and "ray job submit" in shown
    missing = subprocess.run([*gaia, "curate", "measure", str(tmp_path / "nope.mp4"), "--out",
                              str(tmp_path / "run")], capture_output=True, text=True)
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr and "Traceback" not in missing.stderr


def test_fan_without_weights_names_the_file_and_where_it_goes(tmp_path, monkeypatch):
    from gaia.pipeline.face.landmarks import FAN_WEIGHTS_FILE, MissingWeightsError
    from gaia.pipeline.measure.provenance import check_models_available

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(MissingWeightsError) as caught:
        check_models_available(MeasureConfig(landmarks="fan"))
    message = str(caught.value)
    assert FAN_WEIGHTS_FILE in message and str(tmp_path / "torch") in message
    assert "--landmark-backend dlib" in message
