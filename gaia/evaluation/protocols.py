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
# Bounds of a plan (read or made): the paper runs 5 rounds of 100 frames; a plan file is
# checked against these and against the test videos before anything is replayed from it.
MAX_ROUNDS = 1000
MAX_FRAMES_PER_ROUND = 1_000_000
MAX_VIDEO_FRAMES = 10_000_000  # frames of one test video (over 100 hours at 25 fps)
MAX_PLAN_BYTES = 1 << 30


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
    if not (1 <= rounds <= MAX_ROUNDS and 1 <= frames_per_round <= MAX_FRAMES_PER_ROUND):
        raise ValueError(f"rounds must be 1 to {MAX_ROUNDS} and frames_per_round 1 to "
                         f"{MAX_FRAMES_PER_ROUND}, not {rounds} and {frames_per_round}")
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


def _whole(path: Path, name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{path}: {name} is {str(value)[:40]!r}; a plan gives a whole number "
                         f"from {low} to {high}")
    return value


def _entries(path: Path, document: dict, name: str, count: int, keys: set[str]) -> list:
    """``document[name]``: a list of ``count`` objects that each have exactly ``keys``."""
    entries = document[name]
    if not isinstance(entries, list) or len(entries) != count:
        raise ValueError(f"{path}: {name} is not a list of {count} entries")
    if not all(isinstance(e, dict) and set(e) == keys for e in entries):
        raise ValueError(f"{path}: an entry of {name} does not have exactly the fields "
                         f"{', '.join(sorted(keys))}")
    return entries


def _checked(path: Path, document: object, expected: list[EvalVideo] | None) -> list[EvalVideo]:
    """The plan's test videos, once its fields, types and sizes are those ``write_plan``
    writes (and, with ``expected``, its videos are those): nothing is built from it before."""
    fields = {"plan_version", "seed", "rounds", "frames_per_round", "test_videos",
              "self_reconstruction", "cross_reenactment"}
    if not isinstance(document, dict):
        raise ValueError(f"{path}: not a plan (a JSON object is expected)")
    if document.get("plan_version") != PLAN_VERSION:
        raise ValueError(f"{path}: plan version {str(document.get('plan_version'))[:40]!r}, "
                         f"this version reads {PLAN_VERSION}; write the plan again")
    if missing := sorted(fields - set(document)):
        raise ValueError(f"{path}: not a plan (no {', '.join(missing)})")
    _whole(path, "seed", document["seed"], 0, 2**63 - 1)
    rounds = _whole(path, "rounds", document["rounds"], 1, MAX_ROUNDS)
    _whole(path, "frames_per_round", document["frames_per_round"], 1, MAX_FRAMES_PER_ROUND)
    listed = document["test_videos"]
    if not isinstance(listed, list):
        raise ValueError(f"{path}: test_videos is not a list")
    if expected is not None and len(listed) != len(expected):
        raise ValueError(f"the plan {path} is for other test videos than these shards give "
                         f"({len(listed)} videos, not {len(expected)})")
    _entries(path, document, "test_videos", len(listed), {"key", "frames"})
    videos = []
    for entry in listed:
        if not isinstance(entry["key"], str) or len(entry["key"]) > 1000:
            raise ValueError(f"{path}: a test video's key is not a string")
        frames = _whole(path, f"frames of {entry['key'][:100]}", entry["frames"], 2,
                        MAX_VIDEO_FRAMES)
        videos.append(EvalVideo(entry["key"], frames))
    if expected is not None and sorted((v.key, v.frames) for v in videos) != \
            sorted((v.key, v.frames) for v in expected):
        raise ValueError(f"the plan {path} is for other test videos than these shards give "
                         "(keys or frame counts differ): pass another --plan path, or the "
                         "shards and --max-frames it was written for")
    _entries(path, document, "self_reconstruction", len(videos),
             {"key", "appearance", "driving"})
    _entries(path, document, "cross_reenactment", rounds * len(videos),
             {"round", "driver", "start", "length", "source", "source_frame"})
    return videos


def read_plan(path: Path, expected: list[EvalVideo] | None = None
              ) -> tuple[list[SelfPair], list[CrossDrive]]:
    """A plan written by ``write_plan``, checked against a fresh one from its own test list
    and seed (a hand-edited or other-version plan is refused: it would not repeat a run).
    Its fields, types and sizes are checked first (``MAX_ROUNDS`` and the others, and with
    ``expected`` its test videos against those given): every refusal is a one-line
    ValueError naming ``path``."""
    path = Path(path)
    if path.stat().st_size > MAX_PLAN_BYTES:
        raise ValueError(f"{path}: {path.stat().st_size} bytes, more than a plan "
                         f"({MAX_PLAN_BYTES}); write the plan again")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as err:  # not UTF-8, not JSON, nested too deep
        raise ValueError(f"{path}: not a plan (not JSON: {str(err).splitlines()[0][:200]})"
                         ) from None
    videos = _checked(path, document, expected)
    pairs = self_reconstruction(videos)
    drives = cross_reenactment(videos, document["rounds"], document["frames_per_round"],
                               document["seed"])
    stored_pairs = [SelfPair(p["key"], p["appearance"], _frames(p["driving"]))
                    for p in document["self_reconstruction"]]
    if stored_pairs != pairs or [CrossDrive(**d) for d in document["cross_reenactment"]] \
            != drives:
        raise ValueError(f"{path}: its frames are not the ones its test list and seed give; "
                         "write the plan again instead of editing it")
    return pairs, drives


def _frames(value: object) -> tuple:
    return tuple(value) if isinstance(value, list) else ()
