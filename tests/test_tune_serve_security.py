"""The tune server trusts no other origin (issue 25): a rebinding ``Host``, a ``text/plain`` or
cross-origin POST, a body of any claimed length, an idle connection, each bad value and a
preset of a name already saved are refused with a status and a one-line reason naming what is
wrong; NaN and infinities are refused wherever thresholds are read; and a hostile page in
headless Chromium cannot change a preset."""

from __future__ import annotations

import http.client
import http.server
import json
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from gaia.common.config_files import ConfigError
from gaia.filters.thresholds import build_thresholds, load_thresholds
from gaia.pipeline.tune import guard, serve
from gaia.pipeline.tune.report import panels
from gaia.pipeline.tune.serve import TuneApp, make_server


def _start(app: TuneApp, host: str = "127.0.0.1"):
    server, url = make_server(app, host, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, url


@pytest.fixture(scope="module")
def app(measured_sample, tmp_path_factory):
    run = tmp_path_factory.mktemp("secure") / "run"
    shutil.copytree(measured_sample.root, run)
    return TuneApp(run, load_thresholds("s2m"), "s2m")


@pytest.fixture(scope="module")
def server(app):
    server, _ = _start(app)
    yield server
    server.shutdown()
    server.server_close()


def request(server, method: str, path: str, body: bytes | dict | None = None,
            host: str | None = None, **headers: str) -> tuple[int, dict]:
    """Status and JSON answer of one request with exactly these headers (``Host`` included)."""
    port = server.server_address[1]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", host or f"127.0.0.1:{port}")
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        if data is not None and "Content_Length" not in headers:
            connection.putheader("Content-Length", str(len(data)))
        for name, value in headers.items():
            connection.putheader(name.replace("_", "-"), value)
        connection.endheaders(data)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def post(server, path: str, body: bytes | dict, **headers: str) -> tuple[int, dict]:
    return request(server, "POST", path, body, **{"Content_Type": "application/json", **headers})


def raw_exchange(server, data: bytes, wait_s: float = 5.0) -> tuple[bytes, float]:
    """What the server answers to ``data`` sent as is, until it closes, and how long it took."""
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=wait_s) as s:
        s.sendall(data)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    return answer, time.perf_counter() - started


def test_a_rebinding_host_is_refused_and_the_own_names_are_answered(server, app):
    port = server.server_address[1]
    for host in ("rebind.attacker.example", f"rebind.attacker.example:{port}",
                 f"127.0.0.1:{port + 1}", "127.0.0.1"):
        for path in ("/api/state", "/api/thumbs?panel=0&value=0.1", "/"):
            status, answer = request(server, "GET", path, host=host)
            assert status == 421 and "not this server's address" in answer["error"], host
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}",
                 f"[::1]:{port}"):
        status, answer = request(server, "GET", "/api/state", host=host)
        assert status == 200 and answer["run_dir"] == str(app.run.root), host


def test_allowed_hosts_are_the_bound_address_with_its_port():
    assert guard.allowed_hosts("10.1.2.3", 8765) == {"10.1.2.3:8765"}
    assert guard.allowed_hosts("localhost", 80) >= {"localhost", "127.0.0.1:80", "[::1]:80"}
    assert guard.allowed_hosts("0.0.0.0", 8765) is None  # the token guards a wildcard bind


def test_a_text_plain_or_cross_origin_post_changes_no_preset(server, app):
    presets = app.run.root / "presets"
    values = app.thresholds.to_dict()
    status, _ = post(server, "/api/preset", {"thresholds": values, "name": "victim"})
    assert status == 200
    before = sorted((p.name, p.read_bytes()) for p in presets.iterdir())
    evil = {**values, "jitter": {**values["jitter"], "enabled": False}}
    body = {"thresholds": evil, "name": "victim", "overwrite": True}
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        status, answer = post(server, "/api/preset", body, Content_Type=kind)
        assert status == 415 and "application/json" in answer["error"]
    status, answer = request(server, "POST", "/api/preset", body)  # no Content-Type at all
    assert status == 415
    for origin in ("http://attacker.example", "null",
                   f"http://localhost:{server.server_address[1] + 1}"):
        status, answer = post(server, "/api/preset", body, Origin=origin)
        assert status == 403 and "Origin" in answer["error"]
    assert sorted((p.name, p.read_bytes()) for p in presets.iterdir()) == before
    port = server.server_address[1]
    status, _ = post(server, "/api/funnel", {"thresholds": values},
                     Origin=f"http://127.0.0.1:{port}")
    assert status == 200  # the page's own origin is answered


@pytest.mark.parametrize(("length", "status"), [("-1", 400), (None, 411), ("abc", 400),
                                                ("200000000", 413), ("9" * 40, 413)])
