"""The VAE trainer: overfits real clips, DDP over 2 processes equals 1 process, resume is exact,
and the three sizes' parameter counts beside the paper's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gaia.training.vae.train import VaeTrainOptions, train_vae

TESTS = Path(__file__).resolve().parent


def options(shards: Path, out: Path, **extra) -> VaeTrainOptions:
    base = dict(config="vae-tiny", shards=str(shards), out=str(out), batch_size=8,
                num_workers=0, pairs_per_clip=4, max_frames=12, batches_per_epoch=20,
                perceptual="none", log_every=1, image_every=0, checkpoint_every=1000,
                overrides=("lr=2e-3", "disc_start=1000"))
    base.update(extra)
    return VaeTrainOptions(**base)


def test_vae_tiny_overfits_a_few_real_clips(sample_shards, tmp_path, read_metrics):
    out = tmp_path / "overfit"
    assert train_vae(options(sample_shards, out, max_steps=50), log=lambda _: None) == 50
    l1 = [row["l1"] for row in read_metrics(out)]
    start, end = sum(l1[:3]) / 3, sum(l1[-3:]) / 3
    assert start / end >= 2.0, (start, end)
    run = json.loads((out / "config.json").read_text())
    assert run["model"]["lr"] == 2e-3 and run["task"] == "vae"
    assert (out / "checkpoints" / "step-00000050.pt").is_file()
    assert list((out / "tensorboard").glob("events.*"))


def test_resume_gives_the_same_next_losses(sample_shards, tmp_path, read_metrics):
    whole, part = tmp_path / "whole", tmp_path / "part"
    train_vae(options(sample_shards, whole, max_steps=6, checkpoint_every=3), log=lambda _: None)
    train_vae(options(sample_shards, part, max_steps=3, checkpoint_every=3), log=lambda _: None)
    lines: list[str] = []
    train_vae(options(sample_shards, part, max_steps=6, checkpoint_every=3, resume=True),
              log=lines.append)
    assert any("resumed from step-00000003.pt" in line for line in lines)
    expected = {row["step"]: row["loss"] for row in read_metrics(whole)}
    resumed = {row["step"]: row["loss"] for row in read_metrics(part) if row["step"] > 3}
    assert sorted(resumed) == [4, 5, 6]
    for step, loss in resumed.items():
        assert loss == pytest.approx(expected[step], rel=1e-5, abs=1e-7), step


def test_one_step_on_two_processes_matches_one_process(one_and_two_processes, tmp_path):
    one, two = one_and_two_processes("ddp_step_check.py", tmp_path)
    assert one.keys() == two.keys()
    changed = 0
    for name in one:
        assert torch.allclose(one[name], two[name], atol=1e-6, rtol=1e-5), name
        changed += 1
    assert changed > 10


def test_parameter_counts_beside_the_paper(capsys):
    from gaia.training.vae.config import count_parameters, load_vae_config

    paper = {"vae-small": 80e6, "vae-base": 700e6, "vae-large": 1.7e9}
    for name, reference in paper.items():
        total = count_parameters(load_vae_config(name))["total"]
        print(f"{name}: {total / 1e6:.1f} M parameters (paper: {reference / 1e6:.0f} M)")
        assert 0.5 * reference <= total <= 2 * reference
    assert "vae-large" in capsys.readouterr().out
