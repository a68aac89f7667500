"""All curation thresholds in one frozen dataclass, with presets and ``--set`` overrides.

A preset is a YAML file in ``configs/curation/`` naming only what differs from the defaults
below; ``FILTER.KEY=VALUE`` overrides apply on top. Unknown filters or keys, bad values and
missing presets are errors that name the key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from gaia.filters.base import KEPT, Measures, Verdict
from gaia.filters.face_count import FaceCountThresholds, face_count_filter
from gaia.filters.frontal import FrontalThresholds, frontal_filter
from gaia.filters.jitter import JitterThresholds, jitter_filter
from gaia.filters.occlusion import OcclusionThresholds, occlusion_filter
from gaia.filters.segments import SegmentRules
from gaia.filters.silence import SilenceThresholds, silence_filter

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "curation"


class SettingsError(ValueError):
    """A preset or override that cannot be applied; the message names the key."""


@dataclass(frozen=True)
class CurationThresholds:
    """Every filter's thresholds and the segment rules. Filters run in this order; a frame's
    ``first`` reason is the first filter it fails."""

    face_count: FaceCountThresholds = field(default_factory=FaceCountThresholds)
    frontal: FrontalThresholds = field(default_factory=FrontalThresholds)
    jitter: JitterThresholds = field(default_factory=JitterThresholds)
    occlusion: OcclusionThresholds = field(default_factory=OcclusionThresholds)
    silence: SilenceThresholds = field(default_factory=SilenceThresholds)
    segments: SegmentRules = field(default_factory=SegmentRules)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


FILTERS = {
    "face_count": face_count_filter,
    "frontal": frontal_filter,
    "jitter": jitter_filter,
    "occlusion": occlusion_filter,
    "silence": silence_filter,
}


def apply_filters(measures: Measures, thresholds: CurationThresholds) -> dict[str, Verdict]:
    """Every filter's verdict on one video, in order."""
    return {name: run(measures, getattr(thresholds, name)) for name, run in FILTERS.items()}


def first_reasons(verdicts: dict[str, Verdict], n: int) -> np.ndarray:
    """Per frame, the code of the first filter's reason that drops it (0 if none does)."""
    first = np.full(n, KEPT, np.uint8)
    for verdict in verdicts.values():
        unset = first == KEPT
        first[unset] = verdict.reasons[unset]
    return first


def available_presets() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def load_thresholds(preset: str | None = None, overrides: list[str] | None = None
                    ) -> CurationThresholds:
    """The defaults, then ``preset`` (a name in configs/curation or a YAML path), then
    ``FILTER.KEY=VALUE`` overrides."""
    values: dict[str, dict[str, Any]] = {}
    if preset:
        path = Path(preset) if preset.endswith((".yaml", ".yml")) else CONFIG_DIR / f"{preset}.yaml"
        if not path.is_file():
            raise SettingsError(f"no preset {preset!r}: choose one of "
                                f"{', '.join(available_presets()) or '(none found)'} "
                                f"or give a YAML file")
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for section, keys in loaded.items():
            for key, value in (keys or {}).items():
                values.setdefault(section, {})[key] = value
    for item in overrides or []:
        section, key, value = parse_override(item)
        values.setdefault(section, {})[key] = value
    return build_thresholds(values)


def parse_override(item: str) -> tuple[str, str, Any]:
    """``"jitter.max_box=0.1"`` -> ``("jitter", "max_box", 0.1)`` (value parsed as YAML)."""
    name, sep, raw = item.partition("=")
    section, dot, key = name.strip().partition(".")
    if not sep or not dot or not key:
        raise SettingsError(f"bad setting {item!r}: write FILTER.KEY=VALUE, e.g. jitter.max_box=0.1")
    return section, key.strip(), yaml.safe_load(raw)


def build_thresholds(values: dict[str, dict[str, Any]]) -> CurationThresholds:
    """Check every section and key against the dataclasses; errors name the key."""
    sections = {f.name: f for f in dataclasses.fields(CurationThresholds)}
    built = {}
    for section, keys in values.items():
        if section not in sections:
            raise SettingsError(f"unknown filter {section!r}: choose one of "
                                f"{', '.join(sections)}")
        kind = sections[section].default_factory
        known = {f.name: f for f in dataclasses.fields(kind)}
        for key, value in keys.items():
            if key not in known:
                raise SettingsError(f"unknown key {section}.{key}: {section} has "
                                    f"{', '.join(known)}")
            expected = type(getattr(kind(), key))
            if expected is bool and not isinstance(value, bool):
                raise SettingsError(f"{section}.{key} must be true or false, not {value!r}")
            if expected in (int, float) and (isinstance(value, bool)
                                             or not isinstance(value, int | float)):
                raise SettingsError(f"{section}.{key} must be a number, not {value!r}")
        try:
            built[section] = kind(**{k: (float(v) if type(getattr(kind(), k)) is float else v)
                                     for k, v in keys.items()})
        except ValueError as err:
            raise SettingsError(str(err)) from err
    return CurationThresholds(**built)
