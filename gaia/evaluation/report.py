"""The evaluation report: the paper's tables with its rows beside ours (the VAE's page: tables
2, 7 and 4; the speech-to-motion page: tables 3, 8 and 5; ``evaluation.ablation``: tables 6,
9, 5 and 4, one row per run), JSON for machines, and a page to look at (frame strips of real,
reconstructed, reenacted and generated frames; per-clip metric plots; landmark tracks against
the real ones). One self-contained HTML file (images inline as PNG data), rendered from
``templates/report.html`` with Jinja2."""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path

import cv2
import numpy as np

from gaia.evaluation.paper_tables import PAGES, build_table, format_value
from gaia.schemas.atomic import write_text_atomic

PLOT_W, PLOT_H = 360, 120


def machine_readable(metrics: dict) -> dict:
    """The metrics without the report's pictures (arrays), NaN as null: plain JSON."""

    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k != "strips"}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value

    return clean(metrics)


def png_data(image: np.ndarray) -> str:
    """A uint8 RGB (or gray) image as a ``data:`` URL."""
    array = np.asarray(image)
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", array)
    if not ok:
        raise ValueError("could not encode a frame as PNG")
    return "data:image/png;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


def polyline(values: list, low: float, high: float, width: int = PLOT_W,
             height: int = PLOT_H) -> str:
    """SVG polyline points of ``values`` (None breaks nothing: skipped) on a fixed scale."""
    span = (high - low) or 1.0
    count = max(1, len(values) - 1)
    points = [f"{n * width / count:.1f},{height - (v - low) / span * height:.1f}"
              for n, v in enumerate(values) if v is not None and math.isfinite(v)]
    return " ".join(points)


def _series_range(*series: list) -> tuple[float, float]:
    finite = [v for s in series for v in s if v is not None and math.isfinite(v)]
    return (min(finite), max(finite)) if finite else (0.0, 1.0)


