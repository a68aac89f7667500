"""A filter is declared once (``gaia.filters.spec``): a toy filter, written in a temporary
module and registered with one call, shows up everywhere filters are known (the tune table,
the fused pass, the server's sliders and switches, the report's panels, ``curate tune --help``,
README's table, presets and ``--set``) with no other edit, and the fused pass decides it as its
reference function does. README's filter table is the one the specs give."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from gaia.filters import registry
from gaia.filters.describe import readme_table, tune_help
from gaia.filters.thresholds import load_thresholds
from gaia.pipeline.compact_table import TUNE_DIR, build_tune_table
from gaia.pipeline.tune.table import funnel_for, parse_sweep, run_sweep
from tests.test_tune_table import assert_same_funnel, synthetic_run

README = Path(__file__).resolve().parents[1] / "README.md"

TOY = '''
"""A toy filter: drop frames whose head is pitched more than ``max_pitch_deg``."""

from dataclasses import dataclass

import numpy as np

from gaia.filters.base import Verdict, column
from gaia.filters.spec import FilterSpec, Grid, Slider, ThresholdKey


@dataclass(frozen=True)
class ToyThresholds:
    enabled: bool = True
    max_pitch_deg: float = 20.0


def toy_filter(measures, thresholds):
    pitched = np.abs(column(measures, "pitch_deg")) > thresholds.max_pitch_deg
    return Verdict.from_mask(~pitched | (not thresholds.enabled), "pitched")


SPEC = FilterSpec(
    name="toy_pitch", thresholds=ToyThresholds, run=toy_filter, reasons=("pitched",),
    title="head pitch", rule="|pitch| > `max_pitch_deg`",
    keys=(ThresholdKey("max_pitch_deg", "pitch_deg", ">", "toy |pitch| (deg)",
                       Slider(1.0, 60.0, 0.5), Grid(0.01), transform="abs"),),
)
'''


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """The toy filter's module, registered before the silence rule, and unregistered after."""
    (tmp_path / "toy_filter_module.py").write_text(TOY)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("toy_filter_module")
    registry.register(module.SPEC, before="silence")
    yield module
    registry.unregister("toy_pitch")
    sys.modules.pop("toy_filter_module", None)


