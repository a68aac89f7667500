"""The smaller fail-safe items of issue 25: each refusal is one line that names what is wrong."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-1", "soon"])
def test_dist_timeout_must_be_finite_and_positive(value, capsys):
    from gaia.training.cli import build_train_parser

    with pytest.raises(SystemExit) as raised:
        build_train_parser().parse_args(["vae", "--config", "vae-tiny", "--shards", "s",
                                         "--out", "o", f"--dist-timeout={value}"])
    assert raised.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--dist-timeout" in error and value in error


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 0.0, -1.0])
def test_init_world_refuses_a_timeout_that_is_not_finite_and_positive(value):
    from gaia.training import distributed

    with pytest.raises(ValueError, match="--dist-timeout"):
        distributed.init_world("cpu", value)


def _pickled_object(path):
    """A file torch's safe loader refuses: it pickles an object of a class it does not allow."""
    import argparse

    import torch

    torch.save({"state": argparse.Namespace(step=1)}, path)
    return path


def _loaders():
    from gaia.evaluation.inception import load_inception
    from gaia.pipeline.speech.denoise import _unpickle_trusted
    from gaia.pipeline.speech.enhance import load_enhancer
    from gaia.pipeline.speech.syncnet import load_syncnet
    from gaia.training.checkpoint import load_checkpoint

    return {
        "checkpoint": lambda path: load_checkpoint(path),
        "inception": lambda path: load_inception(path),
        "syncnet": lambda path: load_syncnet(path),
        "demucs": lambda path: _unpickle_trusted(path),
        "enhancer": lambda path: load_enhancer("dns48", str(path), allow_untrained=True),
    }


@pytest.mark.parametrize("loader", ["checkpoint", "inception", "syncnet", "demucs", "enhancer"])
def test_a_refused_pickle_never_advises_weights_only_false(loader, tmp_path):
    import traceback

    path = _pickled_object(tmp_path / ("dns48.th" if loader == "enhancer" else "model.pt"))
    if loader == "enhancer":
        from gaia.common.weights import UNTRAINED_MARKER

        (tmp_path / UNTRAINED_MARKER).write_text("")
    with pytest.raises(ValueError) as raised:
        _loaders()[loader](path)
    message = str(raised.value)
    assert str(path) in message and "\n" not in message
    assert "weights_only" not in message
    # torch's own text (its advice to set weights_only to False) is not chained on either
    everything = "".join(traceback.format_exception(raised.value))
    assert "Weights only load failed" not in everything and "set to `False`" not in everything


@pytest.mark.parametrize("target_exists", [True, False])
def test_a_run_lock_that_is_a_symlink_is_refused_and_its_target_untouched(target_exists,
                                                                         tmp_path):
    from gaia.pipeline.runner.out_lock import LOCK_NAME, OutputInUseError, hold_output

    outside = tmp_path / "outside.txt"
    if target_exists:
        outside.write_text("not the run's")
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_NAME).symlink_to(outside)
    with pytest.raises(OutputInUseError, match="symbolic link") as refused, hold_output(out):
        pass
    assert str(out / LOCK_NAME) in str(refused.value) and "\n" not in str(refused.value)
    if target_exists:
        assert outside.read_text() == "not the run's"
    else:
        assert not outside.exists()
    assert (out / LOCK_NAME).is_symlink()


@pytest.mark.parametrize("uri", ["s3://bucket/prefix", "gs://bucket/some/shards/"])
def test_inspect_names_a_store_uri_intact_when_it_refuses_it(uri, capsys):
    from gaia.cli import main

    with pytest.raises(SystemExit) as raised:
        main(["inspect", uri])
    assert raised.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("gaia inspect: error:") and uri in error
    assert uri.replace("://", ":/") not in error.replace(uri, "")


def test_inspect_reads_a_file_uri_as_its_local_folder(tmp_path):
    from gaia.pipeline.cli.inspect import shards_folder

    assert shards_folder(f"file://{tmp_path}") == tmp_path
    assert shards_folder(str(tmp_path)) == tmp_path
