"""Audio-visual sync (GAIA A.1, "lip movements and speech are not aligned") on real media.

A real face (the astronaut) whose real lower lip moves with real speech (eSpeak NG), written to
mp4 with the streams' starts apart; the decoders' clocks reconciled; the mouth-vs-speech lag
measured with dlib landmarks; extract shifting or dropping the clip's audio.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gaia.filters.av_sync import (
    SYNCED_CONFIDENCE,
    clip_offset_frames,
    mouth_motion,
    speech_envelope,
    sync_lags,
)
from gaia.filters.segments import Segment
from gaia.pipeline.media.decode import VideoFrames, audio_blocks, probe
from gaia.pipeline.media.stream_offsets import audio_on_video_clock, stream_start_times

FPS, RATE, SECONDS = 25.0, 16000, 6.0
N = int(SECONDS * FPS)


@pytest.fixture(scope="module")
def face():
    from gaia.pipeline.face.detect import primary_face_landmarks
    from gaia.samples.build import portrait

    image = portrait()
    return image, primary_face_landmarks(image)


@pytest.fixture(scope="module")
def speech():
    from gaia.samples.speech import speech_of_duration

    return speech_of_duration(SECONDS, RATE, seed=3)


def _talking(face, speech, still: bool = False) -> list[np.ndarray]:
    from gaia.samples.talking import mouth_amounts, talking_portrait

    amounts = np.zeros(N) if still else mouth_amounts(speech, RATE, N, FPS)
    return list(talking_portrait(*face, amounts, seed=1))


def _late(audio: np.ndarray, seconds: float) -> np.ndarray:
    """``audio`` heard ``seconds`` later (same length)."""
    shift = int(round(seconds * RATE))
    return np.concatenate([np.zeros(shift, np.float32), audio])[: audio.size]


def _lag_s(a: np.ndarray, b: np.ndarray) -> float:
    """How much later ``b`` is than ``a`` (cross-correlation peak, seconds)."""
    n = min(a.size, b.size)
    spectrum = np.fft.rfft(b[:n], 2 * n) * np.conj(np.fft.rfft(a[:n], 2 * n))
    corr = np.fft.irfft(spectrum)
    lag = int(np.argmax(corr))
    return (lag if lag < n else lag - 2 * n) / RATE


def _decoded(path) -> tuple[np.ndarray, np.ndarray, float]:
    """Frames (RGB), frame times and the audio on the video's clock, as the measure reads them."""
    frames = VideoFrames(str(path), probe(str(path)), max_side=640)
    rgb = np.concatenate([chunk.frames for chunk in frames])
    audio = np.concatenate(list(audio_blocks(str(path))))
    offset = stream_start_times(str(path)).offset_s
    return rgb, frames.times(), audio_on_video_clock(audio, RATE, offset)


def _mouth(frames) -> np.ndarray:
    from gaia.filters.geometry import mouth_open
    from gaia.pipeline.face.detect import DetectorConfig, FaceDetector
    from gaia.pipeline.face.landmarks import DlibLandmarker

    detector, marker = FaceDetector(DetectorConfig(detect_max_side=320)), DlibLandmarker()
    points, box = [], None
    for index, frame in enumerate(frames):
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if index % 5 == 0:
            found = detector(gray)
            box = found[0] if len(found) else box
        points.append(marker(gray, box))
    return mouth_open(np.stack(points))


@pytest.mark.parametrize("audio_offset_s", [-0.4, 0.4])
def test_stream_starts_and_audio_on_the_video_clock(tmp_path, face, speech, audio_offset_s):
    from gaia.pipeline.media.video_writer import write_video

    path = write_video(tmp_path / "apart.mp4", _talking(face, speech)[:50], FPS, audio=speech,
                       audio_offset_s=audio_offset_s)
    starts = stream_start_times(str(path))
    if audio_offset_s < 0:  # video starts 0.4 s after its audio
        assert starts.offset_s == pytest.approx(-0.4, abs=0.02)
    else:  # AAC's 1024 priming samples are stamped before the speech: 64 ms early
        assert starts.offset_s == pytest.approx(0.4 - 1024 / RATE, abs=0.02)
    _, _, audio = _decoded(path)
    # On the video's clock the speech starts at audio_offset_s (cut when negative).
    expected = _late(speech, audio_offset_s) if audio_offset_s > 0 else speech[int(0.4 * RATE):]
    assert abs(_lag_s(expected[:RATE], audio[:RATE])) <= 0.005


