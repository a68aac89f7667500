"""Renamed flags, keys and names (issue 22): the new name works, the old one still does for a
release, says so in --help, and logs one deprecation line when used."""

from __future__ import annotations

import pytest

from gaia.cli import build_parser
from gaia.common import deprecation


@pytest.fixture
def said(monkeypatch, caplog):
    """The deprecation lines logged during the test (each is logged once per process)."""
    monkeypatch.setattr(deprecation, "_SAID", set())
    caplog.set_level("WARNING", logger="gaia.deprecation")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "gaia.deprecation"]


def _help(*verb: str) -> str:
    parser = build_parser()
    for word in verb:
        parser = next(a for a in parser._actions if a.choices and word in a.choices).choices[word]
    return " ".join(parser.format_help().split())


def test_measure_settings_that_say_max_side_load_as_min_side(said) -> None:
    from gaia.pipeline.measure.config import MeasureConfig

    config = MeasureConfig.from_dict({"max_side": 320, "landmarks": "dlib"})
    assert config.min_side == 320 and config.landmarks == "dlib"
    assert len(said()) == 1 and "'max_side'" in said()[0] and "'min_side'" in said()[0]
    MeasureConfig.from_dict({"max_side": 320})
    assert len(said()) == 1  # once per process
    with pytest.raises(ValueError, match="both"):
        MeasureConfig.from_dict({"max_side": 320, "min_side": 320})


@pytest.mark.parametrize("verb", ["measure", "run"])
def test_max_side_flag_is_a_deprecated_alias_of_min_side(said, verb: str) -> None:
    extra = ["--preset", "vae"] if verb == "run" else []
    base = ["curate", verb, "x.mp4", "--out", "o", *extra]
    assert build_parser().parse_args(base).min_side == 640
    assert build_parser().parse_args([*base, "--min-side", "300"]).min_side == 300
    assert said() == []
    assert build_parser().parse_args([*base, "--max-side", "320"]).min_side == 320
    assert len(said()) == 1 and "--max-side" in said()[0] and "--min-side" in said()[0]
    assert "--max-side PX deprecated alias of --min-side" in _help("curate", verb)


# ------------------------------------------------------------------ the second model: s2m


def test_train_s2m_and_its_deprecated_alias_diffusion(said, monkeypatch) -> None:
    import gaia.training.s2m.train as s2m_train

    ran = []
    monkeypatch.setattr(s2m_train, "train_s2m", lambda options: ran.append(options))
    flags = ["--config", "s2m-tiny", "--shards", "latents", "--out", "run"]
    for verb in ("s2m", "diffusion"):
        args = build_parser().parse_args(["train", verb, *flags])
        assert args.handler(args) == 0
    assert [type(o).__name__ for o in ran] == ["S2mTrainOptions", "S2mTrainOptions"]
    assert len(said()) == 1 and "gaia train diffusion" in said()[0]
    assert "gaia train s2m" in said()[0]
    assert "(alias: diffusion, deprecated)" in _help("train")


def test_the_old_python_names_are_the_new_ones() -> None:
    from gaia.inference.s2m import LoadedDiffusion, LoadedS2m
    from gaia.training.s2m.options import DiffusionTrainOptions, S2mTrainOptions
    from gaia.training.s2m.task import DiffusionTask, S2mTask

    assert LoadedDiffusion is LoadedS2m and DiffusionTask is S2mTask
    assert DiffusionTrainOptions is S2mTrainOptions


@pytest.mark.parametrize("verb", [("generate",), ("eval", "s2m")])
def test_diffusion_flag_is_a_deprecated_alias_of_s2m(said, verb: tuple[str, ...]) -> None:
    base = (["generate", "--image", "p.png", "--audio", "a.wav", "--out", "o.mp4"]
            if verb == ("generate",) else ["eval", "s2m", "--latents", "l"])
    base += ["--vae", "v"]
    assert str(build_parser().parse_args([*base, "--s2m", "run"]).s2m) == "run"
    assert said() == []
    assert str(build_parser().parse_args([*base, "--diffusion", "old"]).s2m) == "old"
    assert len(said()) == 1 and "--diffusion" in said()[0] and "--s2m" in said()[0]
    assert "--diffusion CKPT_OR_RUN deprecated alias of --s2m" in _help(*verb)
    with pytest.raises(SystemExit):  # one model: both spellings at once are refused
        build_parser().parse_args([*base, "--s2m", "run", "--diffusion", "old"])


def test_curation_preset_diffusion_reads_s2m(said) -> None:
    from gaia.common.config_files import preset_names
    from gaia.filters.thresholds import load_thresholds

    assert "s2m" in preset_names("curation") and "diffusion" not in preset_names("curation")
    assert said() == []
    assert load_thresholds("diffusion", ["jitter.max_box=0.1"]) == load_thresholds(
        "s2m", ["jitter.max_box=0.1"])
    assert len(said()) == 1 and "'diffusion'" in said()[0] and "'s2m'" in said()[0]


