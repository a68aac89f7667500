"""The paper's speech enhancer (Defossez et al. 2020, the ``denoiser`` package's dns48 / dns64 /
master64) from local weights: missing or wrong files are refused with what to pass, a randomly
initialised model is flagged, and the denoiser of the training features travels from extract
through the latent stats to generation, which applies the same model or refuses.

No trained weights ship offline, so these tests use a random dns48 (same class, same tensors):
they check the plumbing and the refusals, not the enhancement quality."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import soundfile
import torch

from gaia.common.weights import UNTRAINED_MARKER, MissingWeightsError, UntrainedWeightsError
from gaia.generation.generate import GenerateConfig, SpeechFeaturesMismatch, generate
from gaia.pipeline.speech.denoise import denoise_identity, load_denoiser
from gaia.pipeline.speech.enhance import ENHANCERS, build_enhancer
from gaia.training.s2m.sampler_config import SamplerConfig

QUIET = {"progress": lambda _: None}


def random_enhancer(folder: Path, name: str = "dns48", seed: int = 0) -> Path:
    """A randomly initialised ``name`` saved as the package publishes its models (a state
    dict in a .th file), in a folder marked untrained."""
    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-random{seed}.th"
    torch.save(build_enhancer(name).state_dict(), path)
    (folder / UNTRAINED_MARKER).write_text("random init, for tests\n")
    return path


@pytest.fixture(scope="module")
def dns48(tmp_path_factory) -> Path:
    return random_enhancer(tmp_path_factory.mktemp("dns48"))


def test_missing_weights_name_the_published_file(tmp_path):
    for name in ENHANCERS:
        with pytest.raises(MissingWeightsError, match=ENHANCERS[name][1].rsplit("/", 1)[1]):
            load_denoiser(name)
    with pytest.raises(MissingWeightsError, match="nothing at"):
        load_denoiser("dns64", str(tmp_path / "dns64.th"))
    with pytest.raises(ValueError, match="use one of none, dns48"):
        load_denoiser("dns32")


def test_random_model_is_refused_unless_allowed_and_flagged(dns48):
    with pytest.raises(UntrainedWeightsError, match=UNTRAINED_MARKER):
        load_denoiser("dns48", str(dns48))
    enhancer = load_denoiser("dns48", str(dns48.parent), allow_untrained=True)
    provenance = enhancer.provenance
    assert provenance["name"] == "dns48" and provenance["untrained"] is True
    assert provenance["weights"] == dns48.name and provenance["hidden"] == 48
    assert len(provenance["sha256"]) == 64 and provenance["package"] == "denoiser"
    from gaia.samples.speech import speech_of_duration

    speech = speech_of_duration(1.5)
    out = enhancer(speech)
    assert out.shape == speech.shape and out.dtype == np.float32 and np.isfinite(out).all()
    assert np.abs(out - speech).mean() > 1e-4  # a model ran, not the identity


def test_wrong_or_pickled_files_are_refused(dns48, tmp_path):
    dns64 = random_enhancer(tmp_path / "dns64", "dns64")
    with pytest.raises(ValueError, match="not a dns48 model"):
        load_denoiser("dns48", str(dns64), allow_untrained=True)
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    (hostile / UNTRAINED_MARKER).write_text("")
    torch.save({"model": build_enhancer("dns48")}, hostile / "dns48.th")  # a pickled module
    with pytest.raises(ValueError, match="holds Python objects"):
        load_denoiser("dns48", str(hostile), allow_untrained=True)


@pytest.fixture(scope="module")
def denoised_run(measured_sample, dns48, vae_checkpoint, tmp_path_factory) -> tuple[Path, Path]:
    """The sample's clips extracted with the random dns48, and their latents."""
    from gaia.pipeline.extract.job import ExtractConfig, run_extract
    from gaia.pipeline.latents.job import run_encode_latents

    root = tmp_path_factory.mktemp("denoised") / "run"
    shutil.copytree(measured_sample.root, root)
    run_extract(root, "vae", config=ExtractConfig(
        shard_mb=0.5, val_fraction=0.0, denoise="dns48", denoise_weights=str(dns48),
        allow_untrained=True), log=lambda _: None, use_ray=False)
    latents = tmp_path_factory.mktemp("denoised-latents")
    run_encode_latents(vae_checkpoint, str(root / "shards" / "vae"), latents, use_ray=False,
                       log=lambda _: None)
    return root / "shards" / "vae", latents


