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
