"""The evaluation report: the paper's table layout with its rows beside ours, JSON for
machines, and a page to look at (frame strips of real, reconstructed, reenacted and generated
frames; per-clip metric plots; landmark tracks against the real ones). One self-contained HTML
file (images inline as PNG data), rendered from ``templates/report.html`` with Jinja2."""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path

import cv2
import numpy as np

from gaia.evaluation.paper_tables import NOT_TRANSCRIBED, PAPER_ROWS, layout, lookup
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


def _table(metrics: dict, kind: str) -> dict:
    table = layout(kind)
    ours = [_number(lookup(metrics, c.key)) for c in table.columns]
    paper = [{"method": row["method"], "source": row["source"],
              "values": [_number(row["values"].get(c.key)) for c in table.columns]}
             for row in PAPER_ROWS[table.number]]
    transcribed = any(row["values"] for row in PAPER_ROWS[table.number])
    return {"layout": table, "ours": ours, "paper": paper,
            "paper_note": None if transcribed else NOT_TRANSCRIBED}


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
                                                ("psnr", "l1", "lpips", "akd", "msi",
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


def render_report(metrics: dict, kind: str) -> str:
    """The report page's HTML for ``gaia eval vae`` (``kind="vae"``) or ``s2m`` results."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("gaia.evaluation", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    summary = machine_readable(metrics)
    return env.get_template("report.html").render(
        kind=kind, title={"vae": "Video-driven evaluation (VAE)",
                          "s2m": "Speech-driven evaluation (speech-to-motion)"}[kind],
        metrics=summary, table=_table(summary, kind), strips=_strips(metrics),
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
