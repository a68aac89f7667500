"""A training run as one YAML file: the model and the run options together (lingua's and
torchtitan's run configs; docs/practices.md).

``gaia train vae --config RUN.yaml`` reads::

    model: vae-tiny          # a preset, a model YAML file, or a mapping of model keys
    shards: demo/run/shards/vae
    out: demo/vae-tiny
    max_steps: 300
    perceptual: none

A mapping under ``model`` names model keys, optionally on top of a preset
(``model: {preset: vae-tiny, lr: 1.0e-3}``). Every other key is a run option, named like the
command's flags (``max_steps`` for ``--max-steps``). Precedence, lowest first: the dataclasses'
defaults, the model preset, the run file, the command line (run flags, ``--set KEY=VALUE`` for
model keys). ``--config`` still takes a preset name or a model YAML file alone (no ``model:``,
no run keys): then the run options come from the flags and the defaults only.

Everything is read by the one loader (``gaia.common.config_files``): numbers are numbers
(``1e-3``), and an unknown key or a value of the wrong type is a ``ConfigError`` naming it.
A run writes its resolved form (``resolved_run``) beside itself as ``RUN_DIR/config.yaml``;
``--config RUN_DIR/config.yaml --resume`` continues that same run.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

from gaia.common.config_files import (
    ConfigError,
    build_config,
    config_dict,
    load_config,
    merge,
    read_preset,
)

Opts = TypeVar("Opts")
M = TypeVar("M")
MODEL_KEY = "model"
# Run options a run file does not hold: the model is its `model:`, --set is for the command
# line, and --resume says how a run starts, not what it is (config.yaml leaves it out).
NOT_IN_FILE = ("config", "overrides")
NOT_RESOLVED = (*NOT_IN_FILE, "resume")


def field_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def read_run_file(config: str, options_cls: type, model_cls: type
                  ) -> tuple[str | dict[str, Any], dict[str, Any]] | None:
    """``(model spec, run options)`` when ``config`` is a run file; None when it is a preset
    name or a model YAML file (no ``model:`` key and no key only a run option has)."""
    if not str(config).endswith((".yaml", ".yml")):
        return None
    _, values = read_preset("training", config, what="run")
    run_only = field_names(options_cls) - field_names(model_cls)
    if MODEL_KEY not in values:
        stray = sorted(set(values) & run_only)
        if stray:
            raise ConfigError(f"{config} holds run options ({', '.join(stray)}) but no model: "
                              "key: add `model: PRESET` or a mapping of model keys")
        return None
    for key in NOT_IN_FILE:
        if key in values:
            raise ConfigError(f"{config}: {key!r} is not a run-file key: name the model "
                              "under model: (a preset, a model YAML file or a mapping), and "
                              "give --set on the command line")
    known = field_names(options_cls) - set(NOT_IN_FILE)
    for key in values:  # build_config checks again; here the message names the file
        if key != MODEL_KEY and key not in known:
            raise ConfigError(f"unknown run config key {key!r} in {config}: a run file has "
                              f"{MODEL_KEY}, {', '.join(sorted(known))}")
    model = values.pop(MODEL_KEY)
    if not isinstance(model, str | dict):
        raise ConfigError(f"{config}: model must be a preset name, a YAML file or a mapping "
                          f"of model keys, not {model!r}")
    return model, values


def resolve_options(options_cls: type[Opts], model_cls: type, config: str,
                    flags: dict[str, Any], overrides: tuple[str, ...] = ()) -> Opts:
    """The run options: defaults, then the run file ``config`` names (if it is one), then
    ``flags`` (those given: None means not given). ``config`` of the result is the model spec
    (a preset name, a YAML path or a mapping of model keys)."""
    found = read_run_file(config, options_cls, model_cls)
    model, values = (config, {}) if found is None else found
    values = {**values, **{k: v for k, v in flags.items() if v is not None}}
    for key in ("shards", "out"):
        if values.get(key) is None:
            raise ConfigError(f"no {key} given: pass --{key}, or give --config a run file "
                              f"(RUN.yaml) that holds `{key}:`")
    return build_config(options_cls, {**values, "config": model,
                                      "overrides": tuple(overrides)}, "run")


def load_model(model_cls: type[M], spec: str | dict[str, Any], prefix: str, what: str,
               overrides: dict[str, Any] | None = None) -> M:
    """A model config from a spec: a preset name or YAML file (``load_config``), or a mapping
    of model keys, optionally on top of ``preset: NAME``; ``overrides`` (``--set``) last."""
    if not isinstance(spec, dict):
        return load_config(model_cls, "training", spec, prefix, what, overrides)
    values = dict(spec)
    preset = values.pop("preset", None)
    if preset is not None:
        if not isinstance(preset, str | Path):
            raise ConfigError(f"{what} model.preset must be a preset name or a YAML file, "
                              f"not {preset!r}")
        name, base = read_preset("training", preset, prefix, what)
        if "name" in field_names(model_cls):
            base = {"name": name, **base}
        values = merge(base, values)
    return build_config(model_cls, merge(values, overrides or {}), what)


def resolved_run(options: Any, model: Any) -> dict[str, Any]:
    """What ``config.yaml`` holds: the model's every key, then the run options (all but
    ``NOT_RESOLVED``); read back as a run file it gives the same model and options."""
    values = config_dict(options)
    for key in NOT_RESOLVED:
        values.pop(key, None)
    return {MODEL_KEY: config_dict(model), **values}
