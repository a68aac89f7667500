"""The filters, in the order they run, and what is derived from their specs.

``BUILTIN`` names the filter modules shipped in ``gaia.filters`` (``run_wide.*``: those that
read a run-wide table); each declares a ``SPEC``
(``gaia.filters.spec``). They are registered when the package is first imported, in this
order, which is the order a frame's *first* failing reason is taken in. A plug-in filter is
one module with its reference function and spec, and one call: ``register(SPEC)``.

From the specs come: the metrics columns the decision reads (``measure_columns``), the compact
tune table's coded and exact columns (``coded_columns``, ``exact_columns``) and the name the
fused pass looks a coded column up by (``coded_name``). Reason codes are
handed out as filters register (``gaia.filters.base.add_reasons``): a code never moves while a
process runs.
"""

from __future__ import annotations

import importlib

from gaia.filters.base import add_reasons
from gaia.filters.spec import MAX_FILTERS, FilterSpec, ThresholdKey
from gaia.schemas.tune_table import CodedColumn

BUILTIN = ("run_wide.duplicate", "face_count", "shot_cut", "identity", "face_size", "frontal",
           "jitter", "occlusion", "sharpness", "silence", "lip_sync")
# Sections of CurationThresholds that are not filters.
RESERVED = frozenset({"segments", "instructions"})

_specs: list[FilterSpec] = []


def register(spec: FilterSpec, before: str | None = None) -> FilterSpec:
    """Add a filter to the decision, at the end or before the filter named ``before``.

    Refused with ``ValueError``: a name taken, a reason another filter drops for, a compare
    filter whose key has no grid, a column another key codes on another grid, or what the
    fused pass cannot decide (more than ``MAX_FILTERS``, two filters of one special kind).
    """
    if spec.name in RESERVED or any(s.name == spec.name for s in _specs):
        raise ValueError(f"a filter named {spec.name!r} is already registered")
    if len(_specs) >= MAX_FILTERS:
        raise ValueError(f"filter {spec.name}: the fused pass decides at most {MAX_FILTERS}")
    if spec.fused != "compare" and any(s.fused == spec.fused for s in _specs):
        raise ValueError(f"filter {spec.name}: the fused pass has one {spec.fused} kernel, "
                         "and another filter uses it")
    taken = {r: s.name for s in _specs for r in s.reasons}
    clash = [r for r in spec.reasons if r in taken]
    if clash:
        raise ValueError(f"filter {spec.name}: reason {clash[0]!r} belongs to {taken[clash[0]]}")
    if spec.fused == "compare" and any(k.grid is None for k in spec.keys):
        raise ValueError(f"filter {spec.name}: every key of a compare filter needs a grid")
    _check_columns([*_specs, spec])
    add_reasons(spec.reasons)
    index = len(_specs) if before is None else [s.name for s in _specs].index(before)
    _specs.insert(index, spec)
    return spec


def unregister(name: str) -> None:
    """Take a filter out of the decision (its reason codes stay: codes never move)."""
    _specs[:] = [s for s in _specs if s.name != name]


def filters() -> tuple[FilterSpec, ...]:
    """Every registered filter, in the order they run."""
    return tuple(_specs)


def measure_columns() -> tuple[str, ...]:
    """The metrics columns the decision reads: ``time_s`` and every key's columns."""
    names = ["time_s"] + [c for s in _specs for k in s.keys for c in k.all_columns]
    return tuple(dict.fromkeys(names))


def coded_name(k: ThresholdKey, column: str) -> str:
    """The tune table's name for ``column`` read through ``k``'s transform."""
    return column if k.transform == "none" else f"{column}_{k.transform}"


def _coded(k: ThresholdKey, column: str) -> CodedColumn:
    assert k.grid is not None
    rounding = "ceil" if k.compare == ">" else "floor"
    return CodedColumn(coded_name(k, column), column, k.transform, rounding, k.grid.step,
                       k.grid.low)


def coded_columns() -> tuple[CodedColumn, ...]:
    """The tune table's coded columns, one per (column, transform) a gridded key reads."""
    out: dict[str, CodedColumn] = {}
    for spec in _specs:
        for k in spec.keys:
            if k.grid is not None:
                for column in k.all_columns:
                    out.setdefault(coded_name(k, column), _coded(k, column))
    return tuple(out.values())


def exact_columns() -> dict[str, str]:
    """The columns stored exact in the tune table (keys with no grid): name -> numpy type."""
    return {c: k.exact for s in _specs for k in s.keys if k.grid is None for c in k.all_columns}


def _check_columns(specs: list[FilterSpec]) -> None:
    seen: dict[str, tuple[str, CodedColumn | str]] = {}
    for spec in specs:
        for k in spec.keys:
            for column in k.all_columns:
                name = coded_name(k, column) if k.grid is not None else column
                form = _coded(k, column) if k.grid is not None else k.exact
                owner, known = seen.setdefault(name, (f"{spec.name}.{k.name}", form))
                if known != form:
                    raise ValueError(f"{spec.name}.{k.name} stores {name} otherwise than "
                                     f"{owner} does (grid, rounding or type)")


for _module in BUILTIN:
    register(importlib.import_module(f"gaia.filters.{_module}").SPEC)
