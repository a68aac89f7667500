"""Fully controllable generation (paper, section 5.4 and appendix D): the landmark diffusion
model trains on real curated clips, and ``gaia generate --landmarks --control`` holds the
chosen points exactly while the rest is drawn from the speech."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile
import torch

from gaia.common.crop import to_model_pixels
from gaia.common.pixel_format import rgb_array
from gaia.generation.control import POINT_SETS, control_points, coordinate_mask, read_control
from gaia.generation.generate import GenerateConfig, generate
from gaia.training.landmarks.data import (
    LANDMARK_DIM,
    image_pixels,
    is_landmark_stats,
    landmark_units,
)
from gaia.training.s2m.sampler_config import SamplerConfig
from gaia.training.s2m.vp_sde import VPSchedule, sample

QUIET = {"progress": lambda _: None}
FAST = SamplerConfig(steps=4)
MOUTH = np.arange(48, 68)


@pytest.fixture(scope="module")
def landmark_run(sample_shards, tmp_path_factory) -> Path:
    """landmarks-tiny trained briefly on the real sample's clip shards."""
    from gaia.training.landmarks.options import LandmarkTrainOptions
    from gaia.training.landmarks.train import train_landmarks

    out = tmp_path_factory.mktemp("landmarks") / "run"
    train_landmarks(LandmarkTrainOptions(
        config="landmarks-tiny", shards=str(sample_shards), out=str(out), max_steps=20,
        batch_size=4, num_workers=0, batches_per_epoch=10, log_every=10, image_every=0,
        checkpoint_every=20), log=lambda _: None)
    return out


@pytest.fixture(scope="module")
def speeches(tmp_path_factory) -> tuple[Path, Path]:
    """Two different real utterances of 2 s (the shipped speech, two stretches of it)."""
    from gaia.samples.speech import speech_of_duration

    folder = tmp_path_factory.mktemp("speech")
    audio = speech_of_duration(4.0)
    paths = folder / "first.wav", folder / "second.wav"
    soundfile.write(paths[0], audio[:32000], 16000)
    soundfile.write(paths[1], audio[32000:64000], 16000)
    return paths


def frames_of(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([rgb_array(f) for f in container.decode(video=0)]).astype(np.float32)


def opened_mouth(portrait_landmarks: np.ndarray, frames: int) -> np.ndarray:
    """The portrait's points with the mouth stretched 1.8x vertically about its centre."""
    track = np.repeat(portrait_landmarks[None].astype(np.float32), frames, axis=0)
    mouth = track[:, MOUTH]
    centre = mouth.mean(axis=1, keepdims=True)
    track[:, MOUTH, 1] = centre[..., 1] + 1.8 * (mouth[..., 1] - centre[..., 1])
    return track


def test_point_sets_and_indexes_parse():
    assert control_points("mouth").tolist() == list(range(48, 68))
    assert control_points("eyes,brows").tolist() == list(range(17, 27)) + list(range(36, 48))
    assert control_points("jaw").tolist() == list(POINT_SETS["jaw"])
    assert control_points("48,54,60-62").tolist() == [48, 54, 60, 61, 62]
    mask = coordinate_mask(control_points("0,67"))
    assert mask.shape == (LANDMARK_DIM,) and np.flatnonzero(mask).tolist() == [0, 1, 134, 135]
    for bad in ("lips", "70", "5-2", ""):
        with pytest.raises(ValueError, match="control-points"):
            control_points(bad)


def test_control_file_is_checked(tmp_path):
    shape = np.full((68, 2), 10.0, np.float32)
    np.save(tmp_path / "one.npy", shape)
    held = read_control(tmp_path / "one.npy", 5)
    assert held.shape == (5, 68, 2) and (held == 10.0).all()
    np.save(tmp_path / "short.npy", np.zeros((3, 68, 2), np.float32))
    with pytest.raises(ValueError, match="3 frames, the speech gives 5"):
        read_control(tmp_path / "short.npy", 5)
    np.save(tmp_path / "flat.npy", np.zeros((5, 136), np.float32))
    with pytest.raises(ValueError, match=r"\(T, 68, 2\)"):
        read_control(tmp_path / "flat.npy", 5)
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="plain .npy"):
        read_control(tmp_path / "objects.npy", 5)


def test_landmark_units_are_resolution_free(astronaut_landmarks):
    # The same face at crop 512 and at a 64 px VAE image gives the same units, as the
    # training loader's resize keeps pixel centres.
    crop = astronaut_landmarks.astype(np.float32)
    units = landmark_units(crop[None], 512.0)
    assert units.shape == (1, LANDMARK_DIM)
    small = to_model_pixels(crop[None], 512.0, 64)
    np.testing.assert_allclose(landmark_units(small, 64.0), units, atol=1e-6)
    np.testing.assert_allclose(image_pixels(units, 64), small, atol=1e-4)


def test_in_painting_steers_the_masked_coordinates_to_the_held_values():
    torch.manual_seed(0)
    shape = (1, 12, 6)
    known = 3.0 * torch.randn(shape)
    mask = torch.zeros(shape, dtype=torch.bool)
    mask[..., 2:4] = True  # two coordinates held on every frame
    schedule = VPSchedule()

    def denoiser(x_t, t):  # a model that trusts its input: x0 is x_t without the scale
        return x_t / schedule.alpha(t).view(-1, 1, 1)

    def draw(**held):
        return sample(denoiser, shape, schedule, SamplerConfig(steps=8),
                      generator=torch.Generator().manual_seed(1), **held)

    inpainted, free = draw(known=known, known_mask=mask), draw()
    # The sampler's result is the model's last prediction (sample_motion then sets the held
    # values exactly); replacement brings it to the held values, which free drawing misses.
    assert (inpainted[mask] - known[mask]).abs().max() < 0.1
    assert (free[mask] - known[mask]).abs().max() > 1.0


