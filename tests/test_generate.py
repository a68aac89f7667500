"""``gaia generate``: a portrait and speech become a playable talking video with the speech's
duration; pose, seed and the checks on inputs and checkpoints behave as documented."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import soundfile
import torch

from gaia.common.pixel_format import rgb_array
from gaia.generation.generate import GenerateConfig, SpeechFeaturesMismatch, generate
from gaia.training.s2m.sampler_config import SamplerConfig

QUIET = {"progress": lambda _: None}
FAST = SamplerConfig(steps=4)


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory) -> Path:
    from gaia.samples.speech import speech_of_duration

    path = tmp_path_factory.mktemp("speech") / "hello.wav"
    soundfile.write(path, speech_of_duration(2.0), 16000)
    return path


def frames_of(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([rgb_array(f) for f in container.decode(video=0)])


def test_generate_writes_a_talking_video_as_long_as_the_speech(
        portrait_png, speech_wav, vae_checkpoint, s2m_run, tmp_path):
    out = tmp_path / "talk.mp4"
    lines: list[str] = []
    record = generate(portrait_png, speech_wav, vae_checkpoint, s2m_run, out,
                      GenerateConfig(sampler=FAST), progress=lines.append)
    seconds = soundfile.info(str(speech_wav)).duration
    with av.open(str(out)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert (video.codec_context.width, video.codec_context.height) == (64, 64)
        audio_s = float(audio.duration * audio.time_base)
        samples = sum(frame.samples for frame in container.decode(audio=0))
    assert audio_s == pytest.approx(seconds, abs=0.1)
    assert samples / audio.rate == pytest.approx(seconds, abs=0.1)
    frames = frames_of(out)
    assert len(frames) == record["frames"] == round(seconds * 25)
    assert frames.std() > 1.0  # decoded pictures, not a blank
    assert any("motion window" in line for line in lines)
    assert any("wrote" in line for line in lines)
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["frames"] == len(frames) and saved["seed"] == 0
    assert saved["speech_features"]["name"] == "logmel"
    assert len(saved["pose_track"]) == len(frames)


def test_a_fixed_pose_shows_in_the_pose_track_and_changes_the_video(
        portrait_png, speech_wav, vae_checkpoint, s2m_run, tmp_path):
    videos = {}
    for name, spec in (("front", "fixed:0,0,0"), ("turned", "fixed:5,30,-10")):
        out = tmp_path / f"{name}.mp4"
        record = generate(portrait_png, speech_wav, vae_checkpoint, s2m_run, out,
                          GenerateConfig(pose=spec, sampler=FAST), **QUIET)
        track = np.array(json.loads(out.with_suffix(".json").read_text())["pose_track"])
        assert track.shape == (record["frames"], 3)
        videos[name] = frames_of(out)
        if name == "turned":
            assert np.allclose(track, [5, 30, -10])
    assert np.abs(videos["front"].astype(int) - videos["turned"].astype(int)).mean() > 0.1
    predicted = generate(portrait_png, speech_wav, vae_checkpoint, s2m_run,
                         tmp_path / "predicted.mp4", GenerateConfig(sampler=FAST), **QUIET)
    track = np.array(predicted["pose_track"])
    assert np.isfinite(track).all() and track.std(axis=0).max() > 0  # follows the speech


def test_the_same_seed_gives_the_same_video(portrait_png, speech_wav, vae_checkpoint,
                                           s2m_run, tmp_path):
    config = GenerateConfig(sampler=SamplerConfig("sde", steps=4), seed=5)
    outs = [tmp_path / f"{n}.mp4" for n in ("a", "b", "c")]
    generate(portrait_png, speech_wav, vae_checkpoint, s2m_run, outs[0], config, **QUIET)
    generate(portrait_png, speech_wav, vae_checkpoint, s2m_run, outs[1], config, **QUIET)
    other = GenerateConfig(sampler=SamplerConfig("sde", steps=4), seed=6)
    generate(portrait_png, speech_wav, vae_checkpoint, s2m_run, outs[2], other, **QUIET)
    first, again, different = (frames_of(p) for p in outs)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, different)


def test_clear_errors_for_bad_portraits_audio_and_checkpoints(
        portrait_png, speech_wav, vae_checkpoint, s2m_run, new_vae_checkpoint, tmp_path):
    from gaia.samples.build import portrait

    out = tmp_path / "out.mp4"
    two = tmp_path / "two.png"
    cv2.imwrite(str(two), cv2.cvtColor(np.hstack([portrait(), portrait()]), cv2.COLOR_RGB2BGR))
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((320, 320, 3), 128, np.uint8))
    noise = tmp_path / "noise.wav"
    noise.write_bytes(b"RIFF not really a wav file")
    run = (vae_checkpoint, s2m_run, out)
    with pytest.raises(ValueError, match="2 faces found in the portrait"):
        generate(two, speech_wav, *run, **QUIET)
    with pytest.raises(ValueError, match="no face found in the portrait"):
        generate(blank, speech_wav, *run, **QUIET)
    with pytest.raises(ValueError, match="cannot read the speech"):
        generate(portrait_png, noise, *run, **QUIET)
    with pytest.raises(ValueError, match="pose"):
        generate(portrait_png, speech_wav, *run, GenerateConfig(pose="sideways"), **QUIET)
    assert not out.exists()

    # A checkpoint whose speech features differ from the extractor at hand.
    from gaia.training.checkpoint import resolve_checkpoint

    state = torch.load(resolve_checkpoint(s2m_run), weights_only=True)
    state["task"]["stats"]["speech_features"]["dim"] = 81
    other = tmp_path / "other-s2m" / "step-00000001.pt"
    other.parent.mkdir()
    torch.save(state, other)
    with pytest.raises(SpeechFeaturesMismatch, match="dim: trained 81, here 80"):
        generate(portrait_png, speech_wav, vae_checkpoint, other, out, **QUIET)
    # A VAE other than the one whose latents the s2m model learned.
    stranger = new_vae_checkpoint(tmp_path / "stranger", seed=9)
    with pytest.raises(ValueError, match="give the VAE that `gaia encode-latents` used"):
        generate(portrait_png, speech_wav, stranger, s2m_run, out, **QUIET)
