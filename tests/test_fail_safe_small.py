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