def test_a_run_extracted_with_preset_diffusion_resumes(measured_sample, tmp_path, said) -> None:
    # A run extracted before the rename has RUN_DIR/shards/diffusion; the same command (the
    # old preset name) reads s2m.yaml and resumes that folder: nothing is cut twice.
    import shutil

    from gaia.pipeline.extract.job import ExtractConfig, run_extract

    root = tmp_path / "run"
    shutil.copytree(measured_sample.root, root)
    config = ExtractConfig(shard_mb=0.5, val_fraction=0.0)
    first = run_extract(root, "diffusion", config=config, log=lambda _: None, use_ray=False)
    assert (root / "shards" / "diffusion" / "manifest.parquet").is_file()
    again = run_extract(root, "diffusion", config=config, log=lambda _: None, use_ray=False)
    assert again.clips_planned == first.clips_planned
    assert (again.clips_done_before, again.clips_written) == (first.clips_planned, 0)
    assert not (root / "shards" / "s2m").exists()
    assert any("'diffusion'" in line and "'s2m'" in line for line in said())


def test_a_run_document_that_says_diffusion_is_read_as_s2m(tmp_path, said) -> None:
    import json

    from gaia.inference.s2m import run_task

    checkpoint = tmp_path / "run" / "checkpoints" / "step-00000010.pt"
    checkpoint.parent.mkdir(parents=True)
    assert run_task(checkpoint) is None  # no config.json: nothing to check
    for written, read in (("s2m", "s2m"), ("landmarks", "landmarks"), ("vae", "vae"),
                          ("diffusion", "s2m")):
        (tmp_path / "run" / "config.json").write_text(json.dumps({"task": written}))
        assert run_task(checkpoint) == read
    assert len(said()) == 1 and "'diffusion'" in said()[0] and "config.json" in said()[0]


# ------------------------------------------------------ one flag for the wav2vec 2.0 folder


@pytest.mark.parametrize("verb, old, dest", [
    (("generate",), "--speech-weights", "speech_weights"),
    (("curate", "extract"), "--features-dir", "features_dir"),
    (("curate", "run"), "--features-dir", "features_dir"),
])
def test_wav2vec2_is_the_one_flag_for_the_wav2vec2_folder(said, verb, old: str, dest: str
                                                          ) -> None:
    base = {"generate": ["generate", "--image", "p.png", "--audio", "a.wav", "--vae", "v",
                         "--s2m", "r", "--out", "o.mp4"],
            "extract": ["curate", "extract", "runs/r1", "--preset", "s2m"],
            "run": ["curate", "run", "x.mp4", "--out", "o", "--preset", "s2m"]}[verb[-1]]
    assert getattr(build_parser().parse_args(base), dest) is None
    assert getattr(build_parser().parse_args([*base, "--wav2vec2", "w2v"]), dest) == "w2v"
    assert said() == []
    assert getattr(build_parser().parse_args([*base, old, "old"]), dest) == "old"
    assert len(said()) == 1 and old in said()[0] and "--wav2vec2" in said()[0]
    assert f"{old} DIR deprecated alias of --wav2vec2" in _help(*verb)


# ------------------------------------ --landmarks: a model in generate/train, a backend here


@pytest.mark.parametrize("verb", ["measure", "run"])
def test_curate_landmark_backend_and_its_deprecated_alias(said, verb: str) -> None:
    extra = ["--preset", "vae"] if verb == "run" else []
    base = ["curate", verb, "x.mp4", "--out", "o", *extra]
    assert build_parser().parse_args(base).landmarks == "auto"
    assert build_parser().parse_args([*base, "--landmark-backend", "fan"]).landmarks == "fan"
    assert said() == []
    assert build_parser().parse_args([*base, "--landmarks", "dlib"]).landmarks == "dlib"
    assert len(said()) == 1 and "--landmarks" in said()[0] and "--landmark-backend" in said()[0]
    assert "--landmarks {auto,dlib,fan,mesh} deprecated alias of --landmark-backend" in _help(
        "curate", verb)
    with pytest.raises(SystemExit):
        build_parser().parse_args([*base, "--landmarks", "other"])


def test_landmarks_stays_the_trained_model_in_generate(said) -> None:
    args = build_parser().parse_args(["generate", "--image", "p.png", "--audio", "a.wav",
                                      "--vae", "v", "--landmarks", "runs/lmk", "--out", "o"])
    assert str(args.landmarks) == "runs/lmk" and args.s2m is None and said() == []


def test_reenact_is_parsed_by_generation() -> None:
    args = build_parser().parse_args(["reenact", "--source", "me.png", "--driving", "d.mp4",
                                      "--vae", "runs/vae", "--out", "o.mp4"])
    assert args.handler.__module__ == "gaia.generation.cli"
    assert str(args.driving) == "d.mp4"
