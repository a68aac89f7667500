"""gaia.samples: real speech, real faces, H.264/AAC writing and the demo sample built from them."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

RATE = 16000


@pytest.fixture(scope="module")
def face() -> tuple[np.ndarray, np.ndarray]:
    """The demo portrait and its dlib landmarks."""
    from gaia.pipeline.face.detect import primary_face_landmarks
    from gaia.samples.build import portrait

    image = portrait()
    landmarks = primary_face_landmarks(image)
    assert landmarks is not None and landmarks.shape == (68, 2)
    return image, landmarks


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, list]:
    from gaia.samples.build import build_demo_sample

    out = tmp_path_factory.mktemp("demo")
    return out, build_demo_sample(out, seconds=3.5)


def _polygon_mask(shape: tuple[int, ...], points: np.ndarray) -> np.ndarray:
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(points).astype(np.int32)), 1)
    return mask.astype(bool)


def _patch(image: np.ndarray, centre: np.ndarray, half: int) -> np.ndarray:
    x, y = np.round(centre).astype(int)
    return image[y - half : y + half + 1, x - half : x + half + 1].astype(np.float32)


# Speech ------------------------------------------------------------------------------------


def test_synthesized_speech_is_loud_and_in_the_speech_band():
    from gaia.samples.speech import synthesize_speech

    audio = synthesize_speech("The quick brown fox jumps over the lazy dog.")
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert 1.0 < audio.size / RATE < 6.0
    assert np.abs(audio).max() <= 1.0
    assert np.sqrt(np.mean(audio**2)) > 0.03
    power = np.abs(np.fft.rfft(audio)) ** 2
    freqs = np.fft.rfftfreq(audio.size, 1 / RATE)
    assert power[(freqs >= 80) & (freqs <= 4000)].sum() / power.sum() > 0.8
    # Resampled, not truncated: half the rate gives half the samples.
    half = synthesize_speech("The quick brown fox jumps over the lazy dog.", sample_rate=8000)
    assert half.size == pytest.approx(audio.size / 2, rel=0.01)


def test_silence_is_zeros_of_the_right_length():
    from gaia.samples.speech import silence

    quiet = silence(1.25)
    assert quiet.dtype == np.float32 and quiet.shape == (20000,)
    assert not quiet.any()


@pytest.mark.parametrize(("seconds", "rate"), [(2.345, 16000), (4.0, 22050), (0.5, 8000)])
def test_speech_of_duration_has_exactly_the_length_asked(seconds, rate):
    from gaia.samples.speech import speech_of_duration

    audio = speech_of_duration(seconds, rate, seed=3)
    assert audio.dtype == np.float32 and audio.shape == (round(seconds * rate),)
    assert np.sqrt(np.mean(audio**2)) > 0.02
    assert np.array_equal(audio, speech_of_duration(seconds, rate, seed=3))


def test_speech_of_duration_depends_on_seed_and_has_no_long_gaps():
    from gaia.samples.speech import speech_of_duration

    first, second = speech_of_duration(6.0, seed=0), speech_of_duration(6.0, seed=1)
    assert not np.array_equal(first, second)
    # Pauses stay short, so a VAD with a little hold hears one stretch of speech.
    quiet = np.abs(first) < 0.01
    longest, run = 0, 0
    for sample in quiet:
        run = run + 1 if sample else 0
        longest = max(longest, run)
    assert longest / RATE < 0.45


def test_speech_does_not_depend_on_what_was_spoken_before():
    # eSpeak NG carries state from one text to the next inside a process; the sample (and the
    # golden values measured on it) must come out the same whatever a test spoke earlier.
    from gaia.samples.speech import _synth_cached, synthesize_speech

    text = "Speech synthesis is a real voice for testing."
    _synth_cached.cache_clear()
    first = synthesize_speech(text)
    _synth_cached.cache_clear()
    synthesize_speech("The quick brown fox jumps over the lazy dog. How are you?")
    again = synthesize_speech(text)
    assert first.size > RATE and np.array_equal(first, again)


# Writing -----------------------------------------------------------------------------------


def _gradient_frames(count: int, height: int, width: int):
    ys, xs = np.mgrid[0:height, 0:width]
    for index in range(count):
        red = (xs * 2 + index * 3) % 256
        green = (ys * 2) % 256
        blue = np.full_like(xs, 128)
        yield np.stack([red, green, blue], axis=-1).astype(np.uint8)


def test_write_video_streams_frames_and_audio_into_a_readable_mp4(tmp_path):
    import av
    import decord

    from gaia.pipeline.media.video_writer import write_video
    from gaia.samples.speech import speech_of_duration

    frames = _gradient_frames(37, 75, 101)  # a generator, odd sizes
    path = write_video(tmp_path / "clip.mp4", frames, 25.0, speech_of_duration(1.48), RATE)
    assert path == tmp_path / "clip.mp4" and sorted(p.name for p in tmp_path.iterdir()) == [
        "clip.mp4"
    ]
    reader = decord.VideoReader(str(path))
    assert len(reader) == 37
    first = reader[0].asnumpy()
    assert first.shape == (76, 102, 3)  # padded to even
    expected = next(_gradient_frames(1, 75, 101))
    assert np.abs(first[:75, :101].astype(int) - expected).mean() < 12
    assert reader.get_avg_fps() == pytest.approx(25.0)
    with av.open(str(path)) as container:
        audio = container.streams.audio[0]
        assert audio.codec_context.name == "aac" and audio.sample_rate == RATE
        samples = sum(frame.samples for frame in container.decode(audio=0))
    assert samples / RATE == pytest.approx(1.48, abs=0.1)


def test_write_video_without_audio_has_no_audio_stream(tmp_path):
    import av

    from gaia.pipeline.media.video_writer import write_video

    path = write_video(tmp_path / "silent.mp4", _gradient_frames(10, 64, 64), 30000 / 1001)
    with av.open(str(path)) as container:
        assert not container.streams.audio
        assert container.streams.video[0].average_rate == pytest.approx(30000 / 1001, rel=1e-4)


def test_write_video_leaves_nothing_when_the_frames_fail(tmp_path):
    from gaia.pipeline.media.video_writer import write_video

    def failing():
        yield from _gradient_frames(5, 32, 32)
        raise RuntimeError("camera unplugged")

    with pytest.raises(RuntimeError, match="camera unplugged"):
        write_video(tmp_path / "broken.mp4", failing(), 25.0)
    assert list(tmp_path.iterdir()) == []


def test_write_vfr_video_keeps_irregular_timestamps(tmp_path):
    import av
    import decord

    from gaia.pipeline.media.video_writer import write_vfr_video

    rng = np.random.default_rng(0)
    times = np.concatenate([[0.0], np.cumsum(rng.uniform(1 / 30, 1 / 20, 39))])
    path = write_vfr_video(tmp_path / "vfr.mp4", _gradient_frames(40, 48, 64), times)
    reader = decord.VideoReader(str(path))
    assert len(reader) == 40
    starts = reader.get_frame_timestamp(range(40))[:, 0]
    steps = np.diff(starts)
    assert steps.std() > 0.002  # irregular, unlike a constant-rate file
    np.testing.assert_allclose(steps, np.diff(times), atol=0.0015)
    with av.open(str(path)) as container:
        decoded = [float(frame.time) for frame in container.decode(video=0)]
    np.testing.assert_allclose(decoded, times, atol=0.0015)


# Frame makers ------------------------------------------------------------------------------


def _steps(frames: list[np.ndarray]) -> np.ndarray:
    """Frame-to-frame translation (pixels) by phase correlation."""
    grays = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32) for f in frames]
    pairs = zip(grays[:-1], grays[1:], strict=True)
    return np.array([np.hypot(*cv2.phaseCorrelate(a, b)[0]) for a, b in pairs])


def test_portrait_motion_is_smooth_and_add_shake_is_not(face):
    from gaia.samples.clips import add_shake, portrait_motion

    image, _ = face
    calm = list(portrait_motion(image, 40, seed=2))
    assert all(f.shape == image.shape and f.dtype == np.uint8 for f in calm)
    assert not np.array_equal(calm[0], calm[-1])  # it does move
    assert np.max(_steps(calm)) < 0.6
    shaky = list(add_shake(calm, 10.0, seed=2))
    assert np.median(_steps(shaky)) > 5.0


def test_paint_mask_covers_mouth_and_chin_but_not_the_eyes(face):
    from gaia.pipeline.face.occlusion import lower_face_occlusion
    from gaia.samples.clips import MASK_RGB, paint_mask

    image, landmarks = face
    masked = paint_mask(image, landmarks)
    changed = np.abs(masked.astype(int) - image).sum(axis=-1)
    mouth = _polygon_mask(image.shape, landmarks[48:68])
    assert (changed[mouth] > 20).mean() > 0.95
    chin = _patch(changed, landmarks[8] - (0, 4), 2)
    assert (chin > 20).all()
    for eye in (landmarks[36:42], landmarks[42:48]):
        assert changed[_polygon_mask(image.shape, eye)].max() == 0
    # The mouth now has the mask's chroma, not skin's.
    mask_chroma = cv2.cvtColor(np.array([[MASK_RGB]], np.uint8), cv2.COLOR_RGB2YCrCb)[0, 0, 1:]
    chroma = cv2.cvtColor(masked, cv2.COLOR_RGB2YCrCb)[..., 1:][mouth].astype(int)
    assert np.abs(np.median(chroma, axis=0) - mask_chroma).max() <= 3
    # The pipeline's occlusion measure sees it (and not on the bare face).
    assert lower_face_occlusion(image, landmarks) < 0.1
    assert lower_face_occlusion(masked, landmarks) > 0.9


def test_turn_head_moves_nose_and_mouth_but_not_the_eye_corners(face):
    from gaia.samples.clips import turn_head

    image, landmarks = face
    turned = turn_head(image, landmarks, strength=0.25)
    gray_before = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    gray_after = cv2.cvtColor(turned, cv2.COLOR_RGB2GRAY)
    for corner in (36, 45):
        before, after = (
            _patch(gray_before, landmarks[corner], 3),
            _patch(gray_after, landmarks[corner], 3),
        )
        assert np.abs(after - before).mean() < 2.0
    nose = _patch(gray_before, landmarks[30], 6)
    assert np.abs(_patch(gray_after, landmarks[30], 6) - nose).mean() > 5.0
    # The nose tip's patch is found again shifted along the eye line by about 0.25 x IOD.
    iod = np.linalg.norm(landmarks[45] - landmarks[36])
    x, y = np.round(landmarks[30]).astype(int)
    search = gray_after[y - 30 : y + 31, x - 30 : x + 31]
    score = cv2.matchTemplate(search, nose.astype(np.uint8), cv2.TM_SQDIFF)
    dy, dx = np.unravel_index(np.argmin(score), score.shape)
    shift = np.array([dx, dy]) - (30 - 6)
    along = shift @ ((landmarks[45] - landmarks[36]) / iod)
    assert along == pytest.approx(0.25 * iod, rel=0.35)


def test_turn_head_with_roll_leaves_the_frontal_band(face):
    from gaia.filters.geometry import frontal_angle
    from gaia.pipeline.face.detect import primary_face_landmarks
    from gaia.samples.clips import turn_head

    image, landmarks = face
    found = primary_face_landmarks(turn_head(image, landmarks, 0.15, 8.0))
    assert found is not None  # still a face to dlib
    before, after = frontal_angle(np.stack([landmarks, found]))
    assert abs(before - 180) < 10 and abs(after - 180) > 22


# The demo sample ---------------------------------------------------------------------------


def test_demo_sample_writes_every_listed_file(demo):
    out, clips = demo
    index = json.loads((out / "sample.json").read_text())
    listed = index["clips"]
    assert [c["path"] for c in listed] == [c.path.relative_to(out).as_posix() for c in clips]
    assert len(listed) == 15 and len({c["path"] for c in listed}) == 15
    for entry in listed:
        assert (out / entry["path"]).is_file(), entry
        assert entry["kind"] in {"talk", "filter", "noface", "edge", "bad"}
        assert entry["expectation"]
    assert not list(out.rglob("*.partial"))


def test_demo_sample_videos_decode_with_the_expected_shape(demo):
    import av
    import decord

    out, clips = demo
    expected = {
        "talk/astronaut_talking.mp4": (88, (320, 320), True),
        "talk/carphone_talking.mp4": (120, (288, 352), True),
        "filters/astronaut_silent.mp4": (88, (320, 320), True),
        "filters/astronaut_masked.mp4": (88, (320, 320), True),
        "filters/astronaut_shaky.mp4": (88, (320, 320), True),
        "filters/turned_man.mp4": (88, (320, 320), True),
        "nofaces/cartoon.mp4": (88, (360, 640), True),
        "edge/carphone_noaudio.mp4": (120, (288, 352), False),
        "edge/astronaut_short.mp4": (25, (320, 320), True),
    }
    for relative, (count, size, has_audio) in expected.items():
        reader = decord.VideoReader(str(out / relative))
        assert len(reader) == count, relative
        assert reader[0].shape[:2] == size, relative
        with av.open(str(out / relative)) as container:
            assert bool(container.streams.audio) == has_audio, relative
    reader = decord.VideoReader(str(out / "edge/astronaut_vfr.mp4"))
    steps = np.diff(reader.get_frame_timestamp(range(len(reader)))[:, 0])
    assert steps.min() >= 1 / 30 - 0.002 and steps.max() <= 1 / 20 + 0.002
    assert steps.std() > 0.003
    # The silent clip is silent, the others speak.
    with av.open(str(out / "filters/astronaut_silent.mp4")) as container:
        quiet = np.concatenate([f.to_ndarray().ravel() for f in container.decode(audio=0)])
    assert np.abs(quiet).max() < 1e-3
    with av.open(str(out / "talk/astronaut_talking.mp4")) as container:
        spoken = np.concatenate([f.to_ndarray().ravel() for f in container.decode(audio=0)])
    assert np.sqrt(np.mean(spoken**2)) > 0.02


def test_demo_sample_bad_files_do_not_open(demo):
    import av

    out, _ = demo
    assert (out / "bad/empty.mp4").stat().st_size == 0
    good = (out / "edge/astronaut_short.mp4").read_bytes()
    truncated = (out / "bad/truncated.mp4").read_bytes()
    assert truncated == good[: len(truncated)] and len(truncated) == int(len(good) * 0.4)
    for name in ("empty.mp4", "truncated.mp4", "not_a_video.mp4"):
        with pytest.raises(av.error.FFmpegError), av.open(str(out / "bad" / name)) as container:
            next(container.decode(video=0))


def test_build_main_prints_one_line_per_clip(tmp_path, monkeypatch, capsys):
    from gaia.samples import build

    calls = []

    def fake_build(out_dir, seconds, fps):
        calls.append((out_dir, seconds, fps))
        return [
            build.SampleClip(out_dir / "talk/a.mp4", "talk", "passes all filters"),
            build.SampleClip(out_dir / "bad/b.mp4", "bad", "fails: empty_file"),
        ]

    monkeypatch.setattr(build, "build_demo_sample", fake_build)
    assert build.main([str(tmp_path), "--seconds", "4.5"]) == 0
    assert calls == [(tmp_path, 4.5, 25.0)]
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert "talk/a.mp4" in lines[0] and "passes all filters" in lines[0]
    assert "bad/b.mp4" in lines[1] and "fails: empty_file" in lines[1]


def test_demo_sidecars_read_back_with_their_cues_and_reasons(demo):
    """The instruct preset's input (samples.instruction_cues): every format is read, markup
    stripped, and the broken sidecar's bad cues carry their reasons."""
    from gaia.pipeline.instructions.sidecar import read_video_cues

    out, _ = demo
    index = json.loads((out / "sample.json").read_text())
    assert sorted(Path(p).suffix for p in index["sidecars"]) == [
        ".json", ".json", ".srt", ".srt", ".vtt"]
    read = {p: read_video_cues(str(out / (p.split(".")[0] + ".mp4")))
            for p in index["sidecars"]}
    assert all(cues.status == "ok" for cues in read.values())
    listening = read["filters/astronaut_listening.vtt"].cues
    assert [c.text for c in listening] == ["Look at the camera", "Nod your head slowly"]
    assert listening[1].start_s == pytest.approx(index["seconds"] * 0.5, abs=0.05)
    shaky = {c.text: c.reason for c in read["filters/astronaut_shaky.cues.json"].cues}
    assert shaky == {"Please smile": "bad_time", "Raise your eyebrows": "",
                     "Close your eyes": "overlapping_cue"}
