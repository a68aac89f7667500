"""Timed-text sidecars, the instruction filter and the action rule (paper, appendix E), on
hand-written sidecars and hand-made measures: every bad input gets its reason, none raises."""

from __future__ import annotations

import codecs
import json
import os

import numpy as np
import pytest

from gaia.common.config_files import ConfigError
from gaia.filters.base import code
from gaia.filters.funnel import decide_video
from gaia.filters.instruct.actions import NoCueData
from gaia.filters.instruct.rules import InstructionRules
from gaia.filters.instruct.select import is_instruction
from gaia.filters.thresholds import load_thresholds
from gaia.pipeline.instructions import sidecar
from gaia.pipeline.instructions.cues_json import parse_cues_json
from gaia.pipeline.instructions.markup import clean_text
from gaia.pipeline.instructions.sidecar import MAX_BYTES, read_video_cues, sidecar_columns
from gaia.pipeline.instructions.srt import parse_srt
from gaia.pipeline.instructions.tidy import tidy_cues
from gaia.pipeline.instructions.vtt import parse_vtt
from gaia.pipeline.run_dir import RunDir
from gaia.schemas.cues import MAX_CUES, Cue, VideoCues
from gaia.schemas.instruction import (
    Instruction,
    InstructionError,
    instruction_problems,
    read_instruction,
    text_problem,
)
from gaia.schemas.videos import empty_record
from tests.test_filters import FPS, measures

SRT = """1
00:00:01,000 --> 00:00:02,500
<i>Please</i> {\\an8}smile &amp; nod.

3
00:00:08,000 --> 00:00:09,000
Now turn
your head left!

2
00:00:04,000 --> 00:00:05,000
The weather is lovely.
"""


def _by_text(cues) -> dict[str, Cue]:
    return {cue.text: cue for cue in cues}


def test_srt_cues_are_cleaned_and_sorted():
    cues = tidy_cues(parse_srt(SRT.replace("\n", "\r\n")))
    assert [(c.start_s, c.end_s, c.text, c.reason) for c in cues] == [
        (1.0, 2.5, "Please smile & nod.", ""),
        (4.0, 5.0, "The weather is lovely.", ""),
        (8.0, 9.0, "Now turn your head left!", ""),
    ]
    assert all(text_problem(c.text) is None for c in cues)  # what instruction.json may hold


def test_srt_bad_cues_each_get_their_reason():
    text = """1
00:00:01,000 --> 00:00:03,000
first

2
00:00:02,000 --> 00:00:04,000
overlaps the first

3
00:00:06,000 --> 00:00:05,000
reversed

4
-00:00:01,000 --> 00:00:01,000
negative

5
00:00:xx,000 --> 00:00:08,000
unreadable time

6
00:61:00,000 --> 00:62:00,000
minutes past 59

7
00:00:09,000 --> 00:00:10,000
<i></i> {\\an8}

a stray line with no timing

8
00:00:10,000 --> 00:00:11,000
""" + "word " * 120 + "\n"
    cues = tidy_cues(parse_srt(text))
    reasons = {c.text: c.reason for c in cues}
    assert reasons["first"] == ""
    assert reasons["overlaps the first"] == "overlapping_cue"  # the later one goes
    assert reasons["reversed"] == reasons["negative"] == "bad_time"
    assert reasons["unreadable time"] == reasons["minutes past 59"] == "bad_time"
    assert reasons[""] == "empty_text"
    assert reasons["a stray line with no timing"] == "bad_cue"
    assert [c.reason for c in cues if c.text.startswith("word")] == ["long_text"]
    assert len(cues) == 9  # nothing lost: every entry is stored with its reason


def test_vtt_header_notes_settings_and_voice_tags():
    text = """WEBVTT - instructions

NOTE the director's prompts

STYLE
::cue { color: yellow }

intro
00:01.000 --> 00:02.000 align:start position:10%
<v Director>Please <c.loud>blink</c></v>

00:00:03.000 --> 00:00:04.500
Look <00:00:03.500>up
"""
    cues = tidy_cues(parse_vtt(text))
    assert [(c.start_s, c.end_s, c.text, c.reason) for c in cues] == [
        (1.0, 2.0, "Please blink", ""), (3.0, 4.5, "Look up", "")]


