"""``gaia curate tune --report FILE.html``: what each threshold keeps and costs, in pictures.

One self-contained HTML file (inline SVG and base64 JPEG, no scripts or network):

- per measure, a histogram over all faces' frames with the threshold drawn on it;
- per measure, kept hours as its threshold moves (the full funnel at each value);
- per measure, thumbnails of the frames just inside and just outside the threshold, decoded on
  demand from the source videos (only those few frames; the numbers come from ``metrics/``);
- per video, a strip over time coloured by the first filter that dropped each frame.
"""

from __future__ import annotations

import base64
import heapq
import html
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gaia.filters.base import KEPT, code, reason_name, reasons
from gaia.filters.funnel import Funnel, decide_video
from gaia.filters.registry import filters
from gaia.filters.spec import ThresholdKey
from gaia.filters.thresholds import CurationThresholds
from gaia.pipeline.measures import iter_measures
from gaia.pipeline.run_dir import RunDir
from gaia.pipeline.tune.table import Sweep, sweep_thresholds
from gaia.pipeline.tune.table1 import table1_html
from gaia.pipeline.tune.table1_ids import count_identities
from gaia.schemas.atomic import write_text_atomic

# Colours of the built-in reasons; a reason without one (a plug-in filter's) gets one of
# ``SPARE_COLOURS`` by its code.
COLOURS = {
    "": "#3a9d5d", "no_face": "#9e9e9e", "multiple_faces": "#6d4c41", "not_frontal": "#e53935",
    "jitter": "#fb8c00", "occluded": "#8e24aa", "no_audio": "#546e7a", "silence": "#1e88e5",
    "short_run": "#fdd835", "not_speaking": "#00acc1", "shot_cut": "#d81b60",
    "blurry": "#7cb342", "small_face": "#bdbdbd", "identity_change": "#5e35b1",
    "out_of_sync": "#f4511e",
}
SPARE_COLOURS = ("#26a69a", "#ab47bc", "#ff7043", "#9ccc65", "#5c6bc0", "#ec407a")
MAX_STRIPS = 200
THUMBS_PER_SIDE = 4


def colour(reason: str) -> str:
    if reason in COLOURS:
        return COLOURS[reason]
    return SPARE_COLOURS[code(reason) % len(SPARE_COLOURS)]


@dataclass(frozen=True)
class Panel:
    """One threshold key with a slider (``gaia.filters.spec``): its measure, read as the key
    reads it (its column under the thresholds, its transform), and where it cuts."""

    section: str
    k: ThresholdKey

    @property
    def key(self) -> str:
        return self.k.name

    @property
    def title(self) -> str:
        return self.k.label

    @property
    def low(self) -> float:
        return self.k.plot_range[0]

    @property
    def high(self) -> float:
        return self.k.plot_range[1]

    def values(self, measures, thresholds: CurationThresholds) -> np.ndarray:
        """The measure as the key reads it under ``thresholds`` (they may choose the column)."""
        section = thresholds.section(self.section)
        values = np.asarray(measures[self.k.column_for(section)], np.float64)
        if self.k.transform == "abs180":
            return np.abs(values - 180.0)
        return np.abs(values) if self.k.transform == "abs" else values

    def threshold(self, thresholds: CurationThresholds) -> float:
        return float(getattr(thresholds.section(self.section), self.key))

    def keeps_below(self) -> bool:
        return self.k.keeps_below


def panels() -> tuple[Panel, ...]:
    """A panel per threshold key with a slider, in the filters' order."""
    return tuple(Panel(spec.name, k) for spec in filters() for k in spec.keys
                 if k.slider is not None)


BINS = 40
SWEEP_POINTS = 9


@dataclass
class _Candidates:
    """The frames nearest the threshold on each side: (distance, video_id, frame)."""

    inside: list = field(default_factory=list)
    outside: list = field(default_factory=list)

    def offer(self, values: np.ndarray, threshold: float, below: bool, video_id: str) -> None:
        finite = np.flatnonzero(np.isfinite(values))
        if not len(finite):
            return
        keep = values[finite] <= threshold if below else values[finite] >= threshold
        distance = np.abs(values[finite] - threshold)
        for side, mask in ((self.inside, keep), (self.outside, ~keep)):
            idx = finite[mask]
            if not len(idx):
                continue
            nearest = idx[np.argsort(distance[mask])[:THUMBS_PER_SIDE]]
            for frame in nearest:
                item = (-float(abs(values[frame] - threshold)), video_id, int(frame))
                if len(side) < THUMBS_PER_SIDE:
                    heapq.heappush(side, item)
                else:
                    heapq.heappushpop(side, item)