def test_landmark_run_records_what_its_motion_is(landmark_run):
    from gaia.inference.diffusion import LoadedDiffusion

    stats = json.loads((landmark_run / "landmark_stats.json").read_text())
    assert stats["vae"]["motion"] == "landmarks" and stats["latent_shape"] == [1, 68, 2]
    model = LoadedDiffusion.load(landmark_run, "cpu")
    assert is_landmark_stats(model.stats) and model.stats.latent_dim == LANDMARK_DIM
    # Units of real faces: the mean of every coordinate lies inside the crop.
    assert min(stats["motion_mean"]) > 0.0 and max(stats["motion_mean"]) < 1.0


def test_held_mouth_is_exact_and_changes_the_video(
        landmark_run, vae_checkpoint, portrait_png, speeches, tmp_path):
    free_out = tmp_path / "free.mp4"
    generate(portrait_png, speeches[0], vae_checkpoint, None, free_out,
             GenerateConfig(sampler=FAST), landmarks_path=landmark_run, **QUIET)
    portrait = np.load(tmp_path / "free.portrait_landmarks.npy")
    free = np.load(tmp_path / "free.landmarks.npy")
    frames = len(free)
    assert free.shape == (frames, 68, 2) and frames == 50

    control = opened_mouth(portrait, frames)
    np.save(tmp_path / "open.npy", control)
    held_out = tmp_path / "held.mp4"
    record = generate(portrait_png, speeches[0], vae_checkpoint, None, held_out,
                      GenerateConfig(sampler=FAST, control=tmp_path / "open.npy",
                                     control_points="mouth"),
                      landmarks_path=landmark_run, **QUIET)
    held = np.load(tmp_path / "held.landmarks.npy")
    assert record["control"] == {"file": str(tmp_path / "open.npy"), "points": "mouth"}
    np.testing.assert_array_equal(held[:, MOUTH], control[:, MOUTH])  # exact, every frame
    assert np.abs(free[:, MOUTH] - control[:, MOUTH]).max() > 1.0  # so holding did something
    # The held mouth reaches the pixels: the videos differ, and most where the mouth is.
    video_free, video_held = frames_of(free_out), frames_of(held_out)
    difference = np.abs(video_free - video_held).mean(axis=(0, 3))
    assert difference.mean() > 0.5
    top, bottom = int(control[:, MOUTH, 1].min()), int(control[:, MOUTH, 1].max()) + 1
    assert difference[max(top - 2, 0):bottom + 2].mean() > difference.mean()


def test_free_points_follow_the_speech_while_held_ones_stay(
        landmark_run, vae_checkpoint, portrait_png, speeches, tmp_path):
    tracks = []
    for number, speech in enumerate(speeches):
        portrait_out = tmp_path / f"p{number}.mp4"
        if number == 0:
            generate(portrait_png, speech, vae_checkpoint, None, portrait_out,
                     GenerateConfig(sampler=FAST), landmarks_path=landmark_run, **QUIET)
            np.save(tmp_path / "mouth.npy", np.load(tmp_path / "p0.portrait_landmarks.npy"))
        out = tmp_path / f"s{number}.mp4"
        generate(portrait_png, speech, vae_checkpoint, None, out,
                 GenerateConfig(sampler=FAST, control=tmp_path / "mouth.npy",
                                control_points="mouth", pose="fixed:0,0,0"),
                 landmarks_path=landmark_run, **QUIET)
        tracks.append(np.load(tmp_path / f"s{number}.landmarks.npy"))
    first, second = tracks
    np.testing.assert_array_equal(first[:, MOUTH], second[:, MOUTH])
    free = np.setdiff1d(np.arange(68), MOUTH)
    # Same seed, same pose, same held mouth: only the speech differs, and the rest moves.
    assert np.abs(first[:, free] - second[:, free]).mean() > 1e-3


def test_wrong_model_for_the_flag_is_refused(landmark_run, s2m_run, vae_checkpoint,
                                             portrait_png, speeches, tmp_path):
    with pytest.raises(ValueError, match="pass it as --landmarks"):
        generate(portrait_png, speeches[0], vae_checkpoint, landmark_run, tmp_path / "a.mp4",
                 GenerateConfig(sampler=FAST), **QUIET)
    with pytest.raises(ValueError, match="pass it as --s2m"):
        generate(portrait_png, speeches[0], vae_checkpoint, None, tmp_path / "b.mp4",
                 GenerateConfig(sampler=FAST), landmarks_path=s2m_run, **QUIET)
    np.save(tmp_path / "c.npy", np.zeros((68, 2), np.float32))
    with pytest.raises(ValueError, match="needs a landmark model"):
        generate(portrait_png, speeches[0], vae_checkpoint, s2m_run, tmp_path / "c.mp4",
                 GenerateConfig(sampler=FAST, control=tmp_path / "c.npy"), **QUIET)
    assert not list(tmp_path.glob("*.mp4"))
