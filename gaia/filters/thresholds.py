"""All curation thresholds in one frozen dataclass, with presets and ``--set`` overrides.

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

from gaia.common.config_files import build_config, merge, parse_overrides, preset_names, read_preset
from gaia.filters.base import KEPT, Measures, Verdict
from gaia.filters.face_count import FaceCountThresholds, face_count_filter
from gaia.filters.face_size import FaceSizeThresholds, face_size_filter
from gaia.filters.frontal import FrontalThresholds, frontal_filter
from gaia.filters.identity import IdentityThresholds, identity_filter
from gaia.filters.jitter import JitterThresholds, jitter_filter
from gaia.filters.occlusion import OcclusionThresholds, occlusion_filter
from gaia.filters.segments import SegmentRules
from gaia.filters.sharpness import SharpnessThresholds, sharpness_filter
from gaia.filters.shot_cut import ShotCutThresholds, shot_cut_filter
from gaia.filters.silence import SilenceThresholds, silence_filter

KIND = "curation"  # presets in gaia/configs/curation/


@dataclass(frozen=True)
class CurationThresholds:
    """Every filter's thresholds and the segment rules. Filters run in this order; a frame's
    ``first`` reason is the first filter it fails."""

    face_count: FaceCountThresholds = field(default_factory=FaceCountThresholds)
    shot_cut: ShotCutThresholds = field(default_factory=ShotCutThresholds)
    identity: IdentityThresholds = field(default_factory=IdentityThresholds)
    face_size: FaceSizeThresholds = field(default_factory=FaceSizeThresholds)
    frontal: FrontalThresholds = field(default_factory=FrontalThresholds)
    jitter: JitterThresholds = field(default_factory=JitterThresholds)
    occlusion: OcclusionThresholds = field(default_factory=OcclusionThresholds)
    sharpness: SharpnessThresholds = field(default_factory=SharpnessThresholds)
    silence: SilenceThresholds = field(default_factory=SilenceThresholds)
    segments: SegmentRules = field(default_factory=SegmentRules)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


FILTERS = {
    "face_count": face_count_filter,
    "shot_cut": shot_cut_filter,
    "identity": identity_filter,
    "face_size": face_size_filter,
    "frontal": frontal_filter,
    "jitter": jitter_filter,
    "occlusion": occlusion_filter,
    "sharpness": sharpness_filter,
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
    """Names of the curation presets shipped in ``gaia/configs/curation/``."""
    return preset_names(KIND)


def load_thresholds(preset: str | None = None, overrides: list[str] | None = None
                    ) -> CurationThresholds:
    """The defaults, then ``preset`` (a shipped name or a YAML path), then
    ``FILTER.KEY=VALUE`` overrides; ``ConfigError`` names any bad key."""
    values = read_preset(KIND, preset, what="curation")[1] if preset else {}
    return build_thresholds(merge(values, parse_overrides(overrides)))


def build_thresholds(values: dict[str, dict[str, Any]]) -> CurationThresholds:
    """Check every section and key against the dataclasses; errors name the key."""
    return build_config(CurationThresholds, values, "curation")
