"""The curation funnel: where the hours go, filter by filter (paper, appendix A.1).

For each video, every frame is either kept (inside a segment), dropped by its first failing
filter, or passes every filter but sits in a run too short to make a clip (``short_run``). So
``input = kept + sum(first-failing drops)`` exactly; ``any`` counts a frame once per filter it
fails, which shows what each filter would cost on its own. Funnels of videos add up with ``+``
(datatrove's mergeable stats), so a corpus is summed one video at a time in bounded memory.

Under thresholds that follow instructions (the ``instruct`` preset, paper appendix E) a clip is
the action after an instruction cue instead of a run of passing frames
(``gaia.filters.instruct.actions``): frames then drop for ``no_instruction``,
``short_action`` or ``late_action`` in ``short_run``'s place, and the funnel also counts each
cue's outcome (``cues``) and each video's timed-text sidecar state (``sidecars``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gaia.filters.base import KEPT, Measures, code, reasons
from gaia.filters.instruct.actions import NO_INSTRUCTION, Action, plan_actions
from gaia.filters.segments import Segment, find_segments, frame_durations
from gaia.filters.thresholds import CurationThresholds, apply_filters, first_reasons
from gaia.schemas.cues import VideoCues

SHORT_RUN = code("short_run")


def _zeros() -> np.ndarray:
    return np.zeros(len(reasons()), np.float64)


def _add_counts(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {key: a.get(key, 0) + b.get(key, 0) for key in sorted(a.keys() | b.keys())}


def _sum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two per-reason arrays added; the shorter one was made before a filter registered."""
    if len(a) != len(b):
        a, b = (np.pad(x, (0, max(len(a), len(b)) - len(x))) for x in (a, b))
    return a + b


@dataclass
class SourceTotals:
    input_s: float = 0.0
    kept_s: float = 0.0
    clips: int = 0
    videos: int = 0

    def __add__(self, other: SourceTotals) -> SourceTotals:
        return SourceTotals(self.input_s + other.input_s, self.kept_s + other.kept_s,
                            self.clips + other.clips, self.videos + other.videos)


@dataclass
class Funnel:
    """Seconds and frames in, dropped (first failing and any failing reason), kept."""

    videos: int = 0
    input_frames: int = 0
    input_s: float = 0.0
    kept_frames: int = 0
    kept_s: float = 0.0
    clips: int = 0
    # Indexed by reason code (gaia.filters.base.reasons()); index 0 (kept) stays 0.
    first_s: np.ndarray = field(default_factory=_zeros)
    first_frames: np.ndarray = field(default_factory=_zeros)
    any_s: np.ndarray = field(default_factory=_zeros)
    any_frames: np.ndarray = field(default_factory=_zeros)
    by_source: dict[str, SourceTotals] = field(default_factory=dict)
    # Only under thresholds that follow instructions (module docstring), else empty: per cue
    # outcome ("clip" or why not) a count, and per sidecar state ("ok", "none", ...) videos.
    cues: dict[str, int] = field(default_factory=dict)
    sidecars: dict[str, int] = field(default_factory=dict)

    def __add__(self, other: Funnel) -> Funnel:
        sources = dict(self.by_source)
        for name, totals in other.by_source.items():
            sources[name] = sources.get(name, SourceTotals()) + totals
        return Funnel(
            videos=self.videos + other.videos,
            input_frames=self.input_frames + other.input_frames,
            input_s=self.input_s + other.input_s,
            kept_frames=self.kept_frames + other.kept_frames,
            kept_s=self.kept_s + other.kept_s,
            clips=self.clips + other.clips,
            first_s=_sum(self.first_s, other.first_s),
            first_frames=_sum(self.first_frames, other.first_frames),
            any_s=_sum(self.any_s, other.any_s),
            any_frames=_sum(self.any_frames, other.any_frames),
            by_source=sources,
            cues=_add_counts(self.cues, other.cues),
            sidecars=_add_counts(self.sidecars, other.sidecars),
        )

    def dropped(self, values: np.ndarray, scale: float = 1.0, integer: bool = False) -> dict:
        """``{reason: value}`` for every reason with a non-zero value."""
        names = reasons()
        return {names[i]: (int(v) if integer else float(v) * scale)
                for i, v in enumerate(values) if i != KEPT and v}

    def to_json(self) -> dict:
        hours = 1 / 3600
        out = {
            "videos": self.videos,
            "input_hours": self.input_s * hours,
            "input_frames": self.input_frames,
            "kept_hours": self.kept_s * hours,
            "kept_frames": self.kept_frames,
            "clips": self.clips,
            "dropped_hours_first": self.dropped(self.first_s, hours),
            "dropped_hours_any": self.dropped(self.any_s, hours),
            "dropped_frames_first": self.dropped(self.first_frames, integer=True),
            "dropped_frames_any": self.dropped(self.any_frames, integer=True),
            "by_source": {
                name: {"videos": t.videos, "input_hours": t.input_s * hours,
                       "kept_hours": t.kept_s * hours, "clips": t.clips}
                for name, t in sorted(self.by_source.items())
            },
        }
        if self.cues or self.sidecars:  # thresholds that follow instructions
            out["cues"] = {"input": sum(self.cues.values()), "clips": self.cues.get("clip", 0),
                           "dropped": {k: v for k, v in self.cues.items() if k != "clip"}}
            out["sidecars"] = dict(self.sidecars)
        return out


