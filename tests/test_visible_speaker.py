"""The visible-speaker rule (silence filter, GAIA A.1 "lip movements and speech are not aligned")
on real faces under real speech (``gaia.samples.speaker_cases``), measured by the measure stage.

Non-speakers: a real woman laughing and crying with a hand over her mouth, a real man talking
his own unheard words, each under a real two-person conversation: the rule alone keeps under
1 s of each. The old rule (motion OR a weightless sync confidence of 0.55) kept 0.6 s and 3.0 s
of them: both move their mouths. A real portrait whose mouth is moved by the conversation it
carries keeps at least 90 % of its speech.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from gaia.filters.base import KEPT, code
from gaia.filters.segments import frame_durations
from gaia.filters.silence import silence_filter
from gaia.filters.thresholds import load_thresholds


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    from gaia.pipeline.measure.config import MeasureConfig
    from gaia.pipeline.measure.video import Models, measure_video
    from gaia.samples.speaker_cases import build_case

    folder = tmp_path_factory.mktemp("speakers")
    config = MeasureConfig()
    models = Models.load(config)
    out = {}
    for name in ("laughing_woman", "carphone_talker", "portrait_conversation"):
        video = build_case(name, folder)
        record = measure_video(str(video), name, "cases", folder, models, config)
        assert record["status"] == "ok", record["error"]
        table = pq.read_table(Path(folder) / f"{name}.parquet")
        out[name] = ({c: table.column(c).to_numpy(zero_copy_only=False).astype(np.float64)
                      for c in ("time_s", "speech_prob", "mouth_motion", "sync_offset_frames",
                                "sync_confidence", "sync_agreement")}, record["fps"])
    return out


def _seconds(measures: dict, fps: float) -> tuple[float, float]:
    """(seconds of speech, seconds the visible-speaker rule keeps of it)."""
    silence = load_thresholds("s2m").section("silence")
    durations = frame_durations(measures["time_s"], fps)
    kept = silence_filter(measures, silence).reasons == KEPT
    heard = silence_filter(measures, replace(silence, visible_speaker=False)).reasons == KEPT
    return float(durations[heard].sum()), float(durations[kept].sum())


@pytest.mark.parametrize("name", ["laughing_woman", "carphone_talker"])
def test_real_non_speakers_under_real_speech_are_dropped(measured, name):
    measures, fps = measured[name]
    speech, kept = _seconds(measures, fps)
    assert speech > 3.0  # the conversation is heard over the face
    assert kept < 1.0, f"{name}: {kept:.1f} s of {speech:.1f} s kept"
    reasons = silence_filter(measures, load_thresholds("s2m").section("silence")).reasons
    assert (reasons == code("not_speaking")).mean() > 0.8


def test_the_laughing_womans_lag_is_noise_and_the_speakers_is_steady(measured):
    woman, _ = measured["laughing_woman"]
    speaker, _ = measured["portrait_conversation"]
    assert np.nanstd(woman["sync_offset_frames"]) > 4.0
    assert np.nanstd(speaker["sync_offset_frames"]) < 2.0
    assert np.nanmedian(speaker["sync_agreement"]) > 0.8 > 0.2 > np.nanmedian(
        woman["sync_agreement"])


def test_a_mouth_moved_by_its_own_speech_keeps_it(measured):
    measures, fps = measured["portrait_conversation"]
    speech, kept = _seconds(measures, fps)
    assert speech > 8.0
    assert kept >= 0.9 * speech, f"{kept:.1f} s of {speech:.1f} s kept"


def test_old_runs_derive_the_agreement_from_their_stored_lags(tmp_path, measured):
    """A run measured before metrics version 4 has lags but no ``sync_agreement``: reading it
    derives the column, so its thresholds still tune."""
    import pyarrow as pa

    from gaia.pipeline.measures import read_measures
    from gaia.pipeline.run_dir import RunDir

    measures, _ = measured["laughing_woman"]
    run = RunDir(tmp_path)
    run.metrics.mkdir(parents=True)
    old = {c: pa.array(measures[c].astype(np.float32 if c != "time_s" else np.float64))
           for c in ("time_s", "sync_offset_frames", "sync_confidence")}
    pq.write_table(pa.table(old), run.metrics / "old.parquet")
    read = read_measures(run, "old", ["time_s", "sync_agreement"])
    np.testing.assert_allclose(read["sync_agreement"], measures["sync_agreement"], atol=1e-6)
