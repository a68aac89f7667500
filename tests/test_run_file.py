"""Training runs as one YAML file (``training.run_file``): precedence defaults < preset < run
file < flags, errors that name the key, the resolved ``config.yaml`` a run writes, and a run
resumed from its own ``config.yaml`` continuing exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from gaia.common.config_files import ConfigError, dump_yaml, parse_yaml
from gaia.training.cli import build_train_parser
from gaia.training.run_file import load_model, resolved_run
from gaia.training.s2m.config import S2mConfig
from gaia.training.s2m.train import S2mTrainOptions
from gaia.training.vae.config import VaeConfig, load_vae_config
from gaia.training.vae.train import VaeTrainOptions, main

PARSER = build_train_parser()


def parse(*argv: str) -> VaeTrainOptions:
    args = PARSER.parse_args(["vae", *argv])
    return VaeTrainOptions.from_args(args)


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_run_file_sits_between_preset_and_flags(tmp_path):
    run = write(tmp_path / "run.yaml", """\
model:
  preset: vae-tiny
  lr: 1e-3            # YAML 1.1 would read this as text
  kl_weight: 2e-6
shards: data/shards
out: runs/a
max_steps: 300
batch_size: 4
perceptual: none
""")
    options = parse("--config", run, "--max-steps", "7", "--set", "kl_weight=5e-6")
    assert (options.shards, options.out, options.batch_size) == ("data/shards", "runs/a", 4)
    assert options.max_steps == 7  # the flag wins over the file
    assert options.log_every == VaeTrainOptions.log_every  # neither: the default
    assert options.perceptual == "none" and options.overrides == ("kl_weight=5e-6",)
    model = load_model(VaeConfig, options.config, "vae-", "VAE", {"kl_weight": 5e-6})
    tiny = load_vae_config("vae-tiny")
    assert model.name == "vae-tiny" and model.channels == tiny.channels  # from the preset
    assert model.lr == 1e-3 and isinstance(model.lr, float)  # the file over the preset
    assert model.kl_weight == 5e-6  # --set over the file


def test_a_preset_alone_still_works_as_before(tmp_path):
    options = parse("--config", "vae-tiny", "--shards", "s", "--out", "o", "--set", "lr=1e-4")
    assert options.config == "vae-tiny" and options.max_steps == VaeTrainOptions.max_steps
    model = load_model(VaeConfig, options.config, "vae-", "VAE", {"lr": 1e-4})
    assert model == load_vae_config("vae-tiny", lr=1e-4)
    # A model YAML file (no model: key, no run keys) is a model config, as before.
    alone = write(tmp_path / "model.yaml", "channels: 32\nnorm_groups: 16\n")
    options = parse("--config", alone, "--shards", "s", "--out", "o")
    assert load_model(VaeConfig, options.config, "vae-", "VAE").channels == 32


def test_errors_name_the_key_or_the_missing_option(tmp_path):
    with pytest.raises(ConfigError, match="no shards given: pass --shards"):
        parse("--config", "vae-tiny", "--out", "o")
    typo = write(tmp_path / "typo.yaml", "model: vae-tiny\nshards: s\nout: o\nmax_step: 3\n")
    with pytest.raises(ConfigError, match="unknown run config key 'max_step'"):
        parse("--config", typo)
    wrong = write(tmp_path / "wrong.yaml", "model: vae-tiny\nshards: s\nout: o\nseed: many\n")
    with pytest.raises(ConfigError, match="run config seed must be a number"):
        parse("--config", wrong)
    no_model = write(tmp_path / "nomodel.yaml", "shards: s\nout: o\n")
    with pytest.raises(ConfigError, match="no model: key"):
        parse("--config", no_model)
    options = parse("--config", write(tmp_path / "bad-model.yaml",
                                      "model: {preset: vae-tiny, chanels: 8}\nshards: s\nout: o\n"))
    with pytest.raises(ConfigError, match="unknown VAE config key 'chanels'"):
        load_model(VaeConfig, options.config, "vae-", "VAE")


def test_resolved_run_reads_back_as_the_same_run(tmp_path):
    options = parse("--config", "vae-tiny", "--shards", "s", "--out", "o", "--max-steps", "9",
                    "--set", "lr=3e-4", "--perceptual", "none", "--resume")
    model = load_model(VaeConfig, options.config, "vae-", "VAE",
                       {"lr": 3e-4, "perceptual": "none"})
    resolved = resolved_run(options, model)
    assert "resume" not in resolved and "overrides" not in resolved
    path = write(tmp_path / "config.yaml", dump_yaml(resolved))
    again = parse("--config", path)
    assert load_model(VaeConfig, again.config, "vae-", "VAE") == model
    assert again.config == parse_yaml(Path(path).read_text(), path)["model"]
    same = {"config": again.config, "overrides": (), "resume": False}
    assert again == VaeTrainOptions(**{**vars(options), **same})
    # The s2m trainer reads its run files the same way.
    args = PARSER.parse_args(["s2m", "--config", write(
        tmp_path / "s2m.yaml", "model: {preset: s2m-tiny, warmup_steps: 5}\nshards: l\nout: o\n"
        "windows_per_clip: 3\n")])
    s2m = S2mTrainOptions.from_args(args)
    assert s2m.windows_per_clip == 3
    assert load_model(S2mConfig, s2m.config, "s2m-", "s2m").warmup_steps == 5


def test_a_run_resumed_from_its_config_yaml_continues_exactly(sample_shards, tmp_path,
                                                              read_metrics):
    def run_file(out: Path, steps: int) -> str:
        return write(tmp_path / f"{out.name}.yaml", f"""\
model: {{preset: vae-tiny, lr: 2e-3, disc_start: 1000}}
shards: {sample_shards}
out: {out}
max_steps: {steps}
batch_size: 8
num_workers: 0
pairs_per_clip: 4
max_frames: 12
batches_per_epoch: 20
perceptual: none
log_every: 1
image_every: 0
checkpoint_every: 3
""")

    whole, part = tmp_path / "whole", tmp_path / "part"
    assert main(["--config", run_file(whole, 6)]) == 0
    assert main(["--config", run_file(part, 3)]) == 0
    written = parse_yaml((part / "config.yaml").read_text(), "config.yaml")
    assert written["model"]["lr"] == 2e-3 and written["model"]["perceptual"] == "none"
    assert written["max_steps"] == 3 and "resume" not in written
    assert main(["--config", str(part / "config.yaml"), "--resume", "--max-steps", "6"]) == 0
    assert parse_yaml((part / "config.yaml").read_text(), "config.yaml")["max_steps"] == 6
    expected = {row["step"]: row["loss"] for row in read_metrics(whole)}
    resumed = {row["step"]: row["loss"] for row in read_metrics(part)}
    assert sorted(resumed) == [1, 2, 3, 4, 5, 6]
    for step in (4, 5, 6):
        assert resumed[step] == pytest.approx(expected[step], rel=1e-5, abs=1e-7), step