@dataclass(frozen=True)
class VideoDecision:
    """One video's outcome: its clips, and per frame the code of why it was dropped (0: kept);
    under thresholds that follow instructions, ``actions[i]`` is the instruction clip ``i``
    follows (else empty)."""

    segments: list[Segment]
    reasons: np.ndarray
    funnel: Funnel
    actions: tuple[Action, ...] = ()


def decide_video(measures: Measures, fps: float, source: str,
                 thresholds: CurationThresholds, cues: VideoCues | None = None
                 ) -> VideoDecision:
    """Filter and segment one video's frames; the basis of both tune and extract.

    ``cues``: the video's timed text (``videos.parquet``), read only when ``thresholds``
    follow instructions; then None (a video measured before cues were read) raises
    ``gaia.filters.instruct.actions.NoCueData``."""
    times = np.asarray(measures["time_s"], np.float64)
    n = len(times)
    durations = frame_durations(times, fps)
    verdicts = apply_filters(measures, thresholds)
    first = first_reasons(verdicts, n)
    actions: tuple[Action, ...] = ()
    if thresholds.instructions.enabled:
        passing = first == KEPT
        plan = plan_actions(times, durations, passing, cues, thresholds.instructions)
        segments, actions = plan.segments, plan.actions
        # Outside every window comes first; inside, a filter's reason before the action's.
        structural_first = (plan.reasons == NO_INSTRUCTION) | passing
        structural = np.where(structural_first, plan.reasons, KEPT).astype(np.uint8)
        first = np.where(structural_first, plan.reasons, first).astype(np.uint8)
        in_segment = first == KEPT  # exactly the clips' frames
    else:
        segments = find_segments(first == KEPT, times, fps, thresholds.segments, durations)
        in_segment = np.zeros(n, bool)
        for segment in segments:
            in_segment[segment.start:segment.stop] = True
        first[(first == KEPT) & ~in_segment] = SHORT_RUN
        structural = np.where(first == SHORT_RUN, SHORT_RUN, KEPT).astype(np.uint8)

    size = len(reasons())
    funnel = Funnel(
        videos=1, input_frames=n, input_s=float(durations.sum()),
        kept_frames=int(in_segment.sum()), kept_s=float(durations[in_segment].sum()),
        clips=len(segments),
        first_s=np.bincount(first, weights=durations, minlength=size),
        first_frames=np.bincount(first, minlength=size).astype(np.float64),
    )
    funnel.first_s[KEPT] = funnel.first_frames[KEPT] = 0.0
    every = [verdict.reasons for verdict in verdicts.values()]
    every.append(structural)
    for verdict in every:
        dropped = np.flatnonzero(verdict)  # usually few: count only those
        codes = verdict[dropped]
        funnel.any_s += np.bincount(codes, weights=durations[dropped], minlength=size)
        funnel.any_frames += np.bincount(codes, minlength=size)
    funnel.any_s[KEPT] = funnel.any_frames[KEPT] = 0.0
    funnel.by_source[source] = SourceTotals(funnel.input_s, funnel.kept_s, len(segments), 1)
    if thresholds.instructions.enabled:
        funnel.cues = dict(sorted(plan.cues.items()))
        funnel.sidecars = {cues.status: 1}
    return VideoDecision(segments, first, funnel, actions)
