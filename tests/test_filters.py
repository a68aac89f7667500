"""Filters, segments, funnel and settings on hand-made measures (pure NumPy, no media)."""

from __future__ import annotations

import numpy as np
import pytest

from gaia.common.config_files import ConfigError
from gaia.filters.base import code, reasons
from gaia.filters.funnel import decide_video
from gaia.filters.segments import SegmentRules, find_segments
from gaia.filters.thresholds import (
    CurationThresholds,
    available_presets,
    load_thresholds,
)

FPS = 25.0


def measures(n: int, **overrides) -> dict[str, np.ndarray]:
    """n frames of a frontal, steady, unoccluded, speaking face; override any column."""
    base = {
        "time_s": np.arange(n) / FPS,
        "num_faces": np.ones(n, np.int8),
        "frontal_angle_deg": np.full(n, 180.0, np.float32),
        "jitter_landmarks": np.full(n, 0.01, np.float32),
        "jitter_box": np.full(n, 0.01, np.float32),
        "occlusion": np.full(n, 0.02, np.float32),
        "hand_cover": np.zeros(n, np.float32),
        "speech_prob": np.full(n, 0.9, np.float32),
        "frontal_angle_image_deg": np.full(n, 180.0, np.float32),
        "yaw_deg": np.full(n, 2.0, np.float32),
        "face_px": np.full(n, 200.0, np.float32),
        "sharpness": np.full(n, 0.4, np.float32),
        "cut_score": np.full(n, 0.02, np.float32),
        "identity_distance": np.full(n, np.nan, np.float32),
        "mouth_motion": np.full(n, 0.04, np.float32),
        "sync_confidence": np.full(n, 0.7, np.float32),
        "sync_agreement": np.full(n, 0.9, np.float32),
        "syncnet_confidence": np.full(n, np.nan, np.float32),
        "syncnet_lag_frames": np.full(n, np.nan, np.float32),
    }
    base.update(overrides)
    return base


def test_segments_at_the_3_second_boundary():
    rules = SegmentRules(min_s=3.0, max_s=10.0)
    times = np.arange(400) / FPS
    keep = np.ones(400, bool)
    keep[74] = False  # frames 0-73: 74 frames = 2.96 s, too short
    keep[150] = False  # frames 75-149: 75 frames = 3.00 s, just long enough
    keep[151:] = False
    segments = find_segments(keep, times, FPS, rules)
    assert [(s.start, s.stop) for s in segments] == [(75, 150)]
    assert segments[0].duration_s == pytest.approx(3.0)


def test_long_runs_split_evenly_and_never_below_the_minimum():
    rules = SegmentRules(min_s=3.0, max_s=10.0)
    times = np.arange(int(23.5 * FPS)) / FPS
    segments = find_segments(np.ones(len(times), bool), times, FPS, rules)
    durations = [s.duration_s for s in segments]
    assert len(segments) == 3  # 23.5 s -> three pieces of about 7.8 s
    assert max(durations) <= 10.0 and min(durations) >= 7.8 - 0.05
    assert segments[0].start == 0 and segments[-1].stop == len(times)
    assert all(a.stop == b.start for a, b in zip(segments, segments[1:], strict=False))


def test_segments_follow_true_times_with_variable_frame_rate():
    steps = np.where(np.arange(120) % 2 == 0, 1 / 20, 1 / 30)  # 24 fps on average
    times = np.concatenate([[0.0], np.cumsum(steps[:-1])])
    segments = find_segments(np.ones(120, bool), times, 24.0, SegmentRules(3.0, 10.0))
    assert len(segments) == 1 and segments[0].duration_s == pytest.approx(times[-1] + 1 / 24)


@pytest.mark.parametrize(("column", "value", "reason"), [
    ("frontal_angle_deg", 215.0, "not_frontal"),
    ("jitter_landmarks", 0.3, "jitter"),
    ("jitter_box", 0.3, "jitter"),
    ("occlusion", 0.9, "occluded"),
    ("hand_cover", 0.6, "occluded"),
    ("speech_prob", 0.02, "silence"),
    ("speech_prob", np.nan, "no_audio"),
    ("num_faces", 2, "multiple_faces"),
    ("num_faces", 0, "no_face"),
    ("yaw_deg", 40.0, "not_frontal"),
    ("face_px", 40.0, "small_face"),
    ("sharpness", 0.05, "blurry"),
    ("cut_score", 0.9, "shot_cut"),
    ("identity_distance", 0.9, "identity_change"),
    ("sync_agreement", 0.1, "not_speaking"),
    ("syncnet_confidence", 1.5, "out_of_sync"),
    ("syncnet_lag_frames", 9.0, "out_of_sync"),
])
def test_each_measure_trips_its_own_filter_only(column, value, reason):
    data = measures(250)
    bad = data[column].copy()
    bad[100:200] = value
    data[column] = bad
    # No hold around speech here (it is tested below): the bad frames are exactly 100-199.
    decision = decide_video(data, FPS, "src", load_thresholds("s2m", ["silence.hold_s=0"]))
    dropped = decision.reasons[100:200]
    assert (dropped == code(reason)).all()
    funnel = decision.funnel
    assert funnel.first_frames[code(reason)] == 100
    others = [r for r in reasons()[1:] if r not in (reason, "short_run")]
    assert all(funnel.any_frames[code(r)] == 0 for r in others)
    # 100 frames on each side: frames 0-99 (4 s) kept; frames 200-249 (2 s) are a short run.
    assert [(s.start, s.stop) for s in decision.segments] == [(0, 100)]
    assert funnel.first_frames[code("short_run")] == 50


