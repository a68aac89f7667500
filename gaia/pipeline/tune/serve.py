"""``gaia curate tune RUN_DIR --serve``: thresholds tuned live in a browser (issue 14).

A standard-library HTTP server (``http.server.ThreadingHTTPServer``) serves one static page
(``static/tune.html``, plain JavaScript) and a JSON API over the run's compact tune table:

- ``GET  /api/state``: the thresholds, a slider per threshold (on the table's grid, so every
  answer is exact), a switch per filter, and per measure a histogram of all faces' frames;
- ``POST /api/funnel``: the funnel (hours, clips, videos, by reason and by source) of the
  thresholds posted, decided by the fused pass (milliseconds on a small run), with the
  paper's Table 1 for them (#IDs: run-wide identities, raw and kept);
- ``GET  /api/thumbs?panel=N&value=V``: the frames just inside and just outside a threshold,
  decoded on demand from the source videos and cached; a moved source gives a placeholder;
- ``POST /api/strips``: per video (the first ``STRIP_VIDEOS``), a strip over time coloured by
  the filter that dropped each stretch under the thresholds posted;
- ``POST /api/preset``: writes the thresholds as a preset YAML that ``--preset FILE.yaml``
  reads back, under ``RUN_DIR/presets/``.

Bound to 127.0.0.1 by default. Bound to any other address, every request must carry the
token printed in the URL (``?token=...``): the page is then reachable from other machines.
Every request passes ``gaia.pipeline.tune.guard`` first (issue 25): a ``Host`` that is not the
bound address (DNS rebinding) is refused, a POST must be JSON from the server's own origin
(no other site's page can drive it), bodies are capped whatever ``Content-Length`` says, an
idle connection is closed after ``IDLE_TIMEOUT_S``, every bad value is a 400 naming it, and a
preset is replaced only when the request says ``"overwrite": true`` (409 otherwise).
"""

from __future__ import annotations

import errno
import json
import re
import secrets
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np

from gaia.filters.funnel import decide_video
from gaia.filters.registry import filters
from gaia.filters.segments import SLIDERS as SEGMENT_SLIDERS
from gaia.filters.spec import Slider
from gaia.filters.thresholds import CurationThresholds, build_thresholds
from gaia.pipeline.compact_table import ensure_tune_table
from gaia.pipeline.measures import iter_measures, measured_videos
from gaia.pipeline.run_dir import RunDir
from gaia.pipeline.tune import guard
from gaia.pipeline.tune.fused import OffGrid
from gaia.pipeline.tune.guard import Refused
from gaia.pipeline.tune.report import BINS, _Candidates, _strips_html, _thumbnail, panels
from gaia.pipeline.tune.table import metrics_funnel, table_funnels
from gaia.pipeline.tune.table1 import table1_rows
from gaia.pipeline.tune.table1_ids import count_identities

LOCAL = guard.LOOPBACK
STRIP_VIDEOS = 50
IDLE_TIMEOUT_S = 30.0  # a connection that sends nothing for this long is closed
THUMB_CACHE = 256  # thumbnails answers kept (the oldest goes first)


def sliders() -> list[tuple[str, str, str, Slider]]:
    """(section, key, label, slider) of every threshold with one, in the filters' order, then
    the segment rules' (``gaia.filters.spec``: on the tune table's grid)."""
    out = [(spec.name, k.name, k.label, k.slider) for spec in filters() for k in spec.keys
           if k.slider is not None]
    return out + [("segments", key, label, slider) for key, label, slider in SEGMENT_SLIDERS]


def switches() -> list[str]:
    """A switch (``enabled``) per registered filter, in the order they run."""
    return [spec.name for spec in filters()]


