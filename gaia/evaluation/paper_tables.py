"""The layouts of GAIA's result tables (arXiv 2311.15230: table 2, video-driven; table 3,
speech-driven) and the rows the paper prints beside ours.

``PAPER_ROWS`` holds the numbers as printed, one dict per method, with ``None`` where a number
has not been transcribed. This build had no copy of the paper's tables to read them from (the
offline references it could search hold the paper's opening pages only), so every value is
``None`` and the report says so; the numbers are never estimated. To fill them, copy each
value from the paper's PDF into the rows below, with the table's number in ``source``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    key: str  # the metric's key in our results, "section.metric"
    label: str
    higher_is_better: bool

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"


@dataclass(frozen=True)
class TableLayout:
    number: int
    caption: str
    groups: tuple[tuple[str, tuple[Column, ...]], ...]

    @property
    def columns(self) -> tuple[Column, ...]:
        return tuple(c for _, cols in self.groups for c in cols)


VIDEO_DRIVEN = TableLayout(2, "Video-driven results: self-reconstruction and cross-reenactment", (
    ("Self-reconstruction", (
        Column("self_reconstruction.l1", "L1", False),
        Column("self_reconstruction.psnr", "PSNR", True),
        Column("self_reconstruction.lpips", "LPIPS", False),
        Column("self_reconstruction.akd", "AKD", False),
        Column("self_reconstruction.msi", "MSI", True))),
    ("Cross-reenactment", (
        Column("cross_reenactment.fid", "FID", False),
        Column("cross_reenactment.akd", "AKD", False),
        Column("cross_reenactment.msi", "MSI", True))),
))

SPEECH_DRIVEN = TableLayout(3, "Speech-driven results", (
    ("Objective", (
        Column("metrics.sync_d", "Sync-D", False),
        Column("metrics.sync_c", "Sync-C", True),
        Column("metrics.msi", "MSI", True),
        Column("metrics.fid", "FID", False))),
))

NOT_TRANSCRIBED = ("the paper's printed values are not transcribed in this build "
                   "(gaia/evaluation/paper_tables.py says why and how to add them)")

PAPER_ROWS: dict[int, list[dict]] = {
    2: [{"method": name, "source": "GAIA table 2", "values": {}}
        for name in ("FOMM", "HeadGAN", "face-vid2vid", "GAIA")],
    3: [{"method": name, "source": "GAIA table 3", "values": {}}
        for name in ("MakeItTalk", "Audio2Head", "SadTalker", "GAIA")],
}


def layout(kind: str) -> TableLayout:
    return {"vae": VIDEO_DRIVEN, "s2m": SPEECH_DRIVEN}[kind]


def lookup(metrics: dict, key: str):
    """``metrics["a"]["b"]`` for ``"a.b"``; a summary dict gives its mean; None if absent."""
    value = metrics
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, dict):
        value = value.get("mean")
    return value