def test_a_body_is_capped_whatever_content_length_says(server, length, status):
    head = (f"POST /api/funnel HTTP/1.1\r\nHost: 127.0.0.1:{server.server_address[1]}\r\n"
            "Content-Type: application/json\r\n")
    head += f"Content-Length: {length}\r\n" if length is not None else ""
    answer, took = raw_exchange(server, (head + "\r\n").encode() + b'{"thresholds": {}}' * 10)
    assert answer.startswith(f"HTTP/1.0 {status}".encode()), answer[:200]
    assert took < 3  # answered at once, never waiting for the body claimed
    error = json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]
    assert "Content-Length" in error or "body" in error


def test_an_idle_or_stalled_connection_is_closed_after_the_timeout(app, monkeypatch):
    monkeypatch.setattr(serve, "IDLE_TIMEOUT_S", 0.5)
    server, _ = _start(app)
    try:
        answer, took = raw_exchange(server, b"", wait_s=10)
        assert answer == b"" and 0.4 < took < 5
        port = server.server_address[1]
        stalled = (f"POST /api/funnel HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: "
                   "application/json\r\nContent-Length: 100\r\n\r\n{\"thr").encode()
        answer, took = raw_exchange(server, stalled, wait_s=10)
        assert b" 200 " not in answer and 0.4 < took < 5
    finally:
        server.shutdown()
        server.server_close()


def _values(app, section: str, key: str, value) -> dict:
    values = app.thresholds.to_dict()
    values[section] = {**values[section], key: value}
    return values


@pytest.mark.parametrize(("path", "name"), [
    ("/api/thumbs?panel=999&value=0.1", "panel"), ("/api/thumbs?panel=-1&value=0.1", "panel"),
    ("/api/thumbs?panel=x&value=0.1", "panel"), ("/api/thumbs?value=0.1", "panel"),
    ("/api/thumbs?panel=0&value=1e400", "value"), ("/api/thumbs?panel=0&value=nan", "value"),
    ("/api/thumbs?panel=0&value=x", "value"), ("/api/thumbs?panel=99999999999&value=1", "panel"),
    ("/api/thumbs?panel=0&value=inf", "value"), ("/api/thumbs?panel=0", "value")])
def test_each_bad_query_value_is_a_400_naming_it(server, path, name):
    status, answer = request(server, "GET", path)
    assert status == 400 and name in answer["error"]


