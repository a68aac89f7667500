"""The layouts of GAIA's result tables 2-9 (arXiv 2311.15230) with the paper's rows
(``common.paper_numbers``) beside ours, cell by cell.

A layout says, per column, where our value is in an evaluation's JSON (``key``) and what
computing it takes (``needs``: weights, the source videos, a detector). A cell we do not fill
carries the reason, read from the evaluation itself (its notes and provenance): the subjective
columns are human ratings we do not collect, a metric without its weights says which option
gives them. Tables 3 and 8 add the real videos' row (the paper's Sync-D 8.548 from their
captions; ours from the test clips' real frames and audio). Table 7 is table 2's layout with
table 7's rows (the 80M VAE trained on VoxCeleb2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from gaia.common.paper_numbers import REAL_VIDEO, TABLES

RATINGS = "not rated: human ratings"
NOT_IN_PAPER = "not in the paper"
REASONS = {
    "ratings": RATINGS,
    "inception": "n/a: no Inception weights (--inception-weights)",
    "lpips": "n/a: no LPIPS weights (--alex-weights or --vgg-weights)",
    "detector": "n/a: no landmark detector",
    "videos": "n/a: no source video shards (--videos)",
    "syncnet": "n/a: no SyncNet weights (--syncnet-weights)",
    "run": "n/a: not in this JSON (evaluated before run facts were kept)",
    "fomm_akd": "n/a: this JSON has the Euclidean AKD only (evaluated before FOMM's)",
}
NO_VALUE = "n/a: no clip gave a value (see the notes)"


@dataclass(frozen=True)
class Column:
    """One column: the paper's id for it (``paper_numbers``), its header, where our value is
    (``"a.b"`` in the evaluation's JSON; a summary dict gives its mean) and what it needs;
    ``real_key`` is the same measure on the real videos (tables 3 and 8), ``real_reason``
    why there is none."""

    id: str
    label: str
    higher_is_better: bool | None
    key: str | None = None
    needs: tuple[str, ...] = ()
    fmt: str = "metric"  # "metric" (3 decimals, as printed), "params" or "hours"
    real_key: str | None = None
    real_reason: str = "n/a: not a real-video measure"

    @property
    def arrow(self) -> str:
        return {True: "↑", False: "↓", None: ""}[self.higher_is_better]


@dataclass(frozen=True)
class TableLayout:
    number: int
    caption: str
    kind: str  # the evaluation our rows come from: "vae" or "s2m"
    groups: tuple[tuple[str, tuple[Column, ...]], ...]
    real_row: bool = False

    @property
    def columns(self) -> tuple[Column, ...]:
        return tuple(c for _, cols in self.groups for c in cols)


def _video_driven(number: int, caption: str) -> TableLayout:
    own, cross = "self_reconstruction.", "cross_reenactment."
    landmarks = ("detector",)
    akd = ("detector", "fomm_akd")
    return TableLayout(number, caption, "vae", (
        ("Self-reconstruction", (
            Column("sr_fid", "FID", False, own + "fid", ("inception",)),
            Column("sr_lpips", "LPIPS", False, own + "lpips", ("lpips",)),
            Column("sr_psnr", "PSNR", True, own + "psnr"),
            Column("sr_akd", "AKD", False, own + "akd", akd),
            Column("sr_msi", "MSI", True, own + "msi", landmarks))),
        ("Cross-reenactment", (
            Column("cr_fid", "FID", False, cross + "fid", ("inception",)),
            Column("cr_akd", "AKD", False, cross + "akd", akd),
            Column("cr_msi", "MSI", True, cross + "msi", landmarks))),
        ("Ours only", (
            Column("sr_l1", "SR L1", False, own + "l1"),
            Column("sr_akd_euclidean", "SR AKD (Euclidean)", False, own + "akd_euclidean",
                   landmarks),
            Column("cr_akd_euclidean", "CR AKD (Euclidean)", False,
                   cross + "akd_euclidean", landmarks),
            Column("sr_msi_real", "SR MSI of the real frames", True, own + "msi_real",
                   landmarks))),
    ))


def _speech_driven(number: int, caption: str) -> TableLayout:
    frames = ("videos", "detector")
    subjective = tuple(Column(i, label, True, needs=("ratings",), real_reason=RATINGS)
                       for i, label in (("nat", "Nat."), ("lip", "Lip."), ("jit", "Jit."),
                                        ("vis", "Vis."), ("mot", "Mot.")))
    return TableLayout(number, caption, "s2m", (
        ("Subjective evaluation", subjective),
        ("Objective evaluation", (
            Column("sync_d", "Sync-D", False, "metrics.sync_d", (*frames, "syncnet"),
                   real_key="metrics.sync_d_real"),
            Column("msi", "MSI", True, "metrics.msi", frames, real_key="metrics.msi_real"),
            Column("fid", "FID", False, "metrics.fid", (*frames, "inception"),
                   real_reason="n/a: the real frames are FID's reference"))),
        ("Ours only", (
            Column("sync_c", "Sync-C", True, "metrics.sync_c", (*frames, "syncnet"),
                   real_key="metrics.sync_c_real"),)),
    ), real_row=True)


def _scaling(number: int, caption: str, kind: str, metric: Column) -> TableLayout:
    return TableLayout(number, caption, kind, (("", (
        Column("params", "#Params", None, "run.parameters", ("run",), fmt="params"),
        Column("hours", "#Hours", None, "run.train_hours", ("run", "hours"), fmt="hours"),
        metric)),))


_S2M_SYNC_D = Column("sync_d", "Sync-D", False, "metrics.sync_d",
                     ("videos", "detector", "syncnet"))
_S2M_MSI = Column("msi", "MSI", True, "metrics.msi", ("videos", "detector"))
_S2M_FID = Column("fid", "FID", False, "metrics.fid", ("videos", "detector", "inception"))

LAYOUTS: dict[int, TableLayout] = {t.number: t for t in (
    _video_driven(2, "The VAE against video-driven baselines: self-reconstruction and "
                     "cross-reenactment"),
    _speech_driven(3, "Speech-driven comparison"),
    _scaling(4, "Scaling the VAE", "vae",
             Column("sr_fid", "FID (self-reconstruction)", False,
                    "self_reconstruction.fid", ("inception",))),
    _scaling(5, "Scaling the diffusion model", "s2m", _S2M_SYNC_D),
    TableLayout(6, "Ablations", "s2m", (("", (
        _S2M_SYNC_D, _S2M_MSI, _S2M_FID, Column("mot", "Mot.", True, needs=("ratings",)))),)),
    _video_driven(7, "The small VAE trained on VoxCeleb2 (the paper's 80M; table 2's "
                     "layout)"),
    _speech_driven(8, "Full speech-driven comparison (PC-AVS and PD-FGC added; PD-FGC "
                      "driven by the ground-truth video)"),
    TableLayout(9, "Conditioning ablations", "s2m", (("", (_S2M_SYNC_D, _S2M_MSI, _S2M_FID)),)),
)}

# The tables each report page shows, in order.
PAGES = {"vae": (2, 7, 4), "s2m": (3, 8, 5), "ablation": (6, 9, 5, 4)}


def lookup(metrics: dict, key: str):
    """``metrics["a"]["b"]`` for ``"a.b"``; a summary dict gives its mean; None if absent."""
    value = metrics
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, dict):
        value = value.get("mean")
    return value


def _lacks(metrics: dict, need: str) -> bool:
    notes = metrics.get("notes") or []
    if need == "ratings":
        return True
    if need == "inception":
        return any(n.startswith("FID") for n in notes)
    if need == "lpips":
        return any(n.startswith("LPIPS") for n in notes)
    if need == "syncnet":
        return any(n.startswith("Sync") for n in notes)
    if need == "detector":
        return any("no landmark detector" in n for n in notes)
    if need == "videos":
        return not (metrics.get("provenance") or {}).get("videos")
    if need == "fomm_akd":
        return any(n.startswith("AKD (FOMM's)") for n in notes)
    if need == "run":
        return not isinstance(metrics.get("run"), dict)
    return False


def missing_reason(metrics: dict, column: Column) -> str:
    """Why our value of ``column`` is absent from ``metrics``: the first need it lacks."""
    for need in column.needs:
        if need == "hours":
            note = (metrics.get("run") or {}).get("train_hours_note")
            if note:
                return f"n/a: {note}"
        elif _lacks(metrics, need):
            return REASONS[need]
    return NO_VALUE


def format_value(value, fmt: str = "metric") -> str:
    """A number as the paper prints it: 3 decimals; sizes as 80M / 1.7B; hours as 0.5K."""
    value = float(value)
    if fmt == "params":
        for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
            if value >= scale:
                return f"{value / scale:.3g}{suffix}"
        return f"{value:.0f}"
    if fmt == "hours":
        return f"{value / 1000:g}K" if value >= 100 else f"{value:.3g}"
    if fmt == "count":
        return f"{value:,.0f}"
    return f"{value:.3f}"


def _cell(value, fmt: str, reason: str) -> dict:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return {"text": reason, "missing": True}
    return {"text": format_value(value, fmt), "missing": False}


def build_table(number: int, runs: list[tuple[str, str, dict]]) -> dict:
    """Table ``number`` laid out for the report: its header, the paper's rows (printed and
    caption rows) and one row per run (``label``, ``detail``, evaluation JSON; tables 3 and
    8 add each run's real-video row), every cell ``{"text", "missing"}``."""
    layout, paper = LAYOUTS[number], TABLES[number]
    rows = []
    for row in paper.rows + paper.caption_rows:
        printed = dict(zip(paper.columns, row.values, strict=True))
        caption = row.method == REAL_VIDEO
        cells = [_cell(printed.get(c.id), c.fmt,
                       "not printed: the caption gives Sync-D only" if caption and
                       c.id in printed else NOT_IN_PAPER) for c in layout.columns]
        rows.append({"kind": "paper", "method": row.method, "detail": paper.source(row.method),
                     "cells": cells})
    for label, detail, metrics in runs:
        cells = [_cell(lookup(metrics, c.key) if c.key else None, c.fmt,
                       missing_reason(metrics, c)) for c in layout.columns]
        rows.append({"kind": "ours", "method": label, "detail": detail, "cells": cells})
        if layout.real_row:
            # The real frames need no detector of ours: their landmarks are curation's.
            cells = [_cell(lookup(metrics, c.real_key), c.fmt, missing_reason(
                         metrics, replace(c, needs=tuple(n for n in c.needs if n != "detector"))))
                     if c.real_key else {"text": c.real_reason, "missing": True}
                     for c in layout.columns]
            rows.append({"kind": "ours-real", "method": f"{label}: {REAL_VIDEO.lower()}",
                         "detail": "the evaluated clips' real frames and audio",
                         "cells": cells})
    return {"number": number, "caption": layout.caption,
            "groups": [(name, len(columns)) for name, columns in layout.groups],
            "columns": [{"label": c.label, "arrow": c.arrow} for c in layout.columns],
            "rows": rows}