def test_the_denoiser_travels_with_the_features(denoised_run, dns48, sample_shards):
    import webdataset as wds

    shards, latents = denoised_run
    expected = denoise_identity(
        load_denoiser("dns48", str(dns48), allow_untrained=True).provenance)
    sample = next(iter(wds.WebDataset(str(sorted(shards.glob("*.tar"))[0]), shardshuffle=False)))
    meta = json.loads(sample["json"])
    assert meta["provenance"]["speech_features"]["denoise"] == expected
    assert meta["provenance"]["denoise"]["name"] == "dns48"
    stats = json.loads((latents / "stats.json").read_text())
    assert stats["speech_features"]["denoise"] == expected
    # Denoised speech gives other features than the raw speech of the same clips.
    raw = next(iter(wds.WebDataset(str(sorted(sample_shards.glob("*.tar"))[0]),
                                   shardshuffle=False)))
    assert raw["__key__"] == sample["__key__"]
    assert raw["speech.npy"] != sample["speech.npy"]


def test_generate_applies_the_same_denoiser_or_refuses(
        denoised_run, dns48, s2m_run, vae_checkpoint, tmp_path):
    from gaia.samples.build import portrait
    from gaia.samples.speech import speech_of_duration
    from gaia.training.checkpoint import resolve_checkpoint

    _, latents = denoised_run
    image, speech = tmp_path / "face.png", tmp_path / "speech.wav"
    cv2.imwrite(str(image), cv2.cvtColor(portrait(), cv2.COLOR_RGB2BGR))
    soundfile.write(speech, speech_of_duration(1.0), 16000)
    # The brief s2m run's weights with the denoised latents' statistics: a model trained on
    # denoised features, as far as generation can tell.
    state = torch.load(resolve_checkpoint(s2m_run), weights_only=True)
    state["task"]["stats"] = json.loads((latents / "stats.json").read_text())
    model = tmp_path / "s2m-denoised" / "step-00000001.pt"
    model.parent.mkdir()
    torch.save(state, model)
    fast = SamplerConfig(steps=2)
    out = tmp_path / "talk.mp4"
    with pytest.raises(SpeechFeaturesMismatch, match="denoised by dns48.*--denoise-weights"):
        generate(image, speech, vae_checkpoint, model, out, GenerateConfig(sampler=fast),
                 **QUIET)
    other = random_enhancer(tmp_path / "other", seed=1)
    with pytest.raises(SpeechFeaturesMismatch, match="is not the dns48 model"):
        generate(image, speech, vae_checkpoint, model, out,
                 GenerateConfig(sampler=fast, denoise_weights=str(other)), **QUIET)
    assert not out.exists()
    record = generate(image, speech, vae_checkpoint, model, out,
                      GenerateConfig(sampler=fast, denoise_weights=str(dns48)), **QUIET)
    assert out.is_file() and record["denoise"]["name"] == "dns48"
    assert record["denoise"]["sha256"] == state["task"]["stats"]["speech_features"][
        "denoise"]["sha256"]
    # A model of raw-audio features refuses a denoiser.
    with pytest.raises(SpeechFeaturesMismatch, match="not denoised"):
        generate(image, speech, vae_checkpoint, s2m_run, tmp_path / "raw.mp4",
                 GenerateConfig(sampler=fast, denoise_weights=str(dns48)), **QUIET)