def test_cues_json_bad_items_each_get_their_reason():
    items = [
        {"start": 1, "end": 2.5, "text": "smile"},
        {"start": "1", "end": 2, "text": "a string time"},
        {"start": True, "end": 2, "text": "a boolean time"},
        {"start": 3, "text": "no end"},
        {"start": 4, "end": 5, "text": 7},
        ["not", "an", "object"],
    ]
    text = json.dumps(items)[:-1] + ', {"start": NaN, "end": 6, "text": "NaN time"}]'
    cues = tidy_cues(parse_cues_json(text))
    reasons = {c.text: c.reason for c in cues}
    assert reasons == {"smile": "", "a string time": "bad_time", "a boolean time": "bad_time",
                       "no end": "bad_time", "": "bad_cue", "NaN time": "bad_time"}
    assert _by_text(cues)["NaN time"].start_s is None  # stored as null, never NaN
    assert sum(c.reason == "bad_cue" for c in cues) == 2


def test_clean_text_strips_markup_entities_and_controls():
    assert clean_text("<font color='#fff'>Turn</font>\\Nyour&nbsp;head \u200b\x07left ") == \
        "Turn your head left"
    assert clean_text("{\\i1}Smile{\\i0}") == "Smile"
    assert clean_text("&lt;i&gt; is text") == "<i> is text"


def _video(folder, name: str = "clip.mp4") -> str:
    path = folder / name
    path.write_bytes(b"")  # the video is not read here
    return str(path)


def _write(folder, name: str, data: bytes):
    (folder / name).write_bytes(data)


@pytest.mark.parametrize(("data", "status"), [
    (codecs.BOM_UTF8 + SRT.encode("utf-8"), "ok"),
    (codecs.BOM_UTF16_LE + SRT.encode("utf-16-le"), "ok"),
    (codecs.BOM_UTF16_BE + SRT.encode("utf-16-be"), "ok"),
    (SRT.encode("utf-16-le"), "sidecar_encoding"),  # UTF-16 without a BOM: NUL bytes
    (codecs.BOM_UTF32_LE + SRT.encode("utf-32-le"), "sidecar_encoding"),
    (SRT.replace("weather", "caf\u00e9").encode("latin-1"), "sidecar_encoding"),
    (b"1\n00:00:01,000 --> 00:00:02,000\n" + b"x" * MAX_BYTES, "sidecar_too_large"),
])
def test_sidecar_encodings_and_size(tmp_path, data, status):
    video = _video(tmp_path)
    _write(tmp_path, "clip.srt", data)
    found = read_video_cues(video)
    assert (found.sidecar, found.status) == ("clip.srt", status)
    assert len(found.cues) == (3 if status == "ok" else 0)


def test_sidecar_that_is_no_file_or_not_its_format(tmp_path):
    video = _video(tmp_path)
    assert read_video_cues(video) == VideoCues("", "none", ())
    (tmp_path / "clip.cues.json").mkdir()  # a folder by the sidecar's name
    assert read_video_cues(video).status == "sidecar_unreadable"
    os.rmdir(tmp_path / "clip.cues.json")
    os.mkfifo(tmp_path / "clip.srt")  # never opened: reading it would block
    assert read_video_cues(video).status == "sidecar_unreadable"
    os.unlink(tmp_path / "clip.srt")
    _write(tmp_path, "clip.vtt", SRT.encode())  # no WEBVTT header
    assert read_video_cues(video) == VideoCues("clip.vtt", "sidecar_format", ())
    for data in (b'{"start": 1}', b"[1, 2", b"[" * 100_000 + b"]" * 100_000):
        _write(tmp_path, "clip.cues.json", data)  # looked for first
        assert read_video_cues(video).status == "sidecar_format", data[:20]
    items = [{"start": i, "end": i + 0.5, "text": "nod"} for i in range(MAX_CUES + 1)]
    _write(tmp_path, "clip.cues.json", json.dumps(items).encode())
    assert read_video_cues(video).status == "sidecar_too_many_cues"
    # A store the worker cannot reach is a reason too, never an exception.
    assert read_video_cues("nosuchfs://bucket/raw/clip.mp4").status == "sidecar_unreadable"


def test_remote_sidecars_are_read_through_the_store(tmp_path, monkeypatch):
    import pyarrow.fs

    class Store:  # s3://bucket/... served from tmp_path, as pyarrow's filesystems serve it
        @staticmethod
        def from_uri(uri: str):
            return pyarrow.fs.LocalFileSystem(), str(tmp_path / uri.split("://", 1)[1])

    monkeypatch.setattr(pyarrow.fs, "FileSystem", Store)
    (tmp_path / "bucket").mkdir()
    uri = "s3://bucket/clip.mp4"
    assert read_video_cues(uri) == VideoCues("", "none", ())
    _write(tmp_path / "bucket", "clip.vtt", b"WEBVTT\n\n00:01.000 --> 00:02.000\nnod\n")
    assert read_video_cues(uri) == VideoCues("clip.vtt", "ok", (Cue(1.0, 2.0, "nod"),))
    _write(tmp_path / "bucket", "clip.srt", b"x" * (MAX_BYTES + 1))  # looked for before vtt
    assert read_video_cues(uri) == VideoCues("clip.srt", "sidecar_too_large", ())


