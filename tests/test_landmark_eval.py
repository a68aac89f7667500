"""Table 6's "w. landmark prediction" (paper, section 5.3): ``gaia eval s2m --landmarks``
measures the landmark model on clip shards, decoding its landmarks through the VAE as
generation does, with the s2m model's metrics; reproducible, and refused with a VAE that has no
motion encoder."""

from __future__ import annotations

import io
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from gaia.common.crop import to_model_pixels
from gaia.evaluation.s2m import format_s2m_metrics
from gaia.evaluation.s2m_landmarks import (
    evaluate_landmark_model,
    landmark_clips,
    motion_latents_of,
)
from gaia.schemas.shards import FRAME_SIZE
from gaia.training.s2m.sampler_config import SamplerConfig

FAST = SamplerConfig(steps=3)
CLIPS = 2


@pytest.fixture(scope="module")
def landmark_run(sample_shards, tmp_path_factory) -> Path:
    """landmarks-tiny trained a few steps on the real sample's clip shards."""
    from gaia.training.landmarks.options import LandmarkTrainOptions
    from gaia.training.landmarks.train import train_landmarks

    out = tmp_path_factory.mktemp("landmark-eval") / "run"
    train_landmarks(LandmarkTrainOptions(
        config="landmarks-tiny", shards=str(sample_shards), out=str(out), max_steps=4,
        batch_size=2, num_workers=0, batches_per_epoch=4, log_every=2, image_every=0,
        checkpoint_every=4), log=lambda _: None)
    return out


@pytest.fixture(scope="module")
def run_eval(vae_checkpoint, landmark_run, sample_shards):
    def run(**options):
        options = {"split": None, "clips": CLIPS, "sampler": FAST, "pose": "data", **options}
        return evaluate_landmark_model(vae_checkpoint, landmark_run, str(sample_shards),
                                       **options)
    return run


def test_landmark_model_gets_the_s2m_metrics_from_decoded_frames(run_eval, sample_shards,
                                                                  tiny_features):
    chosen, _ = landmark_clips(str(sample_shards), None, CLIPS)
    tracks = [to_model_pixels(np.load(io.BytesIO(source["landmarks.npy"])), FRAME_SIZE[0], 64)
              for _, source in chosen]
    lengths = [len(clip["motion"]) for clip, _ in chosen]
    calls = itertools.count()

    def stub(image: np.ndarray) -> np.ndarray:
        """A detector that reads the real landmarks of the frame it is shown."""
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
        n = next(calls)
        clip = int(n >= lengths[0])
        return tracks[clip][n - clip * lengths[0]]

    # Sync-C/D go through the s2m evaluation's own scoring (tests/test_s2m_eval.py).
    result = run_eval(landmark_fn=stub, fid_network=tiny_features)
    assert next(calls) == sum(lengths)  # every sampled frame was decoded and looked at once
    metrics, counts = result["metrics"], result["counts"]
    assert counts["clips"] == CLIPS and counts["frames"] == sum(lengths)
    assert result["provenance"]["motion"] == "landmarks"
    for name in ("motion_mse", "landmark_error_px", "pose_error_overall", "msi", "lip_sync",
                 "msi_real", "face_found_fraction"):
        assert metrics[name]["n"] == CLIPS and math.isfinite(metrics[name]["mean"]), name
    assert metrics["landmark_error_px"]["mean"] > 0 and metrics["motion_mse"]["mean"] > 0
    assert metrics["face_found_fraction"]["mean"] == 1.0
    assert isinstance(metrics["fid"], float) and result["fid_frames"] == sum(lengths)
    assert metrics["sync_d"] is None and any("SyncNet" in n for n in result["notes"])
    assert "landmark_error_px" in format_s2m_metrics(result)
    assert result["run"]["model"]["name"] == "landmarks-tiny"


def test_the_same_seed_gives_the_same_numbers(run_eval):
    first, again, other = run_eval(seed=0), run_eval(seed=0), run_eval(seed=1)
    assert first["metrics"] == again["metrics"]
    assert other["metrics"]["landmark_error_px"] != first["metrics"]["landmark_error_px"]
    # Without a detector nothing about decoded frames is made up; the real side still is.
    assert first["metrics"]["msi"] is None and first["metrics"]["msi_real"]["n"] == CLIPS
    assert any("no landmark detector" in note for note in first["notes"])


def test_the_landmarks_reach_the_vae_as_generation_sends_them(vae_checkpoint):
    from gaia.inference.vae import LoadedVae
    from gaia.training.landmarks.data import image_pixels

    vae = LoadedVae.load(vae_checkpoint, "cpu")
    units = torch.rand(70, 136) * 0.5 + 0.25
    latents = motion_latents_of(vae, units)
    expected = vae.motion_latents(torch.from_numpy(image_pixels(units.numpy(), 64)))
    assert latents.shape == (70, 64)
    torch.testing.assert_close(latents, expected.flatten(1))


def test_a_vae_without_motion_encoder_is_refused(new_vae_checkpoint, landmark_run,
                                                 sample_shards, tmp_path):
    frame_vae = new_vae_checkpoint(tmp_path / "frame", disentangle=False)
    with pytest.raises(ValueError, match="disentangle: false"):
        evaluate_landmark_model(frame_vae, landmark_run, str(sample_shards), split=None,
                                clips=1, sampler=FAST)


def test_cli_evaluates_the_landmark_model(vae_checkpoint, landmark_run, sample_shards, capsys):
    from gaia.cli import main

    code = main(["eval", "s2m", "--vae", str(vae_checkpoint), "--landmarks", str(landmark_run),
                 "--videos", str(sample_shards), "--split", "all", "--clips", "1",
                 "--steps", "2", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["provenance"]["motion"] == "landmarks" and result["counts"]["clips"] == 1
    assert result["metrics"]["landmark_error_px"]["n"] == 1
    code = main(["eval", "s2m", "--vae", str(vae_checkpoint), "--landmarks", str(landmark_run),
                 "--split", "all"])
    assert code == 2 and "--videos" in capsys.readouterr().err
