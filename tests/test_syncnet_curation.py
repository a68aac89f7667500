"""SyncNet (syncnet_v2 layout) in curation: the measure stage's streaming pass gives the same
per-frame offsets and confidences as scoring the whole clip at once, writes them to metrics, and
the lip_sync filter reads them in SyncNet's units. Random weights (no published file is
shipped): what is checked is the plumbing and the arithmetic, not the network's judgement."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from gaia.pipeline.speech.syncnet import SyncNet

FPS, RATE = 25.0, 16000


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    model = SyncNet().eval()
    path = tmp_path_factory.mktemp("syncnet") / "syncnet_v2.model"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def talking():
    """2 s of the real astronaut whose mouth moves with real speech, and that speech."""
    from gaia.pipeline.face.detect import primary_face_landmarks
    from gaia.samples.build import portrait
    from gaia.samples.speech import speech_of_duration
    from gaia.samples.talking import mouth_amounts, talking_portrait

    image = portrait()
    points = primary_face_landmarks(image)
    audio = speech_of_duration(2.0, RATE, seed=5)
    frames = np.stack(list(talking_portrait(image, points, mouth_amounts(audio, RATE, 50, FPS))))
    box = np.array([*points.min(axis=0), *points.max(axis=0)], np.float32)
    return frames, np.tile(box, (len(frames), 1)), audio


def test_streaming_tap_equals_scoring_the_whole_clip(weights, talking):
    from gaia.pipeline.measure.syncnet_tap import SyncNetTap
    from gaia.pipeline.speech.syncnet import load_syncnet
    from gaia.pipeline.speech.syncnet_crops import face_crops
    from gaia.pipeline.speech.syncnet_scores import frame_sync, syncnet_distances

    model = load_syncnet(weights)
    frames, boxes, audio = talking
    tap = SyncNetTap(model, FPS)
    for start in range(0, len(frames), 7):  # chunks that do not line up with the windows
        tap.add(frames[start:start + 7], boxes[start:start + 7], start)
    columns = tap.finish(audio, len(frames), np.ones(len(frames), bool))
    lags, dists = syncnet_distances(model, face_crops(frames, boxes), audio, FPS)
    offset, confidence = frame_sync(lags, dists, n_frames=len(frames), fps=FPS)
    np.testing.assert_allclose(columns["syncnet_confidence"], confidence, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(columns["syncnet_offset_frames"], offset)
    np.testing.assert_array_equal(columns["syncnet_lag_frames"], np.abs(offset))


def test_measure_writes_syncnet_columns_and_lip_sync_reads_them(tmp_path, weights, talking):
    from gaia.filters.base import code
    from gaia.filters.lip_sync import LipSyncThresholds, lip_sync_filter
    from gaia.pipeline.measure.config import MeasureConfig
    from gaia.pipeline.measure.video import Models, measure_video
    from gaia.pipeline.media.video_writer import write_video

    frames, _, audio = talking
    video = write_video(tmp_path / "talk.mp4", list(frames), FPS, audio, RATE)
    config = MeasureConfig(syncnet_weights=str(weights), hands=False, identity=False)
    record = measure_video(str(video), "talk", "s", tmp_path, Models.load(config), config)
    assert record["status"] == "ok", record["error"]
    table = pq.read_table(tmp_path / "talk.parquet")
    conf = table.column("syncnet_confidence").to_numpy(zero_copy_only=False)
    offset = table.column("syncnet_offset_frames").to_numpy(zero_copy_only=False)
    lag = table.column("syncnet_lag_frames").to_numpy(zero_copy_only=False)
    assert np.isfinite(conf).all() and (conf >= 0).all()
    assert (np.abs(offset) <= 15).all()
    np.testing.assert_array_equal(lag, np.abs(offset))
    measures = {"syncnet_confidence": conf, "syncnet_lag_frames": lag}
    strict = lip_sync_filter(measures, LipSyncThresholds(min_syncnet_confidence=float(
        conf.max()) + 1))
    assert (strict.reasons == code("out_of_sync")).all()
    loose = lip_sync_filter(measures, LipSyncThresholds(min_syncnet_confidence=-1.0,
                                                        max_syncnet_lag_frames=15.0))
    assert (loose.reasons == 0).all()


def test_measure_refuses_a_missing_or_wrong_syncnet_file_before_starting(tmp_path):
    from gaia.common.weights import MissingWeightsError
    from gaia.pipeline.measure.config import MeasureConfig
    from gaia.pipeline.measure.provenance import check_models_available

    with pytest.raises(MissingWeightsError, match="syncnet_v2"):
        check_models_available(MeasureConfig(syncnet_weights=str(tmp_path / "nope.model")))
    other = tmp_path / "other.pt"
    torch.save({"conv.weight": torch.zeros(3)}, other)
    with pytest.raises(ValueError, match="not syncnet_v2.model: missing keys netcnnaud"):
        check_models_available(MeasureConfig(syncnet_weights=str(other)))