def test_a_parser_bug_costs_the_cues_not_the_video(tmp_path, monkeypatch):
    def broken(text):
        raise IndexError("a bug on hostile input")

    monkeypatch.setitem(sidecar.PARSERS, ".srt", broken)
    _write(tmp_path, "clip.srt", SRT.encode())
    assert read_video_cues(_video(tmp_path)) == VideoCues("clip.srt", "sidecar_format", ())


def test_status_records_keep_cues_through_videos_parquet(tmp_path):
    import pyarrow.parquet as pq

    _write(tmp_path, "clip.srt", SRT.encode())
    run = RunDir(tmp_path / "run")
    run.make()
    record = empty_record("clip-0", _video(tmp_path), "raw")
    record.update(status="ok", reason="ok", **sidecar_columns(record["path"]))
    run.write_status(record)
    assert run.finished()["clip-0"]["cues"][0]["text"] == "Please smile & nod."  # trusted
    run.write_videos_table()
    row = pq.read_table(run.videos).to_pylist()[0]
    assert (row["timed_text"], row["timed_text_status"], len(row["cues"])) == ("clip.srt", "ok", 3)


@pytest.mark.parametrize(("text", "expected"), [
    ("Please smile.", True),
    ("Now, turn your head to the left!", True),
    ("Can you raise your eyebrows?", True),
    ("Director: nod slowly", True),
    ("OK and then blink twice", True),
    ("Turn your head: left", True),
    ("\u201cLook up\u201d", True),
    ("Look, I think it's fine.", False),  # a discourse marker, not an action
    ("The weather is lovely today.", False),
    ("Don't move.", False),
    ("Wow!", False),
    ("Turn " + "and turn " * 6, False),  # 13 words: narration, not an instruction
])
def test_imperative_instructions(text, expected):
    assert is_instruction(text, InstructionRules()) is expected


def test_word_list_and_all_modes():
    words = InstructionRules(mode="words", words=("smile", "Head Left"))
    assert is_instruction("A big smile, please", words)
    assert is_instruction("turn your head left", words)  # a phrase: a run of whole words
    assert not is_instruction("she smiles", words)
    assert not is_instruction("head to the left", words)
    assert is_instruction("wiggle your ears", InstructionRules(verbs=("wiggle",)))
    assert is_instruction("anything at all", InstructionRules(mode="all"))
    for wrong, key in ((["instructions.mode=words"], "words"),
                       (["instructions.min_s=6"], "min_s"),
                       (["instructions.mode=verbs"], "mode")):
        with pytest.raises(ConfigError, match=f"instructions.*{key}"):
            load_thresholds("instruct", wrong)


INSTRUCT = load_thresholds("instruct")


def _decide(data, cues, thresholds=INSTRUCT):
    return decide_video(data, FPS, "src", thresholds, VideoCues("clip.srt", "ok", cues))


def test_actions_follow_their_cues_within_window_grace_and_minimum():
    data = measures(500)  # 20 s passing every filter
    turned = data["yaw_deg"].copy()
    turned[250:262] = 80.0  # 10.0-10.48 s: a face turned past even instruct's limit
    data["yaw_deg"] = turned
    cues = (
        Cue(0.5, 1.0, "Please smile."),       # window 1.0-4.0 (the next cue)
        Cue(4.0, 4.5, "It is sunny."),        # not an instruction
        Cue(9.0, 9.9, "Turn your head."),     # window 9.9-14.9: the turn at 10.0 stops it
        Cue(15.0, 15.5, "nod"),               # window 15.5-20 (the video's end): 4.5 s
        Cue(None, None, "lost", "bad_time"),
    )
    decision = _decide(data, cues)
    assert [(s.start, s.stop) for s in decision.segments] == [(25, 100), (388, 500)]
    assert [a.text for a in decision.actions] == ["Please smile.", "nod"]
    assert [a.window_end_s for a in decision.actions] == [4.0, 20.5]
    reasons = decision.reasons
    assert (reasons[:25] == code("no_instruction")).all()
    assert (reasons[248:250] == code("short_action")).all()  # 9.92-9.96 s: 2 frames
    assert (reasons[250:262] == code("not_frontal")).all()  # a filter before the action rule
    assert (reasons[262:372] == code("late_action")).all()  # passes, but not the action
    assert (reasons[372:388] == code("no_instruction")).all()  # 14.88-15.5 s
    assert decision.funnel.cues == {"bad_time": 1, "clip": 2, "not_instruction": 1,
                                    "short_action": 1}
    assert decision.funnel.to_json()["cues"] == {
        "input": 5, "clips": 2,
        "dropped": {"bad_time": 1, "not_instruction": 1, "short_action": 1}}
    assert decision.funnel.sidecars == {"ok": 1}
    assert decision.funnel.first_frames[code("late_action")] == 110
    kept = sum(s.stop - s.start for s in decision.segments)
    assert decision.funnel.kept_frames == kept == int((reasons == 0).sum())


