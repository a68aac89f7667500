"""Table 6's "w/o disentanglement" (paper, section 5.3): ``disentangle: false`` builds one
encoder of the whole frame; it trains, its checkpoint says what it is, encode-latents stores
whole-frame latents, and an s2m model on them generates a video through it, all from the
checkpoints without a flag."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from gaia.training.vae.build import build_vae, count_parameters
from gaia.training.vae.config import build_vae_config, load_vae_config
from gaia.training.vae.frame_vae import FrameVAE
from gaia.training.vae.model import TwoEncoderVAE

QUIET = {"log": lambda _: None}


@pytest.fixture(scope="module")
def frame_vae_run(sample_shards, tmp_path_factory) -> Path:
    """vae-tiny without disentanglement, trained 3 steps on the real sample by `train_vae`."""
    from gaia.training.vae.train import VaeTrainOptions, train_vae

    out = tmp_path_factory.mktemp("frame-vae") / "run"
    train_vae(VaeTrainOptions(
        config="vae-tiny", shards=str(sample_shards), out=str(out), batch_size=4,
        num_workers=0, pairs_per_clip=2, max_frames=4, batches_per_epoch=5, perceptual="none",
        log_every=1, image_every=0, checkpoint_every=3, max_steps=3,
        overrides=("disentangle=false", "lr=1e-3")), **QUIET)
    return out


@pytest.fixture(scope="module")
def frame_latents(frame_vae_run, sample_shards, tmp_path_factory) -> Path:
    from gaia.pipeline.latents.job import run_encode_latents

    out = tmp_path_factory.mktemp("frame-latents")
    run_encode_latents(frame_vae_run, str(sample_shards), out, use_ray=False, batch_frames=32,
                       **QUIET)
    return out


def test_one_encoder_and_no_split():
    config = load_vae_config("vae-tiny", disentangle=False)
    model = build_vae(config)
    assert isinstance(model, FrameVAE)
    assert [name for name, _ in model.named_children()] == ["frame_encoder", "decoder"]
    assert not hasattr(model, "motion_encoder") and not hasattr(model, "appearance_encoder")
    frames = torch.rand(2, 3, 64, 64) * 2 - 1
    out, posterior = model(frames, sample=False)
    assert out.shape == frames.shape
    assert list(posterior.parts()) == ["frame"]
    # The frame's latent has the appearance encoder's layout: downsampling 8, C_a channels.
    assert posterior.frame.mean.shape == (2, *config.s2m_latent_shape) == (2, 4, 8, 8)
    assert config.latent_kind == "frame" and load_vae_config("vae-tiny").latent_kind == "motion"
    with pytest.raises(ValueError, match="FrameVAE"):
        TwoEncoderVAE(config)
    counts = count_parameters(config)
    paper = count_parameters(load_vae_config("vae-tiny"))
    assert set(counts) == {"frame_encoder", "decoder", "total", "discriminator"}
    # One encoder less: the frame encoder is the appearance encoder's twin.
    assert counts["frame_encoder"] == paper["appearance_encoder"]
    assert counts["total"] == 722_651 and paper["total"] == 1_106_243


def test_trains_and_the_checkpoint_says_what_it_is(frame_vae_run, read_metrics):
    from gaia.inference.vae import LoadedVae

    rows = read_metrics(frame_vae_run)
    assert [row["step"] for row in rows] == [1, 2, 3]
    assert all(np.isfinite(row["loss"]) and "kl_frame" in row and "kl_motion" not in row
               for row in rows)
    run = json.loads((frame_vae_run / "config.json").read_text())
    assert run["model"]["disentangle"] is False
    vae = LoadedVae.load(frame_vae_run, "cpu")
    assert isinstance(vae.model, FrameVAE) and not vae.disentangled and vae.step == 3
    assert vae.appearance_of(np.zeros((64, 64, 3), np.uint8)) is None
    with pytest.raises(ValueError, match="disentangle: false"):
        vae.motion_latents(torch.zeros(1, 68, 2))
    # A checkpoint from before the switch has no key: it reads as the paper's VAE.
    old = {k: v for k, v in load_vae_config("vae-tiny").to_dict().items() if k != "disentangle"}
    assert build_vae_config(old).disentangle is True


def latent_members(folder: Path) -> list[dict]:
    samples: dict[str, dict] = {}
    for shard in sorted(folder.glob("*.tar")):
        with tarfile.open(shard) as archive:
            for member in archive.getmembers():
                key, _, name = member.name.partition(".")
                samples.setdefault(key, {})[name] = archive.extractfile(member).read()
    return list(samples.values())


def test_encode_latents_stores_the_frames_own_latents(frame_vae_run, frame_latents,
                                                      sample_shards):
    from gaia.evaluation.s2m import source_clips
    from gaia.inference.vae import LoadedVae
    from gaia.training.data.clip_decode import decode_frames

    stats = json.loads((frame_latents / "stats.json").read_text())
    assert stats["latent_shape"] == [4, 8, 8] and stats["vae"]["latent"] == "frame"
    sample = latent_members(frame_latents)[0]
    meta = json.loads(sample["json"])
    assert meta["latent"] == "frame" and meta["latent_schema_version"] == 2
    motion = np.load(io.BytesIO(sample["motion.npy"]))
    assert motion.shape == (meta["frames"], 256)
    # The stored latents are the posterior means of the clip's frames, as the loader sees them.
    source = source_clips(str(sample_shards), {meta["key"]})[meta["key"]]
    frames, _, _ = decode_frames(source["mp4"], np.arange(3), 64)
    vae = LoadedVae.load(frame_vae_run, "cpu")
    expected = vae.s2m_latents(frames, None).numpy()
    np.testing.assert_allclose(motion[:3], expected, rtol=1e-4, atol=1e-5)


def test_an_s2m_model_on_frame_latents_generates_through_the_vae(
        frame_vae_run, frame_latents, portrait_png, tmp_path):
    import soundfile

    from gaia.generation.generate import GenerateConfig, generate
    from gaia.samples.speech import speech_of_duration
    from gaia.training.s2m.sampler_config import SamplerConfig
    from gaia.training.s2m.train import S2mTrainOptions, train_s2m

    s2m = tmp_path / "s2m"
    train_s2m(S2mTrainOptions(
        config="s2m-tiny", shards=str(frame_latents), out=str(s2m), max_steps=2, batch_size=2,
        num_workers=0, batches_per_epoch=2, log_every=1, image_every=0, checkpoint_every=2),
        **QUIET)
    run = json.loads((s2m / "config.json").read_text())
    assert run["latents"]["vae"]["latent"] == "frame" and run["latents"]["latent_shape"] == [
        4, 8, 8]
    speech = tmp_path / "speech.wav"
    soundfile.write(speech, speech_of_duration(1.0), 16000)
    record = generate(portrait_png, speech, frame_vae_run, s2m, tmp_path / "out.mp4",
                      GenerateConfig(sampler=SamplerConfig(steps=2)), progress=lambda _: None)
    assert record["frames"] == 25 and record["vae"]["disentangle"] is False
    assert (tmp_path / "out.mp4").stat().st_size > 0
