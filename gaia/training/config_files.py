"""Model configs as YAML presets over frozen dataclasses, shared by every model family.

A preset (``configs/training/NAME.yaml``) names only what differs from the dataclass's
defaults; ``--set KEY=VALUE`` overrides come last. Unknown keys and values of the wrong type are
errors that name the key, so a typo never trains the wrong model silently.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any, TypeVar

import yaml

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "training"

C = TypeVar("C")


def available_configs(prefix: str) -> list[str]:
    """Preset names in ``configs/training`` that start with ``prefix`` (``vae-``, ``s2m-``)."""
    return sorted(p.stem for p in CONFIG_DIR.glob(f"{prefix}*.yaml"))


def load_config(cls: type[C], name_or_path: str | Path, prefix: str, what: str,
                **overrides: Any) -> C:
    """``cls``'s defaults, then a preset (a name in configs/training or a YAML path), then
    ``overrides``; ``what`` names the family in errors ("VAE", "diffusion")."""
    text = str(name_or_path)
    path = Path(text) if text.endswith((".yaml", ".yml")) else CONFIG_DIR / f"{text}.yaml"
    if not path.is_file():
        raise ValueError(f"no {what} config {text!r}: choose one of "
                         f"{', '.join(available_configs(prefix)) or '(none found)'} "
                         "or give a YAML file")
    values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(values, dict):
        raise ValueError(f"{path} must hold a mapping of {cls.__name__} keys")
    return build_config(cls, {"name": path.stem, **values, **overrides}, what)


def build_config(cls: type[C], values: dict[str, Any], what: str) -> C:
    """A ``cls`` from plain values, each checked against the field's default type."""
    defaults = cls()
    fields = {f.name for f in dataclasses.fields(cls)}
    checked: dict[str, Any] = {}
    for key, value in values.items():
        if key not in fields:
            raise ValueError(f"unknown {what} config key {key!r}: known keys are "
                             f"{', '.join(sorted(fields))}")
        checked[key] = _coerce(f"{what} config {key}", value, getattr(defaults, key))
    return cls(**checked)


def config_dict(config: Any) -> dict[str, Any]:
    """Plain values of a config dataclass (tuples as lists), ready for YAML or JSON."""
    return {k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(config).items()}


def _coerce(label: str, value: Any, default: Any) -> Any:
    kind = type(default)
    if kind is tuple:
        if not isinstance(value, list | tuple):
            raise ValueError(f"{label} must be a list, not {value!r}")
        return tuple(_coerce(label, v, default[0]) for v in value)
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{label} must be true or false, not {value!r}")
        return value
    if kind in (int, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{label} must be a number, not {value!r}")
        if kind is int and value != int(value):
            raise ValueError(f"{label} must be a whole number, not {value!r}")
        return kind(value)
    if not isinstance(value, kind):
        raise ValueError(f"{label} must be a {kind.__name__}, not {value!r}")
    return value


def parse_overrides(items: tuple[str, ...] | list[str]) -> dict:
    """``["lr=1e-4", "disc_start=10"]`` -> ``{"lr": 0.0001, "disc_start": 10}`` (YAML values);
    the config loader then rejects unknown keys by name."""
    values = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"bad --set {item!r}: write KEY=VALUE, e.g. lr=1e-4")
        value = yaml.safe_load(raw)
        if isinstance(value, str):  # YAML 1.1 reads "2e-3" as text; numbers were meant
            with contextlib.suppress(ValueError):
                value = float(value)
        values[key.strip()] = value
    return values
