"""GAIA's Table 1 (dataset statistics: per source, #IDs and hours raw and after filtering) on the
curation report, the paper's rows above this run's.

Hours come from the funnel (``Funnel.by_source``: every measured second in, the seconds kept in
clips out). #IDs in the paper's sense are distinct people across the whole corpus; this run
clusters people only inside each video (``videos.parquet``'s ``persons``), so the same speaker in
two videos would count twice: the cell says so rather than print a number that means something
else.
"""

from __future__ import annotations

import html

from gaia.common.paper_numbers import TABLES
from gaia.filters.funnel import Funnel

IDS_REASON = "n/a: not clustered across videos"
IDS_NOTE = ("#IDs: people are clustered inside each video only, not across the run, so the same "
            "speaker in two videos would count twice; a corpus-wide count is not measured.")


def _hours(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.4g}"


def table1_html(funnel: Funnel) -> str:
    """The table as an HTML section: the paper's sources, then this run's per source and total."""
    paper = TABLES[1]
    head = "".join(f"<th>{html.escape(label)}</th>" for label in (
        "source", "raw #IDs", "raw hours", "filtered #IDs", "filtered hours"))
    rows = []
    for row in paper.rows:
        cells = "".join(f"<td>{_hours(float(v))}</td>" for v in row.values)
        rows.append(f"<tr><td>{html.escape(row.method)} <span class='muted'>(paper)</span></td>"
                    f"{cells}</tr>")
    ids = f"<td class='muted'>{html.escape(IDS_REASON)}</td>"
    sources = sorted(funnel.by_source.items())
    total_in = sum(t.input_s for _, t in sources)
    total_kept = sum(t.kept_s for _, t in sources)
    for name, totals in [*sources, ("Total", None)]:
        seconds_in = totals.input_s if totals else total_in
        seconds_kept = totals.kept_s if totals else total_kept
        rows.append(f"<tr><td><b>{html.escape(name)}</b> <span class='muted'>(this run)</span>"
                    f"</td>{ids}<td>{_hours(seconds_in / 3600)}</td>{ids}"
                    f"<td>{_hours(seconds_kept / 3600)}</td></tr>")
    return (f"<h2>Table 1: {html.escape(paper.title)}</h2><p class='muted'>GAIA (arXiv "
            "2311.15230) table 1 above, this run below, hours after this report's thresholds."
            f"</p><table><tr>{head}</tr>{''.join(rows)}</table>"
            f"<p class='muted'>{html.escape(IDS_NOTE)}</p>")
