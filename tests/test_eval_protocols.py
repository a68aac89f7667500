"""The paper's evaluation protocols (appendix B.2) pick exactly the frames it says: the first
frame as appearance and every other frame as driving; 5 rounds of 100 frames with another
video's appearance, seeded; and a written plan repeats the run or is refused."""

from __future__ import annotations

import json

import pytest

from gaia.evaluation.protocols import (
    EvalVideo,
    cross_reenactment,
    read_plan,
    self_reconstruction,
    write_plan,
)

VIDEOS = [EvalVideo("b", 250), EvalVideo("a", 80), EvalVideo("c", 100)]


def test_self_reconstruction_is_first_frame_against_all_others():
    pairs = self_reconstruction(VIDEOS)
    assert [p.key for p in pairs] == ["a", "b", "c"]  # sorted: no dependence on shard order
    for pair, frames in zip(pairs, (80, 250, 100), strict=True):
        assert pair.appearance == 0 and pair.driving == tuple(range(1, frames))
    with pytest.raises(ValueError, match="at least 2 frames"):
        self_reconstruction([EvalVideo("x", 1)])
    with pytest.raises(ValueError, match="twice"):
        self_reconstruction([EvalVideo("x", 5), EvalVideo("x", 6)])


def test_cross_reenactment_is_five_rounds_of_100_frames_from_another_video():
    plan = cross_reenactment(VIDEOS, seed=3)
    assert len(plan) == 5 * 3 and sorted({d.round for d in plan}) == [0, 1, 2, 3, 4]
    frames = {v.key: v.frames for v in VIDEOS}
    for drive in plan:
        assert drive.source != drive.driver
        assert drive.length == min(100, frames[drive.driver])
        assert drive.start >= 0 and drive.start + drive.length <= frames[drive.driver]
        assert 0 <= drive.source_frame < frames[drive.source]
    # The 250-frame video is driven from several starts; the short ones whole.
    assert len({d.start for d in plan if d.driver == "b"}) > 1
    assert {d.start for d in plan if d.driver in ("a", "c")} == {0}
    assert plan == cross_reenactment(list(reversed(VIDEOS)), seed=3)  # order-free, seeded
    assert plan != cross_reenactment(VIDEOS, seed=4)
    with pytest.raises(ValueError, match="at least 2 test videos"):
        cross_reenactment(VIDEOS[:1])


def test_a_written_plan_repeats_the_run_and_an_edited_one_is_refused(tmp_path):
    path = tmp_path / "plan.json"
    write_plan(path, VIDEOS, seed=7, rounds=5, frames_per_round=100)
    pairs, drives = read_plan(path)
    assert pairs == self_reconstruction(VIDEOS)
    assert drives == cross_reenactment(VIDEOS, seed=7)
    document = json.loads(path.read_text())
    document["cross_reenactment"][0]["source_frame"] += 1
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match="write the plan again"):
        read_plan(path)
    assert not list(tmp_path.glob(".*.partial*"))
