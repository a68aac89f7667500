"""The action clip each instruction gives (paper, appendix E), inside ``decide_video``.

GAIA pairs each instruction spoken off-screen with "the corresponding video clip of each
action", matched by timestamps. Here, for each usable cue that is an instruction
(``gaia.filters.instruct.select``), in time order (``gaia.filters.instruct.rules`` has the
why of each rule):

1. the action window runs from the cue's end for ``window_s``, cut short at the next usable
   cue's start; its frames are those shown wholly inside it;
2. the clip is the run of frames passing every per-frame filter that begins within
   ``grace_s`` of the window's opening, up to the first failing frame or the window's end;
3. a clip shorter than ``min_s`` is no action.

Per frame (the funnel's reasons, first failing):

- ``no_instruction``: outside every instruction's action window. It comes before every
  filter: such a frame could never be part of a clip, whatever the filters say of it;
- inside a window, a frame failing a filter keeps that filter's reason;
- ``short_action``: passes every filter, but its run (the cue's action) is under ``min_s``;
- ``late_action``: passes every filter inside a window but is not the cue's action (after the
  action ended, or in a run that began past the grace).

Per cue, exactly one outcome (the funnel's ``cues``): ``clip``; the reason it was dropped when
read (``gaia.schemas.cues.CUE_REASONS``); ``not_instruction``; ``no_action`` (no passing frame
within the grace: nobody acted, or the window is empty or past the video's end);
``short_action``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

import gaia.filters.registry  # noqa: F401  (the filters' reasons first: codes never move)
from gaia.filters.base import KEPT, add_reasons, code
from gaia.filters.instruct.rules import InstructionRules
from gaia.filters.instruct.select import is_instruction
from gaia.filters.segments import Segment
from gaia.schemas.cues import VideoCues

FRAME_REASONS = ("no_instruction", "short_action", "late_action")
add_reasons(FRAME_REASONS)
NO_INSTRUCTION, SHORT_ACTION, LATE_ACTION = (code(r) for r in FRAME_REASONS)
CLIP = "clip"  # the cue outcome of a cue that gave a clip
EPS = 1e-6  # seconds: times are float sums of frame durations


class NoCueData(ValueError):
    """Clips that follow instructions were asked of a video measured without its cues."""


@dataclass(frozen=True)
class Action:
    """The instruction a clip follows: its cue (index among the video's stored cues, cleaned
    text, times in the source) and where its action window closed."""

    cue_index: int
    text: str
    cue_start_s: float
    cue_end_s: float
    window_end_s: float


@dataclass(frozen=True)
class ActionPlan:
    """One video's action clips (``segments``, each following ``actions[i]``), per frame
    ``KEPT`` or the structural reason (module docstring), and per cue outcome a count."""

    segments: list[Segment]
    actions: tuple[Action, ...]
    reasons: np.ndarray
    cues: Counter


def plan_actions(times: np.ndarray, durations: np.ndarray, passing: np.ndarray,
                 video: VideoCues | None, rules: InstructionRules) -> ActionPlan:
    """The action clips of one video (module docstring). ``passing``: per frame, whether it
    passes every filter. ``NoCueData`` when ``video`` is None (measured before cues)."""
    if video is None:
        raise NoCueData("this video was measured before gaia read timed-text sidecars, so it "
                        "has no cues to follow: run `gaia curate measure` again with the same "
                        "inputs and --out (measured videos are not measured again; only their "
                        "sidecars are read)")
    times = np.asarray(times, np.float64)
    ends = times + np.asarray(durations, np.float64)
    frames = np.full(len(times), NO_INSTRUCTION, np.uint8)
    outcomes: Counter = Counter(cue.reason for cue in video.cues if not cue.usable)
    usable = sorted(((i, cue) for i, cue in enumerate(video.cues) if cue.usable),
                    key=lambda item: (item[1].start_s, item[1].end_s, item[0]))
    segments: list[Segment] = []
    actions: list[Action] = []
    last_end = -np.inf
    for k, (index, cue) in enumerate(usable):
        if cue.start_s < last_end - EPS:  # the reader drops these; a hand-made table may not
            outcomes["overlapping_cue"] += 1
            continue
        last_end = cue.end_s
        if not is_instruction(cue.text, rules):
            outcomes["not_instruction"] += 1
            continue
        closes = cue.end_s + rules.window_s
        after = k + 1  # the next cue that does not overlap this one (overlapping ones are out)
        while after < len(usable) and usable[after][1].start_s < cue.end_s - EPS:
            after += 1
        if after < len(usable):
            closes = min(closes, usable[after][1].start_s)
        outcome = _action(times, ends, passing, frames, cue.end_s, closes, rules)
        outcomes[outcome if isinstance(outcome, str) else CLIP] += 1
        if isinstance(outcome, Segment):
            segments.append(outcome)
            actions.append(Action(index, cue.text, float(cue.start_s), float(cue.end_s),
                                  float(closes)))
    return ActionPlan(segments, tuple(actions), frames, outcomes)


def _action(times: np.ndarray, ends: np.ndarray, passing: np.ndarray, frames: np.ndarray,
            opens: float, closes: float, rules: InstructionRules) -> Segment | str:
    """The clip of one window (marking ``frames``), or the cue's outcome when there is none."""
    lo = int(np.searchsorted(times, opens - EPS, side="left"))
    hi = int(np.searchsorted(ends, closes + EPS, side="right"))
    if hi <= lo:
        return "no_action"
    frames[lo:hi] = LATE_ACTION  # passing frames in the window that are not the action
    inside = np.asarray(passing[lo:hi], bool)
    if not inside.any():
        return "no_action"
    start = lo + int(np.argmax(inside))
    if times[start] - opens > rules.grace_s + EPS:
        return "no_action"
    failing = np.flatnonzero(~inside[start - lo:])
    stop = start + int(failing[0]) if len(failing) else hi
    if ends[stop - 1] - times[start] + EPS < rules.min_s:
        frames[start:stop] = SHORT_ACTION
        return "short_action"
    frames[start:stop] = KEPT
    return Segment(start, stop, float(times[start]), float(ends[stop - 1]))