def write_report(run_dir: Path, thresholds: CurationThresholds, out: Path,
                 title: str = "") -> Path:
    """Build the report with one pass over ``metrics/`` plus a few decoded frames."""
    run = RunDir(Path(run_dir))
    shown = panels()
    edges = {p: np.linspace(p.low, p.high, BINS + 1) for p in shown}
    counts = {p: np.zeros(BINS, np.int64) for p in shown}
    candidates = {p: _Candidates() for p in shown}
    sweeps = {p: _panel_sweep(p, thresholds) for p in shown}
    variants = {c: sweep_thresholds(thresholds, s) for c, s in sweeps.items()}
    sweep_totals = {c: [Funnel() for _ in v] for c, v in variants.items()}
    total = Funnel()
    strips: list[tuple[str, np.ndarray, np.ndarray]] = []
    paths: dict[str, str] = {}

    for video, measures in iter_measures(run, thresholds.instructions.enabled):
        fps, source, vid = video["fps"], video["source"], video["video_id"]
        paths[vid] = video["path"]
        decision = decide_video(measures, fps, source, thresholds, video["cues"])
        total = total + decision.funnel
        if len(strips) < MAX_STRIPS:
            strips.append((vid, np.asarray(measures["time_s"]), decision.reasons))
        for panel in shown:
            values = panel.values(measures, thresholds)
            finite = values[np.isfinite(values)]
            counts[panel] += np.histogram(np.clip(finite, panel.low, panel.high),
                                          bins=edges[panel])[0]
            candidates[panel].offer(values, panel.threshold(thresholds), panel.keeps_below(),
                                    vid)
            for i, variant in enumerate(variants[panel]):
                sweep_totals[panel][i] = sweep_totals[panel][i] + decide_video(
                    measures, fps, source, variant, video["cues"]).funnel

    ids = count_identities(run.root, thresholds)
    sections = [_header(run, thresholds, total, title), table1_html(total, ids)]
    for panel in shown:
        sections.append(_panel_html(panel, thresholds, edges[panel], counts[panel],
                                    sweeps[panel], sweep_totals[panel], candidates[panel], run,
                                    paths))
    sections.append(_strips_html(strips))
    document = (
        "<!doctype html><html><head><meta charset='utf-8'><title>gaia tune report</title>"
        f"<style>{_CSS}</style></head><body>{''.join(sections)}</body></html>"
    )
    write_text_atomic(out, document)
    return Path(out)


def _panel_sweep(panel: Panel, thresholds: CurationThresholds) -> Sweep:
    """Values of the panel's threshold across its range, the current one included."""
    low = panel.low + (panel.high - panel.low) / (SWEEP_POINTS * 2)
    values = set(np.round(np.linspace(low, panel.high, SWEEP_POINTS), 6).tolist())
    values.add(round(panel.threshold(thresholds), 6))
    return Sweep(panel.section, panel.key, tuple(sorted(values)))


def _header(run: RunDir, thresholds: CurationThresholds, funnel: Funnel, title: str) -> str:
    rows = "".join(
        f"<tr><td><span class='dot' style='background:{colour(r)}'></span>{html.escape(r)}</td>"
        f"<td>{s / 3600:.4f}</td><td>{funnel.dropped(funnel.any_s).get(r, 0.0) / 3600:.4f}</td>"
        "</tr>"
        for r, s in funnel.dropped(funnel.first_s).items())
    settings = html.escape(str(thresholds.to_dict()))
    return (
        f"<h1>Curation funnel {html.escape(title)}</h1><p class='muted'>{html.escape(str(run.root))}"
        f"</p><p>input <b>{funnel.input_s / 3600:.4f} h</b> ({funnel.input_frames} frames, "
        f"{funnel.videos} videos) &rarr; kept <b>{funnel.kept_s / 3600:.4f} h</b> in "
        f"<b>{funnel.clips}</b> clips ({100 * funnel.kept_s / max(funnel.input_s, 1e-9):.1f} %)"
        "</p><table><tr><th>dropped for</th><th>hours (first failing)</th>"
        f"<th>hours (any failing)</th></tr>{rows}</table>{_cues_html(funnel)}"
        f"<p class='muted'>thresholds: {settings}</p>"
    )


