"""What a filter declares once: its reasons, its thresholds and how each one reads a measure.

A filter module holds two things: the reference function (``measures, thresholds -> Verdict``)
and a ``FilterSpec``. Everything else that knows about filters is derived from the specs in
``gaia.filters.registry``: the compact tune table's columns and grids, the fused tune pass's
parameters, the tune server's sliders and switches, the report's panels, ``curate tune --help``
and README's filter table. Adding a filter is one module and one ``register`` call.

A ``ThresholdKey`` is a threshold compared with one measure column. Its comparison is the one
under which a frame *fails*: ``">"`` (``max_*`` keys), ``">="`` or ``"<"`` (``min_*`` keys);
a missing value (NaN) never fails a comparison, so a frame without a face is left to the
face-count rule. The tune table stores such a column as codes on the key's grid, rounded so
that any threshold on the grid decides every frame exactly as the float does
(``gaia.schemas.tune_table``); a key with no grid is stored exact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gaia.filters.base import Measures, Verdict

COMPARISONS = (">", ">=", "<")
TRANSFORMS = ("none", "abs", "abs180")
# How the fused tune pass decides a filter: "compare" is generic (the frame fails when any of
# its keys' comparisons fails, with the filter's one reason); the others are kernels written
# in ``gaia.pipeline.tune.fused`` for rules that are more than comparisons.
FUSED_KINDS = ("compare", "face_count", "silence")
# The fused pass keeps a frame's failing filters as bits of one 32-bit word, and has one kernel
# per special kind: at most this many filters, and one of each kind but ``compare``.
MAX_FILTERS = 32


@dataclass(frozen=True)
class Grid:
    """The tune table's code grid for a measure: thresholds ``low + k * step``."""

    step: float
    low: float = 0.0


@dataclass(frozen=True)
class Slider:
    """A threshold's slider on the tune page: range and step (a whole multiple of its grid's
    step, so every position is answered exactly from the table)."""

    low: float
    high: float
    step: float


@dataclass(frozen=True)
class ThresholdKey:
    """One threshold of a filter and the measure it cuts (module docstring).

    ``column`` names the metrics column; where an option of the filter chooses it (frontal's
    ``reading``), ``columns`` maps that option's values to columns and ``chosen_by`` names the
    option. ``transform`` is applied to the measure before comparing (``abs180``: |v - 180|).
    ``slider``: its slider on the tune page and panel in the report (None: neither).
    ``plot``: the range of the report's histogram (default: the slider's). ``exact``: the
    stored type of a column kept exact (no grid).
    """

    name: str
    column: str
    compare: str
    label: str
    slider: Slider | None
    grid: Grid | None = None
    transform: str = "none"
    columns: tuple[tuple[str, str], ...] = ()
    chosen_by: str = ""
    plot: tuple[float, float] | None = None
    exact: str = "float32"

    def __post_init__(self) -> None:
        if self.compare not in COMPARISONS:
            raise ValueError(f"key {self.name}: compare must be one of {COMPARISONS}")
        if self.transform not in TRANSFORMS:
            raise ValueError(f"key {self.name}: transform must be one of {TRANSFORMS}")
        if bool(self.columns) != bool(self.chosen_by):
            raise ValueError(f"key {self.name}: columns and chosen_by go together")

    @property
    def all_columns(self) -> tuple[str, ...]:
        """Every metrics column this key may read."""
        return tuple(dict.fromkeys([self.column, *(c for _, c in self.columns)]))

    def column_for(self, section: Any) -> str:
        """The column read under the filter's thresholds ``section``."""
        if not self.chosen_by:
            return self.column
        return dict(self.columns)[getattr(section, self.chosen_by)]

    @property
    def keeps_below(self) -> bool:
        """Frames at or below the threshold pass (a ``max_*`` key)."""
        return self.compare == ">"

    @property
    def plot_range(self) -> tuple[float, float]:
        if self.plot:
            return self.plot
        if self.slider is None:
            raise ValueError(f"key {self.name} has no slider and no plot range")
        return (self.slider.low, self.slider.high)


@dataclass(frozen=True)
class FilterSpec:
    """A filter, declared once (module docstring).

    ``name`` is its section in presets and ``--set`` (``FILTER.KEY=VALUE``); ``thresholds`` its
    frozen dataclass (every one has ``enabled``); ``run`` the reference decision; ``reasons``
    the codes it may drop a frame for; ``keys`` its thresholds on measures; ``fused`` how the
    fused pass decides it (``FUSED_KINDS``); ``title`` and ``rule``: a short name and one line
    on when it drops a frame, for ``--help`` and README.
    """

    name: str
    thresholds: type
    run: Callable[[Measures, Any], Verdict]
    reasons: tuple[str, ...]
    keys: tuple[ThresholdKey, ...]
    title: str
    rule: str
    fused: str = "compare"

    def __post_init__(self) -> None:
        if self.fused not in FUSED_KINDS:
            raise ValueError(f"filter {self.name}: fused must be one of {FUSED_KINDS}")
        if self.fused == "compare" and len(self.reasons) != 1:
            raise ValueError(f"filter {self.name}: a compare filter drops for one reason")
        fields = set(getattr(self.thresholds, "__dataclass_fields__", {}))
        missing = [k.name for k in self.keys if k.name not in fields] + (
            [] if "enabled" in fields else ["enabled"])
        if missing:
            raise ValueError(f"filter {self.name}: {self.thresholds.__name__} has no "
                             f"{', '.join(missing)}")