class TuneApp:
    """What the server answers: the run, its thresholds, caches of histograms and thumbs."""

    def __init__(self, run_dir: Path, thresholds: CurationThresholds, preset: str | None,
                 log=lambda _: None) -> None:
        self.run = RunDir(Path(run_dir))
        measured_videos(self.run)  # a folder without measures fails here, with its message
        ensure_tune_table(self.run.root, log)
        self.thresholds, self.preset, self.log = thresholds, preset, log
        self._thumbs: dict[tuple[int, float], dict] = {}
        self._lock = threading.Lock()
        self._histograms: dict | None = None

    def state(self) -> dict:
        values = self.thresholds.to_dict()
        return {
            "run_dir": str(self.run.root), "preset": self.preset, "thresholds": values,
            "sliders": [{"section": s, "key": k, "label": label, "min": slider.low,
                         "max": slider.high, "step": slider.step, "value": values[s][k]}
                        for s, k, label, slider in sliders()],
            "switches": [{"section": s, "enabled": values[s]["enabled"]} for s in switches()],
            "histograms": self.histograms(),
        }

    def histograms(self) -> dict:
        """Per report panel, a histogram of its measure over every frame with a face."""
        if self._histograms is None:
            shown = panels()
            edges = {p.title: np.linspace(p.low, p.high, BINS + 1) for p in shown}
            counts = {p.title: np.zeros(BINS, np.int64) for p in shown}
            for _, measures in iter_measures(self.run):
                for panel in shown:
                    values = panel.values(measures, self.thresholds)
                    values = np.clip(values[np.isfinite(values)], panel.low, panel.high)
                    counts[panel.title] += np.histogram(values, edges[panel.title])[0]
            self._histograms = {
                p.title: {"index": n, "section": p.section, "key": p.key,
                          "edges": edges[p.title].tolist(), "counts": counts[p.title].tolist()}
                for n, p in enumerate(shown)}
        return self._histograms

    def funnel(self, values: dict) -> dict:
        """The funnel, from the table in one pass that also counts each video's clips (the
        sliders stay on its grid; ``metrics/`` otherwise)."""
        thresholds = build_thresholds(values)
        notes: list[str] = []
        clips: dict[str, int] = {}
        started = time.perf_counter()
        try:
            result = table_funnels(self.run.root, [thresholds], log=self.log,
                                   clips_by_video=clips)[0]
        except OffGrid as err:
            notes.append(str(err))
            result = metrics_funnel(self.run.root, thresholds)
        elapsed = time.perf_counter() - started
        return {**result.to_json(), **self._identities(result, thresholds,
                                                       clips if not notes else None),
                "exact": True, "elapsed_ms": round(1000 * elapsed, 1),
                "source": "metrics" if notes else "table", "notes": notes}

    def _identities(self, funnel, thresholds: CurationThresholds,
                    clips: dict[str, int] | None) -> dict:
        """Videos that keep a clip, the people in them (run-wide identities, each counted
        once) and the paper's Table 1 under these thresholds (``tune.table1_ids``)."""
        ids = count_identities(self.run.root, thresholds, clips, log=self.log)
        kept = None if clips is None else sum(1 for n in clips.values() if n > 0)
        return {"videos_with_clips": kept,
                "identities": None if ids is None else ids.kept_total,
                "table1": table1_rows(funnel, ids)}

    def thumbs(self, panel_index: int, value: float) -> dict:
        """Frames just inside and outside ``value`` of one panel's measure (cached)."""
        key = (panel_index, value)
        with self._lock:
            if key in self._thumbs:
                return self._thumbs[key]
        panel = panels()[panel_index]
        candidates = _Candidates()
        for video, measures in iter_measures(self.run):
            candidates.offer(panel.values(measures, self.thresholds), value, panel.keeps_below(),
                             video["video_id"])
        paths = {v["video_id"]: v["path"] for v in measured_videos(self.run)}
        shown = {video_id for side in ("inside", "outside")
                 for _, video_id, _ in getattr(candidates, side)}
        moved = sorted(paths[v] for v in shown if "://" not in paths[v] and
                       not Path(paths[v]).exists())
        answer = {"note": f"source videos not found (moved?): {', '.join(moved)}"
                  if moved else None}
        answer |= {side: [{"label": f"{video_id} #{frame}",
                          "html": _thumbnail(self.run, paths.get(video_id, ""), video_id,
                                             frame)}
                         for _, video_id, frame in sorted(getattr(candidates, side),
                                                          reverse=True)]
                  for side in ("inside", "outside")}
        with self._lock:
            while len(self._thumbs) >= THUMB_CACHE:
                del self._thumbs[next(iter(self._thumbs))]
            self._thumbs[key] = answer
        return answer

    def strips(self, values: dict) -> dict:
        """Per-video strips of the first ``STRIP_VIDEOS`` videos (the reference decision of
        each: ``filters.funnel.decide_video``, what extract cuts)."""
        thresholds = build_thresholds(values)
        strips = []
        for video, measures in iter_measures(self.run, thresholds.instructions.enabled):
            if len(strips) >= STRIP_VIDEOS:
                break
            decision = decide_video(measures, video["fps"], video["source"], thresholds,
                                    video["cues"])
            strips.append((video["video_id"], measures["time_s"], decision.reasons))
        return {"html": _strips_html(strips)}

    def save_preset(self, values: dict, name: str | None, overwrite: bool = False) -> dict:
        """The thresholds as ``RUN_DIR/presets/NAME.yaml`` (written whole or not at all); a
        preset already there is replaced only with ``overwrite`` (``FileExistsError``)."""
        import yaml

        from gaia.schemas.atomic import write_text_atomic

        thresholds = build_thresholds(values)  # checked like any --set
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", name or "tuned").strip(".-") or "tuned"
        folder = self.run.root / "presets"
        folder.mkdir(exist_ok=True)
        path = folder / f"{stem}.yaml"
        text = yaml.safe_dump(thresholds.to_dict(), sort_keys=False)
        with self._lock:  # two saves of one name: the second sees the first
            if path.exists() and not overwrite:
                raise FileExistsError(f"preset {stem!r} exists ({path}): send "
                                      '"overwrite": true to replace it')
            write_text_atomic(path, "# written by gaia curate tune --serve\n" + text)
        return {"path": str(path), "thresholds": thresholds.to_dict()}