def test_audio_on_video_clock_pads_and_trims():
    audio = np.arange(10, dtype=np.float32)
    assert audio_on_video_clock(audio, 10, 0.3).tolist()[:4] == [0, 0, 0, 0]
    assert audio_on_video_clock(audio, 10, -0.3).tolist()[0] == 3
    assert audio_on_video_clock(audio, 10, 0.0) is audio


def test_lag_is_measured_through_the_file(tmp_path, face, speech):
    """Audio 0.2 s late inside a file whose video starts 0.4 s late: the lag is 5 frames."""
    from gaia.pipeline.media.video_writer import write_video

    path = write_video(tmp_path / "late.mp4", _talking(face, speech), FPS,
                       audio=np.concatenate([np.zeros(int(0.6 * RATE), np.float32), speech]),
                       audio_offset_s=-0.4)
    frames, times, audio = _decoded(path)
    offsets, confidence = sync_lags(_mouth(frames), speech_envelope(audio, RATE, times, FPS), FPS)
    assert np.mean(np.abs(offsets - 5) <= 1) >= 0.9
    assert clip_offset_frames(offsets, confidence) == pytest.approx(5, abs=1)


def test_synced_shifted_still_and_silent(face, speech):
    moving = _mouth(_talking(face, speech))
    still = _mouth(_talking(face, speech, still=True))
    times = np.arange(N) / FPS
    for late_s in (0.0, 0.2, 0.4):
        envelope = speech_envelope(_late(speech, late_s), RATE, times, FPS)
        offsets, confidence = sync_lags(moving, envelope, FPS)
        assert np.mean(np.abs(offsets - late_s * FPS) <= 1) >= 0.9, late_s
        assert np.mean(confidence >= SYNCED_CONFIDENCE) >= 0.8, late_s  # edges: less context
    _, confidence = sync_lags(still, speech_envelope(speech, RATE, times, FPS), FPS)
    assert np.mean(confidence >= SYNCED_CONFIDENCE) < 0.1
    assert np.nanmean(mouth_motion(still, FPS)) < 0.02 < np.nanmean(mouth_motion(moving, FPS))
    offsets, confidence = sync_lags(moving, speech_envelope(np.zeros_like(speech), RATE, times,
                                                            FPS), FPS)
    assert np.isnan(offsets).all() and np.isnan(confidence).all()


def test_mouth_motion_is_nan_safe():
    opening = np.array([0.1, 0.2, np.nan, 0.4, 0.4, 0.4], np.float32)
    motion = mouth_motion(opening, 50.0)  # per 1/25 s: twice the per-frame step at 50 fps
    assert np.isnan(motion[2]) and np.isfinite(np.delete(motion, 2)).all()
    assert motion[1] == pytest.approx(2 * 0.1, abs=0.05)
    assert mouth_motion(np.zeros(0), 25.0).size == 0


# --- extract: audio on the video clock, shifted by the measured lag, or dropped ---------------


def test_clip_sync_rules():
    """SyncNet's lag shifts the audio (confidence >= 3 on most frames); the weightless lag is
    recorded in the note but shifts nothing unless asked; too large a lag drops the clip."""
    from gaia.pipeline.extract.video import clip_sync

    seg = Segment(0, 100, 0.0, 4.0)
    times = np.arange(100) / 25.0
    missing = clip_sync(seg, None, times, -0.4, 0.2)
    assert (missing.sync_offset_s, missing.out_of_sync) == (0.0, False)
    assert "no SyncNet measure" in missing.note
    assert missing.audio_start_s(1.0) == pytest.approx(1.4)
    weightless = {"sync_offset_frames": np.full(100, 3.0), "sync_confidence": np.full(100, 0.9)}
    weightless["sync_offset_frames"][:10] = 20.0  # unconfident frames do not count
    weightless["sync_confidence"][:10] = 0.1
    recorded = clip_sync(seg, weightless, times, 0.0, 0.2)
    assert recorded.sync_offset_s == 0.0 and "weightless lag +0.120 s (recorded" in recorded.note
    asked = clip_sync(seg, weightless, times, 0.0, 0.2, shift_by="weightless")
    assert asked.sync_offset_s == pytest.approx(0.12) and not asked.out_of_sync
    columns = dict(weightless, syncnet_offset_frames=np.full(100, -2.0),
                   syncnet_confidence=np.full(100, 5.0))
    columns["syncnet_confidence"][:30] = 1.0  # below LatentSync's 3: not counted
    columns["syncnet_offset_frames"][:30] = 9.0
    shifted = clip_sync(seg, columns, times, 0.0, 0.2)
    assert shifted.sync_offset_s == pytest.approx(-0.08) and not shifted.out_of_sync
    assert shifted.audio_start_s(1.0) == pytest.approx(0.92)
    assert clip_sync(seg, columns, times, 0.0, 0.2, shift_by="none").sync_offset_s == 0.0
    columns["syncnet_offset_frames"][:] = 10.0
    assert clip_sync(seg, columns, times, 0.0, 0.2).out_of_sync
    columns["syncnet_confidence"][:] = 2.0
    unsure = clip_sync(seg, columns, times, 0.0, 0.2)
    assert unsure.sync_offset_s == 0.0 and "no confident" in unsure.note
    with pytest.raises(ValueError, match="shift_by"):
        clip_sync(seg, columns, times, 0.0, 0.2, shift_by="guess")


