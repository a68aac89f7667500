"""Which frames the paper's evaluations compare (appendix B.2), as plain, seeded plans: the
evaluators take a plan and score it, and the plan is written to a file so a run can be
repeated exactly on the same frames.

- Self-reconstruction (video-driven): each test video's first frame gives the appearance and
  every other frame drives; each output is compared with the frame that drove it.
- Cross-reenactment: ``rounds`` rounds (5 in the paper); in each, every test video drives
  ``frames_per_round`` consecutive frames (100 in the paper; the whole video when shorter,
  starting at a seeded random frame otherwise) with the appearance of a random frame of
  another test video, drawn with the seed. No ground truth exists, so only driving-side
  metrics apply.

The test list is the identity split's held-out part (``split`` in the clips' JSON), by key and
frame count, sorted by key so that the plan does not depend on shard order.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from gaia.schemas.atomic import write_text_atomic

PLAN_VERSION = 1


@dataclass(frozen=True)
class EvalVideo:
    key: str
    frames: int


@dataclass(frozen=True)
class SelfPair:
    """Video ``key``: appearance from frame ``appearance``, driven by frames ``driving``."""

    key: str
    appearance: int
    driving: tuple[int, ...]


@dataclass(frozen=True)
class CrossDrive:
    """Round ``round``: video ``driver``'s frames ``start:start + length`` drive the
    appearance of ``source``'s frame ``source_frame``."""

    round: int
    driver: str
    start: int
    length: int
    source: str
    source_frame: int


def ordered_videos(videos: list[EvalVideo]) -> list[EvalVideo]:
    """The list sorted by key, checked: keys unique, at least 2 frames each (one appearance,
    one driving)."""
    ordered = sorted(videos, key=lambda v: v.key)
    keys = [v.key for v in ordered]
    if len(set(keys)) != len(keys):
        raise ValueError("the test list names a video twice")
    if short := [v.key for v in ordered if v.frames < 2]:
        raise ValueError(f"test videos need at least 2 frames: {short}")
    return ordered


def self_reconstruction(videos: list[EvalVideo]) -> list[SelfPair]:
    """First frame as appearance, every other frame as driving (appendix B.2)."""
    return [SelfPair(v.key, 0, tuple(range(1, v.frames))) for v in ordered_videos(videos)]


def cross_reenactment(videos: list[EvalVideo], rounds: int = 5, frames_per_round: int = 100,
                      seed: int = 0) -> list[CrossDrive]:
    """``rounds`` x one drive per test video, each with another video's appearance (module
    docstring); the same inputs and seed give the same plan."""
    ordered = ordered_videos(videos)
    if len(ordered) < 2:
        raise ValueError("cross-reenactment needs at least 2 test videos (an appearance from "
                         "another video than the driving one)")
    if rounds < 1 or frames_per_round < 1:
        raise ValueError("rounds and frames_per_round must be at least 1")
    rng = np.random.default_rng([seed, PLAN_VERSION])
    plan = []
    for round_number in range(rounds):
        for index, video in enumerate(ordered):
            length = min(frames_per_round, video.frames)
            start = int(rng.integers(0, video.frames - length + 1))
            other = int(rng.integers(0, len(ordered) - 1))
            source = ordered[other + (other >= index)]  # any video but this one
            plan.append(CrossDrive(round_number, video.key, start, length, source.key,
                                   int(rng.integers(0, source.frames))))
    return plan


def write_plan(path: Path, videos: list[EvalVideo], seed: int, rounds: int,
               frames_per_round: int) -> dict:
    """The test list and both plans as JSON at ``path`` (written whole or not at all)."""
    document = {
        "plan_version": PLAN_VERSION, "seed": seed, "rounds": rounds,
        "frames_per_round": frames_per_round,
        "test_videos": [asdict(v) for v in ordered_videos(videos)],
        "self_reconstruction": [asdict(p) for p in self_reconstruction(videos)],
        "cross_reenactment": [asdict(d) for d in cross_reenactment(
            videos, rounds, frames_per_round, seed)],
    }
    write_text_atomic(path, json.dumps(document, indent=1))
    return document


def read_plan(path: Path) -> tuple[list[SelfPair], list[CrossDrive]]:
    """A plan written by ``write_plan``, checked against a fresh one from its own test list
    and seed (a hand-edited or other-version plan is refused: it would not repeat a run)."""
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    if document.get("plan_version") != PLAN_VERSION:
        raise ValueError(f"{path}: plan version {document.get('plan_version')!r}, this "
                         f"version reads {PLAN_VERSION}; write the plan again")
    videos = [EvalVideo(**v) for v in document["test_videos"]]
    pairs = self_reconstruction(videos)
    drives = cross_reenactment(videos, document["rounds"], document["frames_per_round"],
                               document["seed"])
    stored_pairs = [SelfPair(p["key"], p["appearance"], tuple(p["driving"]))
                    for p in document["self_reconstruction"]]
    if stored_pairs != pairs or [CrossDrive(**d) for d in document["cross_reenactment"]] \
            != drives:
        raise ValueError(f"{path}: its frames are not the ones its test list and seed give; "
                         "write the plan again instead of editing it")
    return pairs, drives
