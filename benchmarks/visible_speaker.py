"""The visible-speaker rule on real faces: seconds kept per case, rule alone and strict preset.

Builds the cases of ``gaia.samples.speaker_cases`` (real non-speakers under a real conversation,
real portraits moved by the speech they carry), measures each with the measure stage's own code,
then decides it twice:

- **rule alone**: the silence filter (speech present and the visible mouth going with it),
  every other filter off, frames counted one by one (no 3 s segment rule);
- **strict preset**: the ``s2m`` preset whole, segments of at least 3 s.

The aim (issue 24): under 1 s kept by the rule alone on every non-speaker, at least 90 % of the
speech kept on every lip-synced case. ``--keep DIR`` keeps the measured metrics for re-deciding
with other thresholds (``--set silence.KEY=VALUE``) without measuring again.

    python benchmarks/visible_speaker.py [--cases a,b] [--keep DIR] [--set silence.window_s=3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from gaia.filters.base import KEPT
from gaia.filters.funnel import decide_video
from gaia.filters.registry import filters
from gaia.filters.segments import frame_durations
from gaia.filters.silence import silence_filter
from gaia.filters.thresholds import load_thresholds
from gaia.samples.speaker_cases import CASES, build_case


def measured(name: str, folder: Path) -> tuple[dict, float]:
    """The case's per-frame measures (measuring it unless ``folder`` has them) and its fps."""
    metrics = folder / "metrics" / f"{name}.parquet"
    fps_file = folder / "metrics" / f"{name}.fps"
    if not metrics.is_file():
        from gaia.pipeline.measure.config import MeasureConfig
        from gaia.pipeline.measure.video import Models, measure_video

        video = build_case(name, folder / "videos")
        config = MeasureConfig()
        metrics.parent.mkdir(parents=True, exist_ok=True)
        record = measure_video(str(video), name, "cases", metrics.parent, Models.load(config),
                               config)
        if record["status"] != "ok":
            raise RuntimeError(f"{name}: measure failed: {record['error']}")
        fps_file.write_text(str(record["fps"]))
    table = pq.read_table(metrics)
    columns = {c: table.column(c).to_numpy(zero_copy_only=False) for c in table.column_names}
    return {c: np.asarray(v, np.float64) for c, v in columns.items()
            if np.asarray(v).dtype.kind in "fiub"}, float(fps_file.read_text())


def decide(measures: dict, fps: float, overrides: list[str]) -> dict[str, float]:
    """Seconds: of speech (the silence filter without its visible-speaker rule), kept by the
    rule alone, kept by the strict preset."""
    durations = frame_durations(measures["time_s"], fps)
    silence = load_thresholds("s2m", overrides).section("silence")
    verdict = silence_filter(measures, silence)
    heard = silence_filter(measures, replace(silence, visible_speaker=False))
    speech = heard.reasons == KEPT
    others = [f"{spec.name}.enabled=false" for spec in filters() if spec.name != "silence"]
    strict = decide_video(measures, fps, "cases", load_thresholds("s2m", overrides))
    off = decide_video(measures, fps, "cases", load_thresholds("s2m", [*overrides, *others]))
    return {"duration_s": float(durations.sum()), "speech_s": float(durations[speech].sum()),
            "rule_alone_s": float(durations[verdict.reasons == KEPT].sum()),
            "rule_segments_s": off.funnel.kept_s, "strict_s": strict.funnel.kept_s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(c.name for c in CASES),
                        help="comma-separated case names (default: all)")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="measure into DIR and reuse what is there")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="FILTER.KEY=VALUE", help="threshold overrides (repeatable)")
    args = parser.parse_args(argv)
    by_name = {c.name: c for c in CASES}
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        print(f"{'case':24} {'truth':9} {'length':>7} {'speech':>7} {'rule':>7} "
              f"{'rule>=3s':>8} {'strict':>7} {'rule/speech':>11}")
        ok = True
        for name in args.cases.split(","):
            case = by_name[name]
            measures, fps = measured(name, folder)
            s = decide(measures, fps, args.overrides)
            truth = "speaker" if case.speaking else "listener"
            print(f"{name:24} {truth:9} {s['duration_s']:6.1f}s {s['speech_s']:6.1f}s "
                  f"{s['rule_alone_s']:6.1f}s {s['rule_segments_s']:7.1f}s {s['strict_s']:6.1f}s "
                  f"{s['rule_alone_s'] / max(s['speech_s'], 1e-9):10.0%}")
            if case.speaking:
                ok &= s["rule_alone_s"] >= 0.9 * s["speech_s"]
            else:
                ok &= s["rule_alone_s"] < 1.0
        print("aim (non-speakers < 1 s, speakers >= 90 % of speech):", "met" if ok else "not met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