def test_each_bad_body_value_is_a_400_naming_it(server, app):
    nan = json.dumps({"thresholds": _values(app, "jitter", "max_box", 0.1)}).replace(
        '"max_box": 0.1', '"max_box": NaN')
    cases = [
        ("/api/funnel", nan.encode(), "jitter.max_box"),
        ("/api/funnel", nan.replace("NaN", "Infinity").encode(), "jitter.max_box"),
        ("/api/funnel", nan.replace("NaN", "-1e400").encode(), "jitter.max_box"),
        ("/api/strips", nan.encode(), "jitter.max_box"),
        ("/api/preset", nan.encode(), "jitter.max_box"),
        ("/api/funnel", {"thresholds": _values(app, "jitter", "max_box", "wide")},
         "jitter.max_box"),
        ("/api/funnel", {"thresholds": _values(app, "face_count", "max_faces", 1.5)},
         "face_count.max_faces"),
        ("/api/funnel", {"thresholds": _values(app, "segments", "min_s", 1e308)},
         "segments.min_s"),
        ("/api/funnel", {"thresholds": {"jitter": {"max_bogus": 1}}}, "max_bogus"),
        ("/api/funnel", {"thresholds": [1, 2]}, "thresholds"),
        ("/api/funnel", {"thresholds": {"jitter": [1]}}, "jitter"),
        ("/api/funnel", {}, "thresholds"),
        ("/api/funnel", b"[1, 2]", "JSON object"), ("/api/funnel", b'"text"', "JSON object"),
        ("/api/funnel", b"null", "JSON object"), ("/api/funnel", b"{not json", "JSON"),
        ("/api/funnel", b"\xff\xfe", "UTF-8"),
        ("/api/funnel", b'{"thresholds": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nests"),
        ("/api/funnel", b'{"thresholds": {"a": ' + b'{"a": ' * 20 + b"1" + b"}" * 21 + b"}",
         "nests"),
        ("/api/preset", {"thresholds": app.thresholds.to_dict(), "name": "n" * 10_000},
         "name"),
        ("/api/preset", {"thresholds": app.thresholds.to_dict(), "name": ["x"]}, "name"),
        ("/api/preset", {"thresholds": app.thresholds.to_dict(), "overwrite": "yes"},
         "overwrite"),
    ]
    for path, body, name in cases:
        status, answer = post(server, path, body)
        assert status == 400 and name in answer["error"], (path, name, answer)
        assert "\n" not in answer["error"] and len(answer["error"]) <= 400
    assert not (app.run.root / "presets" / ("n" * 100 + ".yaml")).exists()


def test_nan_and_infinities_are_refused_in_a_preset_yaml_and_in_set(tmp_path):
    for text in (".nan", ".inf", "-.inf", "1e400"):
        path = tmp_path / "bad.yaml"
        path.write_text(f"jitter:\n  max_box: {text}\n")
        with pytest.raises(ConfigError, match=r"jitter\.max_box must be a finite number"):
            load_thresholds(str(path))
        with pytest.raises(ConfigError, match=r"jitter\.max_box must be a finite number"):
            load_thresholds("s2m", [f"jitter.max_box={text}"])
    with pytest.raises(ConfigError, match=r"face_count\.max_faces must be a finite"):
        build_thresholds({"face_count": {"max_faces": float("inf")}})


def test_saving_over_a_preset_needs_overwrite(server, app):
    first = app.thresholds.to_dict()
    status, saved = post(server, "/api/preset", {"thresholds": first, "name": "same"})
    assert status == 200
    path = Path(saved["path"])
    text = path.read_text()
    second = _values(app, "jitter", "enabled", False)
    for flag in ({}, {"overwrite": False}):
        status, answer = post(server, "/api/preset", {"thresholds": second, "name": "same",
                                                      **flag})
        assert status == 409 and '"overwrite": true' in answer["error"]
    assert path.read_text() == text
    status, _ = post(server, "/api/preset", {"thresholds": second, "name": "same",
                                             "overwrite": True})
    assert status == 200 and load_thresholds(str(path)).to_dict() == second


def test_every_request_beyond_loopback_needs_the_token_and_any_host_is_taken(app):
    server, url = _start(app, "0.0.0.0")
    try:
        token = url.split("token=")[1]
        for path in ("/", "/api/state", "/api/thumbs?panel=0&value=0.1"):
            status, answer = request(server, "GET", path, host="any.name.example")
            assert status == 403 and "token" in answer["error"]
        status, answer = request(server, "GET", "/api/state", X_Gaia_Token=token[:-1] + "?")
        assert status == 403
        status, _ = post(server, "/api/funnel", {"thresholds": {}})
        assert status == 403
        status, answer = request(server, "GET", f"/api/state?token={token}")
        assert status == 200 and answer["run_dir"] == str(app.run.root)
    finally:
        server.shutdown()
        server.server_close()


def test_bad_values_answered_keep_the_server_serving(server):
    assert len(panels()) < 999
    for _ in range(3):
        assert request(server, "GET", "/api/thumbs?panel=999&value=0.1")[0] == 400
    assert request(server, "GET", "/api/state")[0] == 200
    # a huge but finite threshold (a preset may hold one) is answered: every frame on one side
    status, answer = request(server, "GET", "/api/thumbs?panel=0&value=1e308")
    assert status == 200 and not (answer["inside"] and answer["outside"])


HOSTILE = """<!doctype html><script>
const body = JSON.stringify({thresholds: %s, name: "victim", overwrite: true});
Promise.allSettled([
  fetch("%s/api/preset", {method: "POST", mode: "no-cors", body,
                          headers: {"Content-Type": "text/plain"}}),
  fetch("%s/api/preset", {method: "POST", mode: "no-cors", body}),
]).then(() => {
  const form = document.createElement("form");
  form.method = "POST"; form.enctype = "text/plain"; form.action = "%s/api/preset";
  const input = document.createElement("input");
  input.name = body.slice(0, -2) + ', "x": "'; input.value = '"}';
  form.appendChild(input); document.body.appendChild(form);
  document.title = "sent"; form.submit();
});
</script>"""


def test_a_hostile_page_in_chromium_cannot_change_a_preset(server, app, tmp_path,
                                                           monkeypatch):
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.conftest import headless_chromium

    port = server.server_address[1]
    target = f"http://127.0.0.1:{port}"
    values = app.thresholds.to_dict()
    status, saved = post(server, "/api/preset", {"thresholds": values, "name": "victim",
                                                 "overwrite": True})
    assert status == 200
    before = Path(saved["path"]).read_bytes()
    evil = {name: {**section, "enabled": False} if "enabled" in section else section
            for name, section in values.items()}
    page = (HOSTILE % (json.dumps(evil), target, target, target)).encode()
    seen: list[tuple] = []
    check = guard.check_state_change
    monkeypatch.setattr(guard, "check_state_change",
                        lambda *args: (seen.append(args), check(*args))[1])

    class Hostile(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    driver = headless_chromium()
    try:
        driver.get(f"http://127.0.0.1:{other.server_address[1]}/")
        wait = WebDriverWait(driver, 30)
        wait.until(lambda d: len(seen) >= 3)  # both fetches and the form reached the server
    finally:
        driver.quit()
        other.shutdown()
        other.server_close()
    foreign = f"http://127.0.0.1:{other.server_address[1]}"
    assert all(origin == foreign for _, origin, _ in seen)
    assert {kind.split(";")[0] for kind, _, _ in seen} == {"text/plain"}
    assert Path(saved["path"]).read_bytes() == before
