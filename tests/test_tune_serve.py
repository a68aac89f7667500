"""``gaia curate tune --serve`` (issue 14): the JSON API gives tune's own funnel, saves presets
that ``--preset`` reads back, refuses a request without the token when bound beyond loopback,
says so for a port in use, and shows a placeholder for a moved source; and in a real browser
(Debian's headless Chromium, driven by Selenium), moving a slider updates the funnel to what
``gaia curate tune`` prints, the saved preset is what the page shows, and saving it again asks
before it replaces the file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from gaia.filters.thresholds import load_thresholds
from gaia.pipeline.tune.serve import TuneApp, make_server
from gaia.pipeline.tune.table import funnel_for


@pytest.fixture()
def served(measured_sample, tmp_path):
    """A copy of the measured sample's run served on a free loopback port."""
    run = tmp_path / "run"
    shutil.copytree(measured_sample.root, run)
    app = TuneApp(run, load_thresholds("s2m"), "s2m")
    server, url = make_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield run, url, server
    server.shutdown()
    server.server_close()


def call(url: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def test_api_funnel_preset_and_bad_requests(served, tmp_path):
    run, url, server = served
    state = call(url + "api/state")
    keys = {(s["section"], s["key"]) for s in state["sliders"]}
    assert ("jitter", "max_box") in keys and ("frontal", "max_deviation_deg") in keys
    # Identity is embedded once per face track and compared with the previous track: the
    # sample's clips are one shot each, so that panel has no values; nor have SyncNet's, which
    # the sample was measured without; nor has the duplicate match, null outside a copy's
    # frames (the sample's copy, carphone_noaudio, is an edge case this run does not measure).
    assert all(sum(h["counts"]) > 0 for h in state["histograms"].values()
               if h["key"] not in ("max_distance", "min_syncnet_confidence",
                                   "max_syncnet_lag_frames", "min_match"))
    values = state["thresholds"]
    values["jitter"]["max_box"] = 0.2
    answer = call(url + "api/funnel", {"thresholds": values})
    expected = funnel_for(run, load_thresholds("s2m", ["jitter.max_box=0.2"]),
                          source="metrics")
    assert answer["kept_frames"] == expected.kept_frames and answer["clips"] == expected.clips
    assert answer["source"] == "table" and answer["exact"]
    assert 0 < answer["videos_with_clips"] <= answer["videos"]
    # A kept clip shows a person; one person in several videos counts once (run-wide ids),
    # and the answer's Table 1 says the same in its total row.
    assert 1 <= answer["identities"] <= answer["videos_with_clips"]
    total = answer["table1"][-1]
    assert total["source"] == "Total" and total["filtered_ids"] == answer["identities"]
    assert total["raw_ids"] >= total["filtered_ids"]
    saved = call(url + "api/preset", {"thresholds": values, "name": "../../outside"})
    path = Path(saved["path"])
    assert path.parent == run / "presets" and path.name == "outside.yaml"  # sanitised
    assert load_thresholds(str(path)).to_dict() == values
    with pytest.raises(urllib.error.HTTPError) as bad:
        call(url + "api/funnel", {"thresholds": {"jitter": {"max_bogus": 1}}})
    assert bad.value.code == 400 and "max_bogus" in json.loads(bad.value.read())["error"]
    landmarks = next(h["index"] for h in state["histograms"].values()
                     if (h["section"], h["key"]) == ("jitter", "max_landmarks"))
    thumbs = call(url + f"api/thumbs?panel={landmarks}&value=0.06")
    assert thumbs["inside"] and all("<img" in t["html"] for t in thumbs["inside"])
    assert thumbs["note"] is None
    strips = call(url + "api/strips", {"thresholds": values})["html"]
    assert strips.count("<tr>") == answer["videos"]  # a strip per measured video
    # a source video that has moved: a placeholder and a note, never a crash
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(run / "videos.parquet")
    moved = pa.array([f"/moved/{Path(p).name}" for p in table["path"].to_pylist()])
    pq.write_table(table.set_column(table.schema.get_field_index("path"), "path", moved),
                   run / "videos.parquet")
    thumbs = call(url + f"api/thumbs?panel={landmarks}&value=0.07")
    assert thumbs["inside"] and all("missing" in t["html"] for t in thumbs["inside"])
    assert "/moved/" in thumbs["note"]
    with pytest.raises(ValueError, match="in use: pass another with --port"):
        make_server(server.RequestHandlerClass.app, "127.0.0.1", server.server_address[1])


def test_beyond_loopback_every_request_needs_the_token(served):
    run, _, _ = served
    server, url = make_server(TuneApp(run, load_thresholds(), None), "0.0.0.0", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        token = url.split("token=")[1]
        with pytest.raises(urllib.error.HTTPError) as refused:
            call(f"http://127.0.0.1:{port}/api/state")
        assert refused.value.code == 403
        assert call(f"http://127.0.0.1:{port}/api/state?token={token}")["run_dir"] == str(run)
    finally:
        server.shutdown()
        server.server_close()


def test_a_folder_without_measures_is_refused_with_the_reason(tmp_path):
    with pytest.raises(FileNotFoundError, match="gaia curate measure"):
        TuneApp(tmp_path / "empty", load_thresholds(), None)


def test_moving_a_slider_in_chromium_updates_the_funnel_and_saves_the_preset(served, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.conftest import headless_chromium

    run, url, _ = served
    driver = headless_chromium("--window-size=1300,1800")
    try:
        driver.get(url)
        wait = WebDriverWait(driver, 60)
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute(
            "data-funnel-version"))
        before = driver.find_element(By.ID, "kept").text
        driver.execute_script(
            "const s = document.getElementById('jitter.max_box'); s.value = '0.2';"
            "s.dispatchEvent(new Event('input')); s.dispatchEvent(new Event('change'));")
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute(
            "data-funnel-version") == "2")
        kept = driver.find_element(By.ID, "kept").text
        expected = funnel_for(run, load_thresholds("s2m", ["jitter.max_box=0.2"]))
        assert kept == f"{expected.kept_s / 3600:.4f}" and float(kept) >= float(before)
        shown = driver.execute_script("return thresholds;")
        driver.find_element(By.ID, "save").click()
        saved = wait.until(lambda d: d.find_element(By.ID, "saved").get_attribute("data-path"))
        driver.save_screenshot(str(tmp_path / "tune-page.png"))
        # saving again under that name: the page asks first, and replaces it when told to
        driver.execute_script("const s = document.getElementById('saved');"
                              "s.removeAttribute('data-path'); s.textContent = '';")
        driver.find_element(By.ID, "save").click()
        # alert_is_present waits for the dialog (switch_to.alert raises at once before it shows)
        alert = wait.until(expected_conditions.alert_is_present())
        assert "exists" in alert.text
        alert.accept()
        assert wait.until(lambda d: d.find_element(By.ID, "saved").get_attribute(
            "data-path")) == saved
    finally:
        driver.quit()
    assert load_thresholds(saved).to_dict() == shown  # the preset is what the page showed
    printed = subprocess.run([sys.executable, "-m", "gaia.cli", "curate", "tune", str(run),
                              "--preset", saved, "--json"], capture_output=True, text=True,
                             check=True, timeout=300)
    assert f"{json.loads(printed.stdout)['kept_hours']:.4f}" == kept
    assert (tmp_path / "tune-page.png").stat().st_size > 10_000