def _metrics(path, n: int, box, landmarks, sync: tuple[float, float] | None) -> None:
    pts = pa.array(np.tile(landmarks.reshape(-1), n).astype(np.float32))
    columns = {
        "time_s": pa.array(np.arange(n) / FPS),
        "face_box": pa.FixedSizeListArray.from_arrays(pa.array(np.tile(box, n), pa.float32()), 4),
        "landmarks": pa.FixedSizeListArray.from_arrays(
            pa.FixedSizeListArray.from_arrays(pts, 2), 68),
        **{name: pa.array(np.zeros(n, np.float32)) for name in ("pitch_deg", "yaw_deg",
                                                                 "roll_deg")},
    }
    if sync is not None:  # SyncNet's columns, as measure --syncnet-weights writes them
        columns["syncnet_offset_frames"] = pa.array(np.full(n, sync[0], np.float32))
        columns["syncnet_confidence"] = pa.array(np.full(n, sync[1], np.float32))
    pq.write_table(pa.table(columns), path)


@pytest.mark.parametrize("sync, late_s", [(None, 0.0), ((3.0, 6.0), 0.12), ((10.0, 6.0), None)])
def test_extract_cuts_audio_on_the_video_clock(tmp_path, face, speech, sync, late_s):
    """Video starts 0.4 s after the audio; SyncNet's lag is absent, 3 frames, 10 frames."""
    import soundfile

    from gaia.common.crop import CropConfig
    from gaia.pipeline.extract.settings import ExtractConfig, audio_chain
    from gaia.pipeline.extract.video import ClipJob, extract_video
    from gaia.pipeline.media.video_writer import write_video
    from gaia.schemas.shards import validate_sample

    image, landmarks = face
    shift = 0.0 if late_s is None else late_s  # the source's audio is late by the measured lag
    heard = np.concatenate([np.zeros(int(round((0.4 + shift) * RATE)), np.float32), speech])
    video = write_video(tmp_path / "src.mp4", _talking(face, speech)[:75], FPS, audio=heard,
                        audio_offset_s=-0.4)
    box = np.array([*landmarks.min(axis=0), *landmarks.max(axis=0)], np.float32)
    _metrics(tmp_path / "m.parquet", 75, box, landmarks, sync)
    chain = audio_chain(ExtractConfig())
    chain.normalize = lambda audio: audio  # keep levels, to compare samples
    job = ClipJob("src_0000", "src", str(video), "who", "train", 0, Segment(0, 75, 0.0, 3.0))
    (row,) = extract_video([job], tmp_path / "m.parquet", chain, CropConfig(),
                           {"schema_version": 1, "provenance": {}})
    if late_s is None:
        assert row["status"] == "dropped" and row["error"].startswith("out_of_sync")
        return
    assert row["status"] == "ok", row["error"]
    assert validate_sample(row["members"]) == []
    meta = json.loads(row["members"]["json"])
    assert meta["av_offset_s"] == pytest.approx(-0.4, abs=0.02)
    assert meta["sync_offset_s"] == pytest.approx(late_s)
    assert ("sync_note" in meta) == (sync is None)
    import io

    clip_audio, _ = soundfile.read(io.BytesIO(row["members"]["flac"]), dtype="float32")
    assert abs(_lag_s(speech[:RATE], clip_audio[:RATE])) <= 0.005