def test_a_toy_filter_appears_everywhere_and_the_fused_pass_agrees(toy, tmp_path):
    from gaia.cli import build_parser
    from gaia.pipeline.tune import fused
    from gaia.pipeline.tune.report import write_report
    from gaia.pipeline.tune.serve import TuneApp

    # Presets and --set know it; its default comes from its dataclass.
    assert load_thresholds("vae").toy_pitch.max_pitch_deg == 20.0
    assert load_thresholds(None, ["toy_pitch.max_pitch_deg=7.5"]).toy_pitch.max_pitch_deg == 7.5

    # The tune table codes its column, on its grid, with the comparison's rounding.
    assert "pitch_deg" in registry.measure_columns()
    coded = {c.name: c for c in registry.coded_columns()}["pitch_deg_abs"]
    assert (coded.source, coded.transform, coded.rounding, coded.step) == (
        "pitch_deg", "abs", "ceil", 0.01)
    run = synthetic_run(tmp_path / "syn", 8, seed=5)
    build_tune_table(run)
    part = next((run / TUNE_DIR).glob("part-*.arrow"))
    with pa.memory_map(str(part)) as source:
        schema = pa.ipc.open_file(source).schema
    assert json.loads(schema.field("pitch_deg_abs").metadata[b"coded"])["source"] == "pitch_deg"

    # The fused pass decides it as its reference function does, at several thresholds, and
    # the threshold matters (it drops frames, fewer as it loosens).
    loose = [f"{s.name}.enabled=false" for s in registry.filters()
             if s.name not in ("face_count", "toy_pitch")] + ["segments.min_s=1",
                                                               "segments.max_s=4"]
    kept = []
    for value in (5.0, 12.5, 30.0):
        thresholds = load_thresholds(None, [f"toy_pitch.max_pitch_deg={value}", *loose])
        params = fused.parameters(thresholds)
        assert params.kinds.size == len(registry.filters())
        table = funnel_for(run, thresholds, source="table")
        assert_same_funnel(table, funnel_for(run, thresholds, source="metrics"))
        assert table.to_json()["dropped_frames_any"]["pitched"] > 0
        kept.append(table.kept_frames)
    assert kept[0] < kept[1] < kept[2]
    off = load_thresholds(None, ["toy_pitch.enabled=false", *loose])
    assert "pitched" not in funnel_for(run, off, source="table").to_json()["dropped_frames_any"]
    swept = run_sweep(run, load_thresholds(None, loose),
                      parse_sweep("toy_pitch.max_pitch_deg=5:15:5"))
    assert [f.kept_frames for _, f in swept] == sorted(f.kept_frames for _, f in swept)

    # The server: a slider on its key, a switch for it, a histogram of its measure.
    state = TuneApp(run, load_thresholds("vae"), None).state()
    slider = [s for s in state["sliders"] if s["section"] == "toy_pitch"]
    assert slider and slider[0]["key"] == "max_pitch_deg" and slider[0]["max"] == 60.0
    assert "toy_pitch" in [s["section"] for s in state["switches"]]
    assert sum(state["histograms"]["toy |pitch| (deg)"]["counts"]) > 0

    # The report: a panel for it, and its reason in the strips' legend.
    page = write_report(run, load_thresholds("vae"), tmp_path / "report.html").read_text()
    assert "toy |pitch| (deg)" in page and "toy_pitch.max_pitch_deg" in page
    assert "pitched" in page

    # `gaia curate tune --help` and README's table.
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown), pytest.raises(SystemExit):
        build_parser().parse_args(["curate", "tune", "--help"])
    assert "toy_pitch    max_pitch_deg: drops a frame when |pitch| > max_pitch_deg" in \
        shown.getvalue()
    assert "| head pitch (`toy_filter_module.py`) | \\|pitch\\| > `max_pitch_deg` | `pitched` |" \
        in readme_table()


def test_registering_refuses_what_would_break_the_decision(toy):
    with pytest.raises(ValueError, match="already registered"):
        registry.register(toy.SPEC)
    clash = toy.SPEC.__class__(**{**toy.SPEC.__dict__, "name": "other", "reasons": ("jitter",)})
    with pytest.raises(ValueError, match="belongs to jitter"):
        registry.register(clash)
    # The same column read through the same transform but rounded the other way.
    key = toy.SPEC.keys[0].__class__(**{**toy.SPEC.keys[0].__dict__, "compare": "<"})
    other = toy.SPEC.__class__(**{**toy.SPEC.__dict__, "name": "other", "reasons": ("x",),
                                  "keys": (key,)})
    with pytest.raises(ValueError, match="otherwise than toy_pitch.max_pitch_deg"):
        registry.register(other)
    assert [s.name for s in registry.filters()].count("toy_pitch") == 1


def test_readme_filter_table_is_the_specs():
    """README's table is generated from the specs; after a change to a filter, run
    ``python -m gaia.filters.describe --write README.md``."""
    text = README.read_text(encoding="utf-8")
    assert readme_table() in text, "README's filter table is stale: python -m " \
        "gaia.filters.describe --write README.md"
    for spec in registry.filters():
        assert f"  {spec.name:<12} " in tune_help()


def test_every_filter_key_reads_a_metrics_column():
    from gaia.pipeline.measures import DERIVED
    from gaia.schemas.metrics import METRICS_SCHEMA

    # Or a column read_measures derives from a run-wide table (duplicates.parquet).
    assert set(registry.measure_columns()) <= set(METRICS_SCHEMA.names) | set(DERIVED)
    assert np.all([k.slider is None or k.slider.low < k.slider.high
                   for s in registry.filters() for k in s.keys])