def _cues_html(funnel: Funnel) -> str:
    """The instruction cues' outcomes and the sidecars' states, for thresholds that follow
    timed text (the ``instruct`` preset, appendix E); empty for the others."""
    if not (funnel.cues or funnel.sidecars):
        return ""
    rows = "".join(f"<tr><td>{html.escape(outcome)}</td><td>{count}</td></tr>"
                   for outcome, count in sorted(funnel.cues.items(),
                                                key=lambda item: (-item[1], item[0])))
    states = ", ".join(f"{html.escape(state)} {count}"
                       for state, count in sorted(funnel.sidecars.items()))
    return (f"<table id='cues'><tr><th>instruction cues</th><th>count</th></tr>{rows}</table>"
            f"<p class='muted'>timed-text sidecars: {states or '-'}</p>")


def _panel_html(panel: Panel, thresholds, edges, counts, sweep: Sweep, totals, candidates,
                run: RunDir, paths: dict[str, str]) -> str:
    threshold = panel.threshold(thresholds)
    enabled = thresholds.section(panel.section).enabled
    state = "" if enabled else " (filter off in this preset)"
    retention = [(v, f.kept_s / 3600) for v, f in zip(sweep.values, totals, strict=True)]
    inside = sorted(candidates.inside, reverse=True)
    outside = sorted(candidates.outside, reverse=True)
    return (
        f"<h2>{html.escape(panel.title)}</h2><p class='muted'>{panel.section}.{panel.key} = "
        f"{threshold:g}{state}</p><div class='row'>"
        f"{_histogram_svg(edges, counts, threshold)}{_retention_svg(retention, threshold)}</div>"
        f"<div class='row'><div><h3>just inside</h3>{_thumbs(inside, run, paths, panel)}</div>"
        f"<div><h3>just outside</h3>{_thumbs(outside, run, paths, panel)}</div></div>"
    )


def _histogram_svg(edges: np.ndarray, counts: np.ndarray, threshold: float) -> str:
    width, height = 420, 160
    top = max(int(counts.max()), 1)
    span = edges[-1] - edges[0]
    bar = width / len(counts)
    bars = "".join(
        f"<rect x='{i * bar:.1f}' y='{height - 20 - (c / top) * (height - 30):.1f}' "
        f"width='{bar - 1:.1f}' height='{(c / top) * (height - 30):.1f}' fill='#607d8b'/>"
        for i, c in enumerate(counts))
    x = (min(max(threshold, edges[0]), edges[-1]) - edges[0]) / span * width
    return (f"<svg width='{width}' height='{height}' class='plot'>{bars}"
            f"<line x1='{x:.1f}' x2='{x:.1f}' y1='0' y2='{height - 20}' stroke='#e53935' "
            f"stroke-width='2'/><text x='2' y='{height - 4}'>{edges[0]:g}</text>"
            f"<text x='{width - 40}' y='{height - 4}'>{edges[-1]:g}</text>"
            f"<text x='{x + 4:.1f}' y='28' fill='#e53935'>{threshold:g}</text>"
            f"<text x='2' y='12'>frames (max bin {top})</text></svg>")


def _retention_svg(points: list[tuple[float, float]], threshold: float) -> str:
    width, height = 420, 160
    xs = np.array([p[0] for p in points])
    ys = np.array([p[1] for p in points])
    x_span = max(xs.max() - xs.min(), 1e-9)
    y_top = max(ys.max(), 1e-9)

    def at(x: float, y: float) -> str:
        return (f"{(x - xs.min()) / x_span * (width - 20) + 10:.1f},"
                f"{height - 20 - y / y_top * (height - 40):.1f}")

    line = " ".join(at(x, y) for x, y in points)
    marks = "".join(f"<circle cx='{at(x, y).split(',')[0]}' cy='{at(x, y).split(',')[1]}' r='3' "
                    f"fill='{'#e53935' if abs(x - threshold) < 1e-6 else '#1e88e5'}'/>"
                    for x, y in points)
    return (f"<svg width='{width}' height='{height}' class='plot'><polyline points='{line}' "
            f"fill='none' stroke='#1e88e5' stroke-width='2'/>{marks}"
            f"<text x='2' y='12'>kept hours as the threshold moves (max {y_top:.4f} h)</text>"
            f"<text x='2' y='{height - 4}'>{xs.min():.3g}</text>"
            f"<text x='{width - 40}' y='{height - 4}'>{xs.max():.3g}</text></svg>")


