"""The text-instructed motion model end to end (paper, appendix E): instruct clips encoded with
a text encoder, `gaia train instruct`, and `gaia generate --text`.

The clips are the sample's real clips with an ``instruction.json`` added (the instruct preset's
own cutting is tested in its own file); the text encoder is the small random CLIP text model
with CLIP's real vocabulary (``gaia samples text-encoder``).
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import av
import numpy as np
import pytest

from gaia.text.instruction_rows import CONDITION_NAME, TIME_DIMS, instruction_rows
from tests.conftest import INSTRUCTIONS

QUIET = {"progress": lambda _: None}


def _latent_samples(folder: Path) -> list[dict]:
    from gaia.schemas.latents import read_latent_sample

    samples = []
    for shard in sorted(folder.glob("*.tar")):
        with tarfile.open(shard) as archive:
            grouped: dict[str, dict] = {}
            for member in archive.getmembers():
                key, name = member.name.split(".", 1)
                grouped.setdefault(key, {})[name] = archive.extractfile(member).read()
        samples += [read_latent_sample(members) for members in grouped.values()]
    return samples


def test_each_clip_is_conditioned_on_its_instruction(instruct_latents, text_encoder):
    from gaia.text.clip_text import load_text_encoder

    root, given, summary = instruct_latents
    assert summary.clips_encoded == len(given) >= 2
    encoder = load_text_encoder(text_encoder, "cpu", allow_untrained=True)
    pooled = dict(zip(INSTRUCTIONS, encoder(list(INSTRUCTIONS)), strict=True))
    samples = _latent_samples(root / "latents")
    assert sorted(s["meta"]["instruction"] for s in samples) == sorted(given)
    for sample in samples:
        rows, meta = sample["speech"], sample["meta"]
        assert rows.shape == (2 * meta["frames"], encoder.dim + TIME_DIMS)
        want = instruction_rows(pooled[meta["instruction"]], meta["frames"], meta["fps"], 0.2)
        np.testing.assert_allclose(rows.astype(np.float32), want, atol=2e-3, rtol=2e-3)
        assert meta["speech_features"]["name"] == CONDITION_NAME
        assert meta["speech_features"]["encoder"]["sha256"] == encoder.provenance["sha256"]
    stats = json.loads((root / "latents" / "stats.json").read_text())
    assert stats["speech_features"]["name"] == CONDITION_NAME
    # The clock makes the condition move within a clip; the text part does not.
    first = samples[0]["speech"].astype(np.float32)
    assert np.ptp(first[:, -TIME_DIMS:], axis=0).max() > 0.5
    assert np.ptp(first[:, :encoder.dim], axis=0).max() == 0.0


def test_speech_and_instruction_clips_are_not_mixed(instruct_latents, sample_shards,
                                                    vae_checkpoint, text_encoder, tmp_path):
    from gaia.pipeline.latents.job import EncodeMismatchError, run_encode_latents

    root, given, _ = instruct_latents
    # Instruct clips without a text encoder: each says what to pass, none is encoded.
    plain = run_encode_latents(vae_checkpoint, str(root / "shards"), tmp_path / "a",
                               use_ray=False, log=lambda _: None)
    assert plain.clips_encoded == 0 and plain.clips_skipped == {"failed": len(given)}
    part = json.loads(next((tmp_path / "a" / "parts").glob("*.json")).read_text())
    assert "--text-encoder" in part["samples"][0]["reason"]
    # Speech clips with a text encoder: skipped as having no instruction.
    text = run_encode_latents(vae_checkpoint, str(sample_shards), tmp_path / "b",
                              use_ray=False, text_encoder=str(text_encoder),
                              allow_untrained=True, log=lambda _: None)
    assert text.clips_encoded == 0 and set(text.clips_skipped) == {"no_instruction"}
    # An output of instruction latents refuses speech latents, and the other way round.
    with pytest.raises(EncodeMismatchError, match="conditioned on instructions"):
        run_encode_latents(vae_checkpoint, str(sample_shards), root / "latents",
                           use_ray=False, log=lambda _: None)
    # An untrained encoder is refused unless allowed.
    from gaia.common.weights import UntrainedWeightsError

    with pytest.raises(UntrainedWeightsError):
        run_encode_latents(vae_checkpoint, str(root / "shards"), tmp_path / "c",
                           use_ray=False, text_encoder=str(text_encoder), log=lambda _: None)


def test_each_trainer_refuses_the_other_condition(instruct_latents, latent_shards, tmp_path):
    from gaia.training.instruct.options import InstructTrainOptions
    from gaia.training.instruct.train import train_instruct
    from gaia.training.s2m.train import S2mTrainOptions, train_s2m

    common = {"max_steps": 1, "batch_size": 2, "num_workers": 0}
    with pytest.raises(ValueError, match="gaia train instruct"):
        train_s2m(S2mTrainOptions(config="s2m-tiny", out=str(tmp_path / "s"),
                                  shards=str(instruct_latents[0] / "latents"), **common),
                  log=lambda _: None)
    with pytest.raises(ValueError, match="--text-encoder"):
        train_instruct(InstructTrainOptions(config="instruct-tiny", out=str(tmp_path / "i"),
                                            shards=str(latent_shards), **common),
                       log=lambda _: None)


def _frames_and_audio(path: Path) -> tuple[int, int]:
    with av.open(str(path)) as container:
        frames = sum(1 for _ in container.decode(video=0))
        return frames, len(container.streams.audio)


def test_generate_follows_the_text(instruct_run, portrait_png, vae_checkpoint, text_encoder,
                                   tmp_path):
    from gaia.generation.generate import GenerateConfig
    from gaia.generation.instructed import generate_instructed
    from gaia.training.s2m.sampler_config import SamplerConfig

    config = GenerateConfig(sampler=SamplerConfig(steps=4))
    outs = [tmp_path / f"{name}.mp4" for name in ("left", "left2", "smile")]
    texts = ["turn  your head to the left ", "turn your head to the left", "please smile"]
    records = [generate_instructed(portrait_png, text, 1.2, vae_checkpoint, instruct_run, out,
                                   config, text_encoder=str(text_encoder), **QUIET)
               for text, out in zip(texts, outs, strict=True)]
    assert _frames_and_audio(outs[0]) == (30, 0)  # 1.2 s at 25 fps, silent
    assert records[0]["instruction"] == "turn your head to the left"  # whitespace collapsed
    saved = json.loads(outs[0].with_suffix(".json").read_text())
    assert saved["text_condition"]["name"] == CONDITION_NAME
    assert saved["text_condition"]["encoder"]["untrained"] is True
    # The same instruction and seed: the same video; another instruction: other motion.
    assert outs[0].read_bytes() == outs[1].read_bytes()
    assert records[0]["pose_track"] != records[2]["pose_track"]


def test_generate_refuses_what_it_cannot_follow(instruct_run, s2m_run, portrait_png,
                                                vae_checkpoint, text_encoder, tmp_path):
    from gaia.generation.instructed import TextEncoderMismatch, generate_instructed
    from gaia.text.clip_text import write_tiny_text_encoder

    args = (portrait_png, "please smile", 1.0, vae_checkpoint)
    other = write_tiny_text_encoder(tmp_path / "other", seed=1)
    with pytest.raises(TextEncoderMismatch, match="sha256"):
        generate_instructed(*args, instruct_run, tmp_path / "a.mp4", text_encoder=str(other),
                            **QUIET)
    with pytest.raises(TextEncoderMismatch, match="--text-encoder DIR"):
        generate_instructed(*args, instruct_run, tmp_path / "b.mp4", **QUIET)
    with pytest.raises(ValueError, match="not a text-instructed model"):
        generate_instructed(*args, s2m_run, tmp_path / "c.mp4",
                            text_encoder=str(text_encoder), **QUIET)
    with pytest.raises(ValueError, match="--text is empty"):
        generate_instructed(portrait_png, "  ", 1.0, vae_checkpoint, instruct_run,
                            tmp_path / "d.mp4", text_encoder=str(text_encoder), **QUIET)
    assert not list(tmp_path.glob("*.mp4"))


def test_the_cli_pairs_text_with_instruct(instruct_run, portrait_png, vae_checkpoint,
                                          text_encoder, tmp_path, capsys):
    from gaia.cli import main

    base = ["generate", "--image", str(portrait_png), "--vae", str(vae_checkpoint)]
    assert main([*base, "--instruct", str(instruct_run), "--audio", str(portrait_png),
                 "--out", str(tmp_path / "x.mp4")]) != 0
    assert "give --text" in capsys.readouterr().err
    out = tmp_path / "smile.mp4"
    assert main([*base, "--instruct", str(instruct_run), "--text", "please smile",
                 "--seconds", "0.4", "--steps", "2", "--text-encoder", str(text_encoder),
                 "--out", str(out)]) == 0
    assert _frames_and_audio(out) == (10, 0)
