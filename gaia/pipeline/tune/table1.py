"""GAIA's Table 1 (dataset statistics: per source, #IDs and hours raw and after filtering) on the
curation report and in ``gaia curate tune --table1``, the paper's rows beside this run's.

Hours come from the funnel (``Funnel.by_source``: every measured second in, the seconds kept in
clips out). #IDs are distinct people across the whole run, as the paper means them: run-wide
identities (``gaia.pipeline.identities``), counted once per source and once in the total
(``tune.table1_ids``). A run measured before face embeddings were stored has none: its cells
say so rather than print a number that means something else.
"""

from __future__ import annotations

import html

from gaia.common.paper_numbers import TABLES
from gaia.filters.funnel import Funnel
from gaia.pipeline.tune.table1_ids import IdCounts

IDS_REASON = "n/a: no face embeddings"
IDS_NOTE = ("#IDs: this run's videos were measured before gaia stored face embeddings, so "
            "people cannot be counted across videos; measure again into a new --out to count "
            "them.")
IDS_DONE = ("#IDs: distinct people across the run (run-wide identities of dlib face "
            "embeddings); filtered: the people of the clips kept, each clip by its main face.")


def _hours(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.4g}"


def table1_rows(funnel: Funnel, ids: IdCounts | None) -> list[dict]:
    """This run's rows in the paper's layout: per source, then the total."""
    sources = sorted(funnel.by_source.items())
    rows = []
    for name, totals in [*sources, ("Total", None)]:
        rows.append({
            "source": name,
            "raw_ids": None if ids is None else (
                ids.raw.get(name, 0) if totals else ids.raw_total),
            "raw_hours": (totals.input_s if totals else sum(t.input_s for _, t in sources))
            / 3600,
            "filtered_ids": None if ids is None else (
                ids.kept.get(name, 0) if totals else ids.kept_total),
            "filtered_hours": (totals.kept_s if totals else sum(t.kept_s for _, t in sources))
            / 3600,
        })
    return rows


def table1_lines(funnel: Funnel, ids: IdCounts | None) -> list[str]:
    """Table 1 as text: the paper's rows, then this run's."""
    head = f"{'source':<24}{'raw #IDs':>10}{'raw h':>12}{'filt. #IDs':>12}{'filt. h':>12}"
    lines = ["== Table 1 (GAIA, arXiv 2311.15230): dataset statistics", head]
    for row in TABLES[1].rows:
        values = [float(v) for v in row.values]
        lines.append(f"{row.method + ' (paper)':<24}{values[0]:>10,.0f}{values[1]:>12,.0f}"
                     f"{values[2]:>12,.0f}{values[3]:>12,.0f}")
    for row in table1_rows(funnel, ids):
        raw = "n/a" if row["raw_ids"] is None else f"{row['raw_ids']:,}"
        kept = "n/a" if row["filtered_ids"] is None else f"{row['filtered_ids']:,}"
        lines.append(f"{row['source']:<24}{raw:>10}{_hours(row['raw_hours']):>12}{kept:>12}"
                     f"{_hours(row['filtered_hours']):>12}")
    lines.append(IDS_NOTE if ids is None else IDS_DONE)
    return lines


def table1_html(funnel: Funnel, ids: IdCounts | None = None) -> str:
    """The table as an HTML section: the paper's sources, then this run's per source and total."""
    paper = TABLES[1]
    head = "".join(f"<th>{html.escape(label)}</th>" for label in (
        "source", "raw #IDs", "raw hours", "filtered #IDs", "filtered hours"))
    rows = []
    for row in paper.rows:
        cells = "".join(f"<td>{_hours(float(v))}</td>" for v in row.values)
        rows.append(f"<tr><td>{html.escape(row.method)} <span class='muted'>(paper)</span></td>"
                    f"{cells}</tr>")

    def count(value: int | None) -> str:
        if value is None:
            return f"<td class='muted'>{html.escape(IDS_REASON)}</td>"
        return f"<td>{value:,}</td>"

    for row in table1_rows(funnel, ids):
        rows.append(f"<tr><td><b>{html.escape(row['source'])}</b> <span class='muted'>(this "
                    f"run)</span></td>{count(row['raw_ids'])}<td>{_hours(row['raw_hours'])}"
                    f"</td>{count(row['filtered_ids'])}<td>{_hours(row['filtered_hours'])}"
                    "</td></tr>")
    note = IDS_NOTE if ids is None else IDS_DONE
    return (f"<h2>Table 1: {html.escape(paper.title)}</h2><p class='muted'>GAIA (arXiv "
            "2311.15230) table 1 above, this run below, hours after this report's thresholds."
            f"</p><table><tr>{head}</tr>{''.join(rows)}</table>"
            f"<p class='muted'>{html.escape(note)}</p>")
