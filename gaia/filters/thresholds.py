"""All curation thresholds in one frozen value, with presets and ``--set`` overrides.

Its sections are the registered filters' (``gaia.filters.registry``), so a new filter's
thresholds are read from presets and ``--set`` with no edit here.

A preset is a YAML file in ``gaia/configs/curation/`` naming only what differs from the
defaults below; ``FILTER.KEY=VALUE`` overrides apply on top. Reading them is the project's one
config loader (``gaia.common.config_files``): unknown filters or keys, bad values and missing
presets are ``ConfigError`` naming the key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gaia.common.config_files import (
    ConfigError,
    build_config,
    merge,
    parse_overrides,
    preset_names,
    read_preset,
)
from gaia.filters.base import KEPT, Measures, Verdict
from gaia.filters.instruct.rules import InstructionRules
from gaia.filters.registry import RESERVED, filters
from gaia.filters.segments import SegmentRules

KIND = "curation"  # presets in gaia/configs/curation/


def _defaults() -> tuple[tuple[str, Any], ...]:
    return tuple((spec.name, spec.thresholds()) for spec in filters())


@dataclass(frozen=True)
class CurationThresholds:
    """Every registered filter's thresholds (``sections``: name and frozen dataclass, in the
    order the filters run), the segment rules, and the instruction rules (appendix E: when
    ``instructions.enabled``, clips follow instructions instead of being segments). A section
    reads as an attribute (``thresholds.jitter.max_box``); a frame's ``first`` reason is the
    first filter it fails."""

    sections: tuple[tuple[str, Any], ...] = field(default_factory=_defaults)
    segments: SegmentRules = field(default_factory=SegmentRules)
    instructions: InstructionRules = field(default_factory=InstructionRules)

    def __getattr__(self, name: str) -> Any:
        # Called only for names that are not fields: a filter's section. Before ``sections``
        # is set (unpickling), and for dunder look-ups, there is none.
        if name.startswith("__") or "sections" not in self.__dict__:
            raise AttributeError(name)
        try:
            return self.section(name)
        except KeyError:
            raise AttributeError(f"no curation filter {name!r}") from None

    def section(self, name: str) -> Any:
        """The thresholds of the filter ``name`` (``KeyError`` when this set has none)."""
        for section, values in self.sections:
            if section == name:
                return values
        raise KeyError(f"these thresholds have no filter {name!r}")

    def to_dict(self) -> dict:
        """Plain values, one mapping per filter then ``segments`` (and ``instructions`` when
        they are on: thresholds that cut segments read exactly as before they existed)."""
        out = {name: dataclasses.asdict(values) for name, values in self.sections}
        out["segments"] = dataclasses.asdict(self.segments)
        if self.instructions.enabled:
            out["instructions"] = self.instructions.to_dict()
        return out


def apply_filters(measures: Measures, thresholds: CurationThresholds) -> dict[str, Verdict]:
    """Every filter's verdict on one video, in order."""
    return {spec.name: spec.run(measures, thresholds.section(spec.name)) for spec in filters()}


def first_reasons(verdicts: dict[str, Verdict], n: int) -> np.ndarray:
    """Per frame, the code of the first filter's reason that drops it (0 if none does)."""
    first = np.full(n, KEPT, np.uint8)
    for verdict in verdicts.values():
        unset = first == KEPT
        first[unset] = verdict.reasons[unset]
    return first


def available_presets() -> list[str]:
    """Names of the curation presets shipped in ``gaia/configs/curation/``."""
    return preset_names(KIND)


def load_thresholds(preset: str | None = None, overrides: list[str] | None = None
                    ) -> CurationThresholds:
    """The defaults, then ``preset`` (a shipped name or a YAML path), then
    ``FILTER.KEY=VALUE`` overrides; ``ConfigError`` names any bad key."""
    values = read_preset(KIND, preset, what="curation")[1] if preset else {}
    return build_thresholds(merge(values, parse_overrides(overrides)))


def build_thresholds(values: dict[str, dict[str, Any]]) -> CurationThresholds:
    """Check every section and key against the filters' dataclasses; errors name the key."""
    if not isinstance(values, dict):
        raise ConfigError(f"curation thresholds must be a mapping of filters, not {values!r}")
    specs = {spec.name: spec for spec in filters()}
    known = [*specs, *sorted(RESERVED)]
    for name in values:
        if name not in known:
            raise ConfigError(f"unknown curation config key {name!r}: curation has "
                              f"{', '.join(sorted(known))}")
    sections = tuple((name, build_config(spec.thresholds, values.get(name, {}), "curation",
                                         f"{name}.")) for name, spec in specs.items())
    segments = build_config(SegmentRules, values.get("segments", {}), "curation", "segments.")
    instructions = build_config(InstructionRules, values.get("instructions", {}), "curation",
                                "instructions.")
    return CurationThresholds(sections, segments, instructions)