def _thumbs(items: list, run: RunDir, paths: dict[str, str], panel: Panel) -> str:
    if not items:
        return "<p class='muted'>no frames</p>"
    cells = []
    for _, video_id, frame in items:
        image = _thumbnail(run, paths.get(video_id, ""), video_id, frame)
        label = html.escape(f"{video_id} #{frame}")
        cells.append(f"<figure>{image}<figcaption>{label}</figcaption></figure>")
    return "<div class='thumbs'>" + "".join(cells) + "</div>"


def _thumbnail(run: RunDir, path: str, video_id: str, frame: int) -> str:
    """The face of one frame as an inline JPEG, decoded now from the source video."""
    import cv2
    import decord
    import pyarrow.parquet as pq

    from gaia.pipeline.media.remote import local_copy

    try:
        table = pq.read_table(run.metrics / f"{video_id}.parquet", columns=["face_box"])
        box = table.column("face_box")[frame].as_py()
        with local_copy(path) as local:
            rgb = decord.VideoReader(local, num_threads=1)[frame].asnumpy()
    except Exception as err:  # a moved or unreadable source: say so in place of the picture
        return f"<div class='missing'>{html.escape(type(err).__name__)}</div>"
    if box:
        x0, y0, x1, y1 = box
        pad = 0.3 * (x1 - x0)
        h, w = rgb.shape[:2]
        rgb = rgb[max(int(y0 - pad), 0):min(int(y1 + pad), h), max(int(x0 - pad), 0):min(
            int(x1 + pad), w)]
    scale = 120 / max(rgb.shape[:2])
    small = cv2.resize(rgb, (max(1, round(rgb.shape[1] * scale)),
                             max(1, round(rgb.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, 80])
    data = base64.b64encode(jpeg.tobytes()).decode("ascii") if ok else ""
    return f"<img src='data:image/jpeg;base64,{data}' alt='frame {frame}'/>"


def _strips_html(strips: list[tuple[str, np.ndarray, np.ndarray]]) -> str:
    legend = "".join(f"<span class='dot' style='background:{colour(r)}'></span>"
                     f"{html.escape(r or 'kept')} " for r in reasons())
    rows = []
    for video_id, times, codes in strips:
        if not len(times):
            continue
        end = float(times[-1]) + (float(np.median(np.diff(times))) if len(times) > 1 else 0.04)
        change = np.flatnonzero(np.diff(codes.astype(np.int16))) + 1
        starts = np.concatenate([[0], change])
        stops = np.concatenate([change, [len(codes)]])
        rects = "".join(
            f"<rect x='{times[a] / end * 600:.1f}' y='0' width='"
            f"{((times[b] if b < len(times) else end) - times[a]) / end * 600:.1f}' height='14' "
            f"fill='{colour(reason_name(codes[a]))}'><title>{reason_name(codes[a]) or 'kept'}"
            f" {times[a]:.2f}s</title></rect>"
            for a, b in zip(starts, stops, strict=True))
        kept = 100 * float(np.mean(codes == KEPT))
        rows.append(f"<tr><td>{html.escape(video_id)}</td><td><svg width='600' height='14'>"
                    f"{rects}</svg></td><td>{kept:.0f} % kept</td></tr>")
    return (f"<h2>Where each filter dropped frames, per video</h2><p>{legend}</p>"
            f"<table class='strips'>{''.join(rows)}</table>")


_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1100px; }
.muted { color: #777; font-size: 12px; } .row { display: flex; gap: 24px; flex-wrap: wrap; }
.plot { background: #fafafa; border: 1px solid #ddd; } .plot text { font-size: 11px; }
.thumbs { display: flex; gap: 6px; } figure { margin: 0; } figcaption { font-size: 10px; }
.dot { display: inline-block; width: 10px; height: 10px; margin: 0 4px; border-radius: 2px; }
table { border-collapse: collapse; } td, th { padding: 2px 8px; text-align: left; }
.strips td { font-size: 11px; } .missing { width: 120px; height: 90px; background: #eee; }
"""