def _number(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def run_detail(metrics: dict) -> str:
    """The run a row of ours comes from: config, step, size."""
    parts = [f"{metrics.get('config')}, step {metrics.get('step')}"]
    parameters = (metrics.get("run") or {}).get("parameters")
    if parameters:
        parts.append(f"{format_value(parameters, 'params')} parameters")
    return "; ".join(parts)


def _scale_note(metrics: dict, model: str) -> str:
    run = metrics.get("run") or {}
    hours = ("hours of the training shards' train split" if run.get("train_hours") is not None
             else f"#Hours n/a: {run.get('train_hours_note') or 'no run facts recorded'}")
    return f"Ours: #Params counts {model}; {hours}."


def table_notes(number: int, metrics: dict) -> list[str]:
    """What a reader needs to compare our row of table ``number`` with the paper's."""
    if number in (2, 7):
        detector = ("not recorded in this JSON" if "detector" not in metrics
                    else metrics["detector"] or "none given")
        size = metrics.get("image_size")
        return [f"AKD is FOMM's (mean absolute difference of the x and y coordinates of the "
                f"68 points, per frame, pooled over the scored frames); AKD (Euclidean) is the "
                f"mean point distance, for the record (about 1.57x FOMM's for isotropic "
                f"errors). Landmarks: {detector}. Both in pixels of our {size} px frames; the "
                f"paper's frames are larger, so scale before comparing.",
                "FID: self-reconstruction against the real frames each output reconstructs; "
                "cross-reenactment against the driving real frames."]
    if number == 4:
        return [_scale_note(metrics, "the VAE (encoders and decoder, no discriminator)")]
    if number == 5:
        return [_scale_note(metrics, "the speech-to-motion model (its EMA weights)")]
    if number in (3, 8):
        return ["The subjective columns are the paper's human ratings (20 raters, 1-5); we "
                "collect none. Real video: the evaluated clips' real frames, their stored "
                "landmarks and their audio through the same SyncNet; the paper prints its real "
                "videos' Sync-D in the caption (8.548). Sync-D compares with the paper's only "
                "under syncnet_v2's weights."]
    return []


LEGACY_AKD = ("AKD (FOMM's): n/a, this evaluation predates it; its AKD is the mean Euclidean "
              "distance, shown as AKD (Euclidean): run gaia eval vae again for FOMM's")


def upgrade_legacy(metrics: dict) -> dict:
    """A VAE evaluation written before AKD followed FOMM (its ``akd`` a Euclidean mean, no
    ``akd_euclidean``) read as what it is: the value under ``akd_euclidean``, FOMM's n/a with
    a note. Other evaluations come back as given."""
    sections = ("self_reconstruction", "cross_reenactment")
    if not all(isinstance(metrics.get(s), dict) for s in sections) or any(
            "akd_euclidean" in metrics[s] for s in sections):
        return metrics
    upgraded = {**metrics, "notes": [*(metrics.get("notes") or []), LEGACY_AKD]}
    for section in sections:
        upgraded[section] = {**metrics[section], "akd": None,
                             "akd_euclidean": metrics[section].get("akd")}
    return upgraded


def page_tables(metrics: dict, kind: str, label: str = "Ours (this run)") -> list[dict]:
    """The paper's tables a report page shows (``paper_tables.PAGES``), our row beside
    theirs, each with its notes."""
    metrics = upgrade_legacy(metrics)
    tables = []
    for number in PAGES[kind]:
        table = build_table(number, [(label, run_detail(metrics), metrics)])
        table["notes"] = table_notes(number, metrics)
        tables.append(table)
    return tables


def _strips(metrics: dict) -> list[dict]:
    rows = []
    for key, strip in metrics.get("strips", {}).items():
        row = {"key": key, "lines": [], "source": None}
        for name in ("real", "reconstructed", "reenacted", "generated"):
            if name in strip:
                row["lines"].append({"name": name, "images": [png_data(f) for f in strip[name]]})
        if "reenacted_source" in strip:
            row["source"] = png_data(strip["reenacted_source"])
        if "reference" in strip:
            row["source"] = png_data(strip["reference"])
        rows.append(row)
    return rows


def _plots(metrics: dict) -> list[dict]:
    """Per-clip panels: a line per-frame metric, and the mouth track against the real one."""
    plots = []
    for clip in metrics.get("per_video", {}).get("self_reconstruction", []) + \
            metrics.get("per_clip", []):
        panel = {"key": clip["key"], "values": {k: _number(clip.get(k)) for k in
                                                ("psnr", "l1", "lpips", "akd",
                                                 "akd_euclidean", "msi",
                                                 "msi_real", "sync_c", "sync_d")
                                                if k in clip},
                 "psnr": None, "mouth": None}
        if clip.get("psnr_per_frame"):
            low, high = _series_range(clip["psnr_per_frame"])
            panel["psnr"] = {"points": polyline(clip["psnr_per_frame"], low, high),
                             "low": _number(low), "high": _number(high)}
        if clip.get("mouth_real") is not None and clip.get("mouth_generated") is not None:
            low, high = _series_range(clip["mouth_real"], clip["mouth_generated"])
            panel["mouth"] = {"real": polyline(clip["mouth_real"], low, high),
                              "generated": polyline(clip["mouth_generated"], low, high),
                              "low": _number(low), "high": _number(high)}
        plots.append(panel)
    return plots


def environment():
    """The Jinja2 environment of the report templates (``templates/``)."""
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("gaia.evaluation", "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined)


def render_report(metrics: dict, kind: str) -> str:
    """The report page's HTML for ``gaia eval vae`` (``kind="vae"``) or ``s2m`` results."""
    summary = upgrade_legacy(machine_readable(metrics))
    return environment().get_template("report.html").render(
        kind=kind, title={"vae": "Video-driven evaluation (VAE)",
                          "s2m": "Speech-driven evaluation (speech-to-motion)"}[kind],
        metrics=summary, tables=page_tables(summary, kind), strips=_strips(metrics),
        plots=_plots(summary), plot_w=PLOT_W, plot_h=PLOT_H,
        summary_json=json.dumps(summary, indent=1)[:200000])


def write_report(path: Path, metrics: dict, kind: str) -> tuple[Path, Path]:
    """The page at ``path`` and its JSON at ``path.with_suffix('.json')``, each written whole
    or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = path.with_suffix(".json")
    write_text_atomic(data, json.dumps(machine_readable(metrics), indent=1))
    write_text_atomic(path, render_report(metrics, kind))
    return path, data