def test_silence_hold_bridges_pauses_between_words():
    speech = np.full(250, 0.9, np.float32)
    speech[100:105] = 0.0  # a 0.2 s pause between words
    speech[200:250] = 0.0  # 2 s of silence
    decision = decide_video(measures(250, speech_prob=speech), FPS, "s",
                            load_thresholds("s2m"))
    assert (decision.reasons[100:105] == 0).all()
    assert (decision.reasons[215:250] == code("silence")).all()


def test_funnel_adds_up_and_merges():
    rng = np.random.default_rng(0)
    funnels = []
    for seed in range(3):
        n = 2000
        data = measures(n)
        data["frontal_angle_deg"] = (180 + rng.normal(0, 15, n)).astype(np.float32)
        data["occlusion"] = rng.beta(1, 6, n).astype(np.float32)
        data["num_faces"] = rng.choice([0, 1, 1, 1, 2], n).astype(np.int8)
        funnels.append(decide_video(data, FPS, f"src{seed % 2}", CurationThresholds()).funnel)
    total = funnels[0] + funnels[1] + funnels[2]
    assert total.videos == 3 and total.input_frames == 6000
    assert total.kept_frames + total.first_frames.sum() == total.input_frames
    assert total.kept_s + total.first_s.sum() == pytest.approx(total.input_s)
    assert (total.any_frames >= total.first_frames).all()
    assert set(total.by_source) == {"src0", "src1"}
    assert total.by_source["src0"].videos == 2
    summary = total.to_json()
    assert summary["input_hours"] == pytest.approx(6000 / FPS / 3600)
    assert sum(summary["dropped_hours_first"].values()) + summary["kept_hours"] == pytest.approx(
        summary["input_hours"])


def test_presets_load_and_differ_as_the_paper_says():
    assert {"vae", "s2m"} <= set(available_presets())
    vae, s2m = load_thresholds("vae"), load_thresholds("s2m")
    assert not vae.silence.enabled and s2m.silence.enabled
    assert vae.frontal.max_deviation_deg > s2m.frontal.max_deviation_deg
    assert vae.jitter.max_box > s2m.jitter.max_box
    assert vae.segments.min_s == s2m.segments.min_s == 3.0


@pytest.mark.parametrize(("overrides", "message"), [
    (["nope.max=1"], "unknown curation config key 'nope'"),
    (["jitter.max=1"], "unknown curation config key 'jitter.max'"),
    (["jitter.max_box=-0.1"], "must be positive"),
    (["jitter.max_box=high"], "jitter.max_box must be a number"),
    (["silence.enabled=maybe"], "silence.enabled must be true or false"),
    (["segments.min_s=4", "segments.max_s=6"], "at least twice"),
    (["jitter.max_box"], "KEY=VALUE"),
    (["jitter.max_box=1e-1", "jitter.max_box=oops"], "jitter.max_box must be a number"),
])
def test_bad_settings_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_thresholds("s2m", overrides)


def test_missing_preset_lists_the_choices():
    with pytest.raises(ConfigError, match="choose one of .*s2m.*vae"):
        load_thresholds("strictest")


def test_override_applies_on_top_of_the_preset():
    thresholds = load_thresholds("vae", ["jitter.max_box=0.5", "silence.enabled=true"])
    assert thresholds.jitter.max_box == 0.5 and thresholds.silence.enabled
    assert thresholds.jitter.max_landmarks == load_thresholds("vae").jitter.max_landmarks


def test_speech_over_a_still_mouth_is_not_speaking():
    """Off-screen speech over a listening face: speech present, the mouth still and its lag
    wandering -> not_speaking. A moving mouth whose lag wanders (a laugh, a talker whose words
    are not heard) is not the speaker either; moving and in step, it is kept."""
    still = measures(250, mouth_motion=np.full(250, 0.004, np.float32),
                     sync_agreement=np.full(250, 0.2, np.float32))
    decision = decide_video(still, FPS, "s", CurationThresholds())
    assert (decision.reasons == code("not_speaking")).all()
    in_step_still = dict(still, sync_agreement=np.full(250, 0.9, np.float32))
    assert (decide_video(in_step_still, FPS, "s", CurationThresholds()).reasons
            == code("not_speaking")).all()
    moving = dict(still, mouth_motion=np.full(250, 0.04, np.float32))
    assert (decide_video(moving, FPS, "s", CurationThresholds()).reasons
            == code("not_speaking")).all()
    speaking = dict(moving, sync_agreement=np.full(250, 0.9, np.float32))
    assert (decide_video(speaking, FPS, "s", CurationThresholds()).reasons == 0).all()
    # Turned off, the same frames pass (the paper's VAD-only rule).
    off = load_thresholds(overrides=["silence.visible_speaker=false"])
    assert (decide_video(still, FPS, "s", off).reasons == 0).all()


def test_frontal_reading_eye_line_ignores_roll_and_image_reading_counts_it():
    rolled = measures(250, frontal_angle_image_deg=np.full(250, 160.0, np.float32))
    assert (decide_video(rolled, FPS, "s", CurationThresholds()).reasons == 0).all()
    literal = load_thresholds(overrides=["frontal.reading=image", "frontal.max_deviation_deg=15"])
    assert (decide_video(rolled, FPS, "s", literal).reasons == code("not_frontal")).all()
