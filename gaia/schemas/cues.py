"""Timed text as a run stores it: a video's cues in ``videos.parquet`` (paper, appendix E).

GAIA's text-instructed model learns from pairs of an instruction spoken off-screen ("please
smile", "turn your head left") and the action that follows it, matched by timestamps. A video
``X.mp4`` may have a timed-text sidecar beside it (``X.cues.json``, ``X.srt`` or ``X.vtt``);
``gaia curate measure`` reads it once (``gaia.pipeline.instructions``) and stores its cues in
the video's status record, hence in three columns of ``videos.parquet`` (``CUE_FIELDS``), so
that tune and extract never go back to the inputs:

- ``timed_text``: the sidecar's file name (``""``: the video had none);
- ``timed_text_status``: ``ok``, ``none`` or why the sidecar gave no cues (``SIDECAR_REASONS``);
- ``cues``: every cue read, each with ``reason`` ``""`` (usable) or why it was dropped when
  read (``CUE_REASONS``): the usable ones in time order, then the others.

A null ``timed_text_status`` means the video was measured before gaia read sidecars; measuring
the same inputs into the same run again reads them without measuring the videos again.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa

# Why a sidecar gave no cues at all (the video is measured as usual either way).
SIDECAR_REASONS: dict[str, str] = {
    "sidecar_too_large": "larger than the size cap (2 MiB): not read",
    "sidecar_encoding": "neither UTF-8 (with or without a BOM) nor UTF-16 with a BOM",
    "sidecar_format": "not the format its name says (no WEBVTT header, JSON not a list, ...)",
    "sidecar_too_many_cues": "more cues than one video can use (10,000): not read",
    "sidecar_unreadable": "could not be read (permissions, a folder, a remote error)",
}
SIDECAR_STATES = ("ok", "none", *SIDECAR_REASONS)

# Why one cue of a readable sidecar is dropped when read (``reason`` of a stored cue).
CUE_REASONS: dict[str, str] = {
    "bad_cue": "an entry with no timing line, or a JSON item that is not a cue object",
    "bad_time": "a time that is missing, not a number, negative, or an end not after the start",
    "empty_text": "no text left once markup is stripped",
    "long_text": "longer than 500 characters once markup is stripped (not an instruction)",
    "overlapping_cue": "starts before the previous cue (in time order) ends: the later is dropped",
}

MAX_CUES = 10_000  # per sidecar; more is refused whole (``sidecar_too_many_cues``)

CUE_TYPE = pa.struct([
    pa.field("start_s", pa.float64()),
    pa.field("end_s", pa.float64()),
    pa.field("text", pa.string()),
    pa.field("reason", pa.string()),
])

# Columns of ``videos.parquet`` (``gaia.schemas.videos``): name, type, doc.
CUE_FIELDS: list[tuple[str, pa.DataType, str]] = [
    ("timed_text", pa.string(),
     "the timed-text sidecar read beside the video (X.cues.json, X.srt or X.vtt; '' none); "
     "null: measured before gaia read sidecars"),
    ("timed_text_status", pa.string(),
     "ok, none, or why the sidecar gave no cues (schemas.cues.SIDECAR_REASONS); null: not read"),
    ("cues", pa.list_(CUE_TYPE),
     "every cue of the sidecar (usable ones first, in time order): seconds, cleaned text, "
     "and '' or why it was dropped when read (schemas.cues.CUE_REASONS)"),
]
CUE_COLUMNS = tuple(name for name, _, _ in CUE_FIELDS)


@dataclass(frozen=True)
class Cue:
    """One cue as stored: seconds in the video (None where the sidecar's time was unusable),
    the text with markup stripped, and ``reason``: ``""`` when usable, else why not."""

    start_s: float | None
    end_s: float | None
    text: str
    reason: str = ""

    @property
    def usable(self) -> bool:
        return not self.reason

    def to_row(self) -> dict:
        return {"start_s": self.start_s, "end_s": self.end_s, "text": self.text,
                "reason": self.reason}


@dataclass(frozen=True)
class VideoCues:
    """A measured video's timed text: the sidecar's name, its state and its cues."""

    sidecar: str
    status: str
    cues: tuple[Cue, ...]


def _seconds(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def cues_from_rows(rows: Iterable[dict] | None) -> tuple[Cue, ...]:
    """Stored cue rows (``CUE_TYPE`` as Python values) as ``Cue`` values."""
    return tuple(Cue(_seconds(row.get("start_s")), _seconds(row.get("end_s")),
                     str(row.get("text") or ""), str(row.get("reason") or ""))
                 for row in rows or ())


def video_cues(row: dict) -> VideoCues | None:
    """A ``videos.parquet`` row's timed text; None when the row has no cue data (measured
    before gaia read sidecars)."""
    status = row.get("timed_text_status")
    if status is None:
        return None
    return VideoCues(str(row.get("timed_text") or ""), str(status),
                     cues_from_rows(row.get("cues")))
