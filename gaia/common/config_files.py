"""The one config loader: YAML presets and ``--set`` overrides over frozen dataclasses.

Every setting the project reads from a file goes through here: curation thresholds
(``configs/curation/``), model sizes (``configs/training/``), measure settings and whole
training-run files. One set of rules for all of them (docs/practices.md, lingua's configs):

- A preset names only what differs from the dataclass's defaults. Presets live inside the
  package (``gaia/configs/KIND/NAME.yaml``) and are read with ``importlib.resources``, so a
  wheel installed on a cluster node has them; a path ending in ``.yaml`` is read from disk.
- Nested dataclasses are nested mappings; ``--set`` keys are dotted (``jitter.max_box=0.1``,
  ``lr=1e-4``).
- Numbers are numbers: YAML 1.1 reads ``1e-1`` (no dot) as text; here it is a float, in files
  and in ``--set`` values alike.
- Unknown keys, values of the wrong type and values a dataclass refuses are ``ConfigError``
  naming the dotted key, so a typo never runs the wrong job silently. A number must be finite:
  NaN and infinities (``.nan``, ``.inf``, JSON's ``NaN``) are refused wherever they are read.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from importlib.resources import files
from pathlib import Path
from typing import Any, TypeVar

import yaml

C = TypeVar("C")
PRESETS = "gaia.configs"


class ConfigError(ValueError):
    """A preset, file or override that cannot be applied; the message names the key."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads ``1e-4``, ``2E5``, ``-3e+2`` as floats (YAML 1.2's rule)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def parse_yaml(text: str, where: str) -> Any:
    """YAML text -> plain values (safe: no Python objects), numbers read as numbers."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as err:
        raise ConfigError(f"{where} is not valid YAML: {err}") from err


def preset_names(kind: str, prefix: str = "") -> list[str]:
    """Names of the presets shipped in ``gaia/configs/KIND/`` that start with ``prefix``."""
    folder = files(PRESETS) / kind
    return sorted(entry.name[:-5] for entry in folder.iterdir()
                  if entry.name.endswith(".yaml") and entry.name.startswith(prefix))


# Shipped presets renamed (kind -> old name -> new name): the old name still reads the new
# preset for one release, with a deprecation line.
RENAMED_PRESETS = {"curation": {"diffusion": "s2m"}}


def current_preset(kind: str, name: str) -> str:
    """``name``, or the shipped preset it was renamed to (logging one deprecation line)."""
    new = RENAMED_PRESETS.get(kind, {}).get(name)
    if new is None:
        return name
    from gaia.common.deprecation import deprecated

    deprecated(f"the {kind} preset {name!r}", repr(new))
    return new


def read_preset(kind: str, name_or_path: str | Path, prefix: str = "",
                what: str = "config") -> tuple[str, dict[str, Any]]:
    """``(name, values)`` of a shipped preset or a YAML file; ``what`` names it in errors.
    A preset's old name (``RENAMED_PRESETS``) reads the renamed one, under its new name."""
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")):
        path = Path(text)
        if not path.is_file():
            raise ConfigError(f"no {what} config file {text}")
        name, source, where = path.stem, path.read_text(encoding="utf-8"), str(path)
    else:
        text = current_preset(kind, text)
        entry = files(PRESETS) / kind / f"{text}.yaml"
        if not entry.is_file():
            raise ConfigError(f"no {what} config {text!r}: choose one of "
                              f"{', '.join(preset_names(kind, prefix)) or '(none found)'} "
                              "or give a YAML file")
        name, source, where = text, entry.read_text(encoding="utf-8"), f"preset {text}"
    values = parse_yaml(source, where) or {}
    if not isinstance(values, dict):
        raise ConfigError(f"{where} must hold a mapping of keys, not {type(values).__name__}")
    return name, values


