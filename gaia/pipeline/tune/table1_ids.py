"""#IDs for the paper's Table 1: distinct people per source, raw and after the filters.

Raw: the run-wide identities of every person track of the source's measured videos. Filtered:
those of the clips the thresholds keep, each clip counted by its main face
(``clip_identity.main_person``). A video with one person keeps that person whenever it keeps a
clip, which the fused tune pass tells per video (``clips_by_video``); only a video with several
people and kept clips is decided again frame by frame, to see whose clips they are. A person
is counted once per source and once in the total, however many videos show them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gaia.filters.funnel import decide_video
from gaia.filters.thresholds import CurationThresholds
from gaia.pipeline.identities.clip_identity import main_person
from gaia.pipeline.identities.table import ensure_identities
from gaia.pipeline.measures import decision_columns, measured_videos, read_measures
from gaia.pipeline.run_dir import RunDir


@dataclass(frozen=True)
class IdCounts:
    """Distinct identities per source and in total, raw and kept."""

    raw: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)
    raw_total: int = 0
    kept_total: int = 0

    def to_json(self) -> dict:
        return {"raw": self.raw, "kept": self.kept, "raw_total": self.raw_total,
                "kept_total": self.kept_total}


def clips_per_video(run_root: Path, thresholds: CurationThresholds) -> dict[str, int]:
    """Each measured video's kept clips under ``thresholds``: the compact table's pass, or the
    reference path where a threshold is off the table's grid."""
    from gaia.pipeline.tune.fused import OffGrid
    from gaia.pipeline.tune.table import table_funnels

    clips: dict[str, int] = {}
    try:
        table_funnels(Path(run_root), [thresholds], clips_by_video=clips)
    except OffGrid:
        run = RunDir(Path(run_root))
        for row in _videos(run_root, thresholds.instructions.enabled):
            decision = decide_video(read_measures(run, row["video_id"]), row["fps"],
                                    row["source"], thresholds, row["cues"])
            clips[row["video_id"]] = len(decision.segments)
    return clips


def _videos(run_root: Path, cues: bool) -> list[dict]:
    return measured_videos(RunDir(Path(run_root)), cues)  # cues: for the instruct preset


def count_identities(run_root: Path, thresholds: CurationThresholds,
                     clips: dict[str, int] | None = None,
                     log: Callable[[str], None] = lambda _: None) -> IdCounts | None:
    """Table 1's #IDs (module docstring); None when the run has no run-wide identities."""
    people = ensure_identities(Path(run_root), log)
    if people is None:
        return None
    clips = clips_per_video(run_root, thresholds) if clips is None else clips
    run = RunDir(Path(run_root))
    by_video: dict[str, list[int]] = {}
    for (video_id, _person), identity in sorted(people.items()):
        by_video.setdefault(video_id, []).append(identity)
    raw: dict[str, set[int]] = {}
    kept: dict[str, set[int]] = {}
    for row in _videos(run_root, thresholds.instructions.enabled):
        ids = by_video.get(row["video_id"], [])
        raw.setdefault(row["source"], set()).update(ids)
        if not ids or not clips.get(row["video_id"]):
            continue
        if len(ids) == 1:
            kept.setdefault(row["source"], set()).add(ids[0])
            continue
        measures = read_measures(run, row["video_id"], decision_columns(["person"]))
        persons = measures["person"]
        for segment in decide_video(measures, row["fps"], row["source"], thresholds,
                                    row["cues"]).segments:
            person = main_person(persons, segment)
            if person is not None and (row["video_id"], person) in people:
                kept.setdefault(row["source"], set()).add(people[(row["video_id"], person)])
    return IdCounts(raw={s: len(v) for s, v in sorted(raw.items())},
                    kept={s: len(v) for s, v in sorted(kept.items())},
                    raw_total=len(set().union(*raw.values())) if raw else 0,
                    kept_total=len(set().union(*kept.values())) if kept else 0)