class _Handler(BaseHTTPRequestHandler):
    """JSON API and the page; every error is a JSON body with a one-line message."""

    app: TuneApp
    token: str | None
    hosts: set[str] | None  # the Host values answered (None: any, a wildcard bind)
    timeout = IDLE_TIMEOUT_S  # set per server by make_server

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the app logs
        pass

    def _allowed(self, query: dict) -> bool:
        if self.token is None:
            return True
        sent = query.get("token", [None])[0] or self.headers.get("X-Gaia-Token") or ""
        return secrets.compare_digest(sent.encode("utf-8", "replace"),
                                      self.token.encode("utf-8"))

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")  # no other page frames it (clickjacking)
        self.send_header("Referrer-Policy", "no-referrer")  # the token stays in this origin
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, value: Any, status: int = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(value).encode("utf-8"), "application/json")

    def _error(self, status: int, message: str) -> None:
        if self.command not in ("GET", "HEAD"):
            self.close_connection = True  # a body may be left unread on the socket
        self._json({"error": guard.one_line(message)}, status)

    def _route(self, method: str) -> None:
        try:
            url = urlparse(self.path)
            query = parse_qs(url.query)
            guard.check_host(self.headers.get("Host"), self.hosts)
            if not self._allowed(query):
                raise Refused(HTTPStatus.FORBIDDEN, "missing or wrong token")
            if method not in ("GET", "HEAD"):
                guard.check_state_change(self.headers.get("Content-Type"),
                                         self.headers.get("Origin"), self.headers.get("Host"))
            self._answer(method, url.path, query)
        except Refused as err:
            self._error(err.status, err.reason)
        except FileExistsError as err:
            self._error(HTTPStatus.CONFLICT, str(err))
        except (KeyError, ValueError, TypeError, OverflowError) as err:  # bad input: say what
            self._error(HTTPStatus.BAD_REQUEST, f"{type(err).__name__}: {err}")
        except (TimeoutError, ConnectionError):
            self.close_connection = True  # the client went away or went quiet
        except Exception as err:  # noqa: BLE001 - an answer, never a dropped connection
            self.app.log(f"[tune] {method} {self.path[:200]}: {type(err).__name__}: {err}")
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(err).__name__}: {err}")

    def _answer(self, method: str, path: str, query: dict) -> None:
        if method == "GET" and path in ("/", "/index.html"):
            page = files("gaia.pipeline.tune").joinpath("static/tune.html").read_bytes()
            self._send(HTTPStatus.OK, page, "text/html; charset=utf-8")
        elif method == "GET" and path == "/api/state":
            self._json(self.app.state())
        elif method == "GET" and path == "/api/thumbs":
            index = guard.query_int(query, "panel", len(panels()))
            self._json(self.app.thumbs(index, guard.query_float(query, "value")))
        elif method == "POST" and path == "/api/funnel":
            self._json(self.app.funnel(self._thresholds(self._body())))
        elif method == "POST" and path == "/api/strips":
            self._json(self.app.strips(self._thresholds(self._body())))
        elif method == "POST" and path == "/api/preset":
            body = self._body()
            self._json(self.app.save_preset(
                self._thresholds(body), guard.preset_name(body.get("name")),
                guard.field(body, "overwrite", bool, False)))
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no {method} {path[:200]}")

    @staticmethod
    def _thresholds(body: dict) -> dict:
        return guard.field(body, "thresholds", dict)

    def _body(self) -> dict:
        """The JSON object sent: at most ``guard.MAX_BODY`` bytes are ever read."""
        chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        try:
            length = guard.body_length(self.headers.get("Content-Length"), chunked)
        except Refused:
            self.close_connection = True  # what follows on the socket is the unread body
            raise
        raw = self.rfile.read(length)
        if len(raw) < length:
            self.close_connection = True
            raise Refused(HTTPStatus.BAD_REQUEST, f"the body ended after {len(raw)} of "
                                                  f"{length} bytes")
        return guard.parse_body(raw)

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self._route("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._route("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._route("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self._route("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._route("DELETE")


def make_server(app: TuneApp, host: str = "127.0.0.1", port: int = 8765
                ) -> tuple[ThreadingHTTPServer, str]:
    """The server (not yet serving) and the URL to open; a token is in it when ``host`` is
    not local. A port in use is a ``ValueError`` that says to pass another."""
    token = None if host in LOCAL else secrets.token_urlsafe(16)
    handler = type("TuneHandler", (_Handler,), {"app": app, "token": token, "hosts": None,
                                                "timeout": IDLE_TIMEOUT_S})
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise ValueError(f"port {port} on {host} is in use: pass another with --port "
                             "(or --port 0 for any free one)") from None
        raise
    handler.hosts = guard.allowed_hosts(host, server.server_address[1])
    shown = "[::1]" if host == "::1" else host
    url = f"http://{shown}:{server.server_address[1]}/" + (f"?token={token}" if token else "")
    return server, url


def serve(run_dir: Path, thresholds: CurationThresholds, preset: str | None, host: str,
          port: int, log) -> None:
    """Serve until interrupted (Ctrl-C)."""
    app = TuneApp(run_dir, thresholds, preset, log)
    server, url = make_server(app, host, port)
    log(f"[tune] serving {run_dir} at {url} (Ctrl-C to stop)")
    with server:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            log("[tune] stopped")
