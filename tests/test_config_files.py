"""The one config loader (gaia.common.config_files): the same rules for every YAML the project
reads, curation thresholds and model configs alike."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from gaia.common.config_files import (
    ConfigError,
    build_config,
    config_dict,
    load_config,
    parse_overrides,
    parse_yaml,
    preset_names,
)
from gaia.filters.thresholds import load_thresholds
from gaia.training.s2m.config import load_s2m_config
from gaia.training.vae.config import load_vae_config


@dataclass(frozen=True)
class Inner:
    rate: float = 0.5
    steps: int = 3

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError("rate must be positive")


@dataclass(frozen=True)
class Outer:
    name: str = ""
    inner: Inner = field(default_factory=Inner)
    sizes: tuple[int, ...] = (1, 2)
    device: str | None = None


@pytest.mark.parametrize("text", ["1e-1", "1E-1", "+1e-1", "1.0e-1", "0.1"])
def test_exponents_without_a_dot_are_numbers(text):
    # YAML 1.1 (PyYAML's default) reads "1e-1" as a string; ours reads it as 0.1.
    assert parse_yaml(f"x: {text}", "test") == {"x": pytest.approx(0.1)}


def test_the_same_numbers_in_every_family():
    assert load_thresholds("vae", ["jitter.max_box=1e-1"]).jitter.max_box == pytest.approx(0.1)
    assert load_vae_config("vae-tiny", lr=parse_overrides(["lr=1e-1"])["lr"]).lr == 0.1
    assert load_s2m_config("s2m-tiny", **parse_overrides(["lr=2e-3"])).lr == 0.002


def test_a_yaml_file_with_exponents_builds(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("inner:\n  rate: 2e-3\n  steps: 4\nsizes: [3, 4]\n")
    config = load_config(Outer, "training", str(path))
    assert config == Outer(name="mine", inner=Inner(rate=0.002, steps=4), sizes=(3, 4))
    assert config_dict(config) == {"name": "mine", "inner": {"rate": 0.002, "steps": 4},
                                   "sizes": [3, 4], "device": None}


@pytest.mark.parametrize(("values", "message"), [
    ({"inner": {"rat": 1}}, "unknown test config key 'inner.rat': inner has rate, steps"),
    ({"inner": {"steps": 2.5}}, "test config inner.steps must be a whole number"),
    ({"inner": {"rate": "fast"}}, "test config inner.rate must be a number"),
    ({"inner": {"rate": -1.0}}, "test config inner: rate must be positive"),
    ({"inner": 3}, "inner must be a mapping"),
    ({"sizes": 3}, "test config sizes must be a list"),
    ({"device": 7}, "test config device must be a str"),
])
def test_errors_name_the_dotted_key(values, message):
    with pytest.raises(ConfigError, match=message):
        build_config(Outer, values, "test")


def test_overrides_nest_on_dots_and_refuse_bad_items():
    assert parse_overrides(["inner.rate=1e-2", "inner.steps=5", "name=x"]) == {
        "inner": {"rate": 0.01, "steps": 5}, "name": "x"}
    for bad in ("inner.rate", "=3", "inner..rate=1"):
        with pytest.raises(ConfigError, match="KEY=VALUE"):
            parse_overrides([bad])


def test_presets_come_from_the_package():
    assert {"vae", "s2m"} <= set(preset_names("curation"))
    assert {"vae-tiny", "s2m-tiny"} <= set(preset_names("training"))
    with pytest.raises(ConfigError, match="choose one of .*vae-tiny"):
        load_vae_config("vae-tinyy")
