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
    assert train_vae(options(sample_shards, out, max_steps=70), log=lambda _: None) == 70
    l1 = [row["l1"] for row in read_metrics(out)]
    start, end = sum(l1[:3]) / 3, sum(l1[-3:]) / 3
    assert start / end >= 2.0, (start, end)
    run = json.loads((out / "config.json").read_text())
    assert run["model"]["lr"] == 2e-3 and run["task"] == "vae"
    assert (out / "checkpoints" / "step-00000070.pt").is_file()
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
    from gaia.training.vae.build import count_parameters
    from gaia.training.vae.config import load_vae_config

    paper = {"vae-small": 80e6, "vae-base": 700e6, "vae-large": 1.7e9}
    for name, reference in paper.items():
        total = count_parameters(load_vae_config(name))["total"]
        print(f"{name}: {total / 1e6:.1f} M parameters (paper: {reference / 1e6:.0f} M)")
        assert 0.5 * reference <= total <= 2 * reference
    assert "vae-large" in capsys.readouterr().out


class Pickled:
    """A class a checkpoint must never need (weights-only loading refuses it)."""


def test_a_checkpoint_holding_a_pickled_class_is_refused(tmp_path):
    from gaia.training.checkpoint import load_checkpoint

    path = tmp_path / "step-00000001.pt"
    torch.save({"task": {"model": Pickled()}, "step": 1}, path)
    with pytest.raises(ValueError, match="not a checkpoint this project wrote") as raised:
        load_checkpoint(path)
    message = str(raised.value)
    assert str(path) in message and "Pickled" in message
    assert "weights_only" not in message and raised.value.__cause__ is None


def test_dist_timeout_reaches_the_process_group(monkeypatch):
    from datetime import timedelta

    from gaia.training import distributed
    from gaia.training.cli import build_train_parser

    args = build_train_parser().parse_args(["vae", "--config", "vae-tiny", "--shards", "s",
                                            "--out", "o", "--dist-timeout", "42.5"])
    options = VaeTrainOptions.from_args(args)
    assert options.dist_timeout == 42.5
    seen = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: False)
    monkeypatch.setattr(distributed.dist, "init_process_group",
                        lambda backend, **kw: seen.update(backend=backend, **kw))
    world = distributed.init_world("cpu", options.dist_timeout)
    assert (world.rank, world.size) == (1, 2)
    assert seen == {"backend": "gloo", "timeout": timedelta(seconds=42.5)}
    with pytest.raises(ValueError, match="--dist-timeout"):
        distributed.init_world("cpu", 0)


def test_after_a_resume_metrics_hold_each_step_once(sample_shards, tmp_path, read_metrics):
    out = tmp_path / "killed"
    train_vae(options(sample_shards, out, max_steps=5, checkpoint_every=2), log=lambda _: None)
    before = {row["step"]: row["loss"] for row in read_metrics(out)}
    # The kill: checkpoints 4 and 5 never written, rows 3-5 logged, the last one cut short.
    for path in (out / "checkpoints").glob("step-0000000[45]*"):
        path.unlink()
    with open(out / "metrics.jsonl", "a") as metrics:
        metrics.write('{"step": 6, "loss": 0.')
    lines: list[str] = []
    train_vae(options(sample_shards, out, max_steps=6, checkpoint_every=2, resume=True),
              log=lines.append)
    assert any("resumed from step-00000002.pt" in line for line in lines)
    steps = [row["step"] for row in read_metrics(out)]
    assert steps == [1, 2, 3, 4, 5, 6]
    after = {row["step"]: row["loss"] for row in read_metrics(out)}
    for step in (3, 4, 5):  # logged again, the same values (exact resume)
        assert after[step] == pytest.approx(before[step], rel=1e-5, abs=1e-7), step


def test_skipped_samples_are_counted_by_reason(sample_shards, tmp_path, read_metrics):
    import io
    import shutil
    import tarfile

    shards = tmp_path / "shards"
    shards.mkdir()
    real = sorted(sample_shards.glob("*.tar"))[0]  # one real shard is enough
    shutil.copy(real, shards / real.name)
    with tarfile.open(real) as tar:  # the real shard's first sample
        first = tar.getmembers()[0].name.split(".", 1)[0]
        members = {m.name.split(".", 1)[1]: tar.extractfile(m).read()
                   for m in tar.getmembers() if m.name.startswith(f"{first}.")}
    meta = json.loads(members["json"])
    copy = {**members, "json": json.dumps({**meta, "key": "copy"}).encode()}
    # A second shard: a good copy (each of the 2 workers needs a usable sample) and the
    # sample again with its mp4 made garbage.
    with tarfile.open(shards / "corrupt-000000.tar", "w") as tar:
        for key, sample in (("copy", copy), (first, {**members, "mp4": b"\x00no mp4" * 99})):
            for member, blob in sample.items():
                info = tarfile.TarInfo(f"{key}.{member}")
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
    out = tmp_path / "run"
    lines: list[str] = []
    train_vae(options(shards, out, max_steps=6, num_workers=2), log=lines.append)
    rows = read_metrics(out)
    counts = [row["skipped/bad_mp4"] for row in rows]
    assert counts == sorted(counts) and counts[-1] >= 1  # a running total, never reset
    assert all(row["skipped/refused_member"] == 0 for row in rows)
    assert lines[-1] == f"[train] done at step 6; samples skipped: bad_mp4 {counts[-1]}"