def test_the_action_must_begin_within_the_grace():
    data = measures(250)
    faceless = data["num_faces"].copy()
    faceless[25:45] = 0  # 1.0-1.8 s: nobody there when the instruction ends at 1.0
    data["num_faces"] = faceless
    decision = _decide(data, (Cue(0.5, 1.0, "smile"),))
    assert decision.segments == [] and decision.funnel.cues == {"no_action": 1}
    grace = load_thresholds("instruct", ["instructions.grace_s=1"])
    assert [(s.start, s.stop) for s in _decide(data, (Cue(0.5, 1.0, "smile"),),
                                               grace).segments] == [(45, 150)]


def test_cues_past_the_video_and_other_presets():
    data = measures(100)
    assert _decide(data, (Cue(10.0, 11.0, "smile"),)).funnel.cues == {"no_action": 1}
    with pytest.raises(NoCueData, match="gaia curate measure"):
        decide_video(data, FPS, "src", INSTRUCT, None)
    # Presets that cut segments ignore cues entirely, and say nothing of them.
    vae = decide_video(data, FPS, "src", load_thresholds("vae"),
                       VideoCues("clip.srt", "ok", (Cue(0.5, 1.0, "smile"),)))
    assert vae.actions == () and "cues" not in vae.funnel.to_json()
    assert "instructions" not in load_thresholds("vae").to_dict()


def _instruction(**changes) -> bytes:
    fields = dict(text="Please smile.", cue_start_s=0.4, cue_end_s=1.2, offset_s=0.0096,
                  window_end_s=4.0, cue_index=0, sidecar="wolf.srt", mode="imperative")
    return Instruction(**{**fields, **changes}).to_bytes()


def test_instruction_member_is_read_and_checked():
    assert read_instruction(_instruction()).text == "Please smile."
    assert instruction_problems(_instruction(), 1.2096, 3.9296) == []
    bad = {
        "text": _instruction(text=" two  spaces"),
        "finite number": json.dumps({"text": "smile", "cue_start_s": "0"}).encode(),
        "start must be": _instruction(cue_start_s=2.0),
        "negative": _instruction(offset_s=-0.5),
        "mode must be": _instruction(mode="shout"),
        "does not parse": b"\xff{",
        "not an object": b"[]",
    }
    for words, blob in bad.items():
        with pytest.raises(InstructionError, match=words):
            read_instruction(blob)
    assert "not the clip's start_s" in instruction_problems(_instruction(), 2.0, 4.0)[0]
    assert "after its action window" in instruction_problems(_instruction(), 1.2096, 4.5)[0]


def test_actions_never_overlap_and_stay_in_their_windows():
    rng = np.random.default_rng(3)
    data = measures(1500)
    data["jitter_box"] = np.where(rng.random(1500) < 0.02, 0.5, 0.01).astype(np.float32)
    starts = np.sort(rng.uniform(0, 58, 25))
    cues = tuple(Cue(float(s), float(s + rng.uniform(0.2, 2.0)), rng.choice(
        ["smile", "nod", "the end", "turn left"])) for s in starts)
    cues = tidy_cues([_raw(c) for c in cues])
    decision = _decide(data, cues)
    times = data["time_s"]
    previous = -1.0
    for segment, action in zip(decision.segments, decision.actions, strict=True):
        assert action.cue_end_s - 1e-6 <= segment.start_s <= action.cue_end_s + 0.5 + 1e-6
        assert segment.end_s <= action.window_end_s + 1e-6
        assert segment.duration_s >= 1.5 - 1e-6 and segment.start_s >= previous
        assert (decision.reasons[segment.start:segment.stop] == 0).all()
        previous = segment.end_s
    assert decision.funnel.kept_frames == int((decision.reasons == 0).sum())
    assert sum(decision.funnel.cues.values()) == len(cues) and len(times) == 1500


def _raw(cue: Cue):
    from gaia.pipeline.instructions.raw import RawCue

    return RawCue(cue.start_s, cue.end_s, cue.text)