def parse_overrides(items: tuple[str, ...] | list[str] | None) -> dict[str, Any]:
    """``["lr=1e-4", "jitter.max_box=0.1"]`` -> ``{"lr": 1e-4, "jitter": {"max_box": 0.1}}``."""
    values: dict[str, Any] = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        parts = [p.strip() for p in key.split(".")]
        if not sep or not all(parts):
            raise ConfigError(f"bad --set {item!r}: write KEY=VALUE (dotted for nested keys), "
                              "e.g. lr=1e-4 or jitter.max_box=0.1")
        node = values
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r} conflicts with another --set of {part}")
        node[parts[-1]] = parse_yaml(raw, f"--set {item}")
    return values


def merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``, mapping by mapping (nested keys are merged, not replaced)."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def build_config(cls: type[C], values: dict[str, Any], what: str, _prefix: str = "") -> C:
    """A ``cls`` from plain values, each checked against the field's type; nested dataclass
    fields take mappings. Errors are ``ConfigError`` naming the dotted key."""
    if not isinstance(values, dict):
        raise ConfigError(f"{what} {_prefix.rstrip('.') or 'config'} must be a mapping of "
                          f"keys, not {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    checked: dict[str, Any] = {}
    for key, value in values.items():
        label = f"{_prefix}{key}"
        if key not in fields:
            raise ConfigError(f"unknown {what} config key {label!r}: "
                              f"{_prefix.rstrip('.') or what} has {', '.join(sorted(fields))}")
        kind = hints[key]
        if dataclasses.is_dataclass(kind):
            checked[key] = build_config(kind, value, what, f"{label}.")
        else:
            checked[key] = _coerce(f"{what} config {label}", value, kind)
    try:
        return cls(**checked)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{what} config {_prefix.rstrip('.') or ''}: {err}".replace(" : ", ": ")) from err


def load_config(cls: type[C], kind: str, name_or_path: str | Path, prefix: str = "",
                what: str = "config", overrides: dict[str, Any] | None = None) -> C:
    """``cls``'s defaults, then a preset or YAML file, then ``overrides`` (nested mapping,
    as ``parse_overrides`` gives). A ``name`` field, if ``cls`` has one, gets the preset's."""
    name, values = read_preset(kind, name_or_path, prefix, what)
    if "name" in {f.name for f in dataclasses.fields(cls)}:
        values = {"name": name, **values}
    return build_config(cls, merge(values, overrides or {}), what)


def config_dict(config: Any) -> dict[str, Any]:
    """Plain values of a config dataclass, nested, tuples as lists: ready for YAML or JSON."""
    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    return plain(dataclasses.asdict(config))


def dump_yaml(values: dict[str, Any]) -> str:
    """Plain values as YAML in key order, the way resolved configs are written beside runs."""
    return yaml.safe_dump(values, sort_keys=False, default_flow_style=False)


def _coerce(label: str, value: Any, kind: Any) -> Any:
    """``value`` checked against the annotation ``kind`` (plain types, tuples, optionals)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return _coerce(label, value, option)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if len(errors) == 1 else
                          f"{label} must be one of {', '.join(map(_name, options))}, "
                          f"not {value!r}")
    if origin is tuple or kind is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{label} must be a list, not {value!r}")
        if not args:
            return tuple(value)
        element = args[0]
        return tuple(_coerce(label, v, element) for v in value)
    if kind is Any:
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{label} must be true or false, not {value!r}")
        return value
    if kind in (int, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{label} must be a number, not {value!r}")
        if not math.isfinite(value):  # NaN or an infinity: no threshold or size means that
            raise ConfigError(f"{label} must be a finite number, not {value!r}")
        if kind is int and value != int(value):
            raise ConfigError(f"{label} must be a whole number, not {value!r}")
        return kind(value)
    if isinstance(kind, type) and not isinstance(value, kind):
        raise ConfigError(f"{label} must be a {kind.__name__}, not {value!r}")
    return value


def _name(kind: Any) -> str:
    return getattr(kind, "__name__", str(kind))
