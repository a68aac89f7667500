"""The filters described for people, from their specs: ``curate tune --help`` and README's
filter table (``gaia.filters.registry``). README's table is checked against ``readme_table()``
by the tests; after changing a filter, rewrite it with

    python -m gaia.filters.describe --write README.md
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import textwrap
from pathlib import Path

from gaia.filters.instruct.actions import FRAME_REASONS
from gaia.filters.instruct.rules import InstructionRules
from gaia.filters.registry import filters
from gaia.filters.segments import SegmentRules
from gaia.filters.thresholds import available_presets, load_thresholds

BEGIN, END = "<!-- filters: begin (python -m gaia.filters.describe) -->", "<!-- filters: end -->"
SEGMENTS_RULE = ("it passes every filter but sits in a run shorter than `min_s` (runs longer than "
                 "`max_s` are split)")
# Appendix E: with instructions.enabled, clips follow instructions instead of segments.
INSTRUCTIONS_RULE = ("`enabled` (in the segments' place): the frame is outside every "
                     "instruction cue's action window (`window_s` from the cue's end, up to the "
                     "next cue), or passes every filter but is not the action: a run begun "
                     "within `grace_s` of the cue's end and lasting `min_s` (`mode`: which cues "
                     "are instructions)")
INSTRUCTION_KEYS = ("enabled", "mode", "window_s", "grace_s", "min_s")


def _options(thresholds: type) -> list[str]:
    return [f.name for f in dataclasses.fields(thresholds) if f.name != "enabled"]


def tune_help() -> str:
    """The filters, in the order they run, and their keys: the epilog of ``curate tune``."""
    lines = ["filters, in the order they run, and their keys (--set FILTER.KEY=VALUE); every "
             "filter also", "takes FILTER.enabled=true|false:"]
    rows = [(spec.name, spec.rule, _options(spec.thresholds)) for spec in filters()]
    rows.append(("segments", SEGMENTS_RULE, _options(SegmentRules)))
    for name, rule, options in rows:
        text = re.sub(r"`([^`]*)`", r"\1", rule)
        body = textwrap.wrap(f"{', '.join(options)}: drops a frame when {text}", 76)
        lines.append(f"  {name:<12} {body[0]}")
        lines += [" " * 15 + line for line in body[1:]]
    # Not a filter: said apart, after them (on in the instruct preset).
    text = re.sub(r"`([^`]*)`", r"\1", INSTRUCTIONS_RULE)
    lines += textwrap.wrap(f"instructions (appendix E), {', '.join(_options(InstructionRules))}"
                           f": drops a frame when instructions.{text}", 78)
    return "\n".join(lines) + "\n"


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)


def readme_table() -> str:
    """README's filter table: each filter's rule, reasons, and its keys under each preset."""
    presets = available_presets()
    loaded = [load_thresholds(name).to_dict() for name in presets]
    header = " / ".join(f"`{name}`" for name in presets)
    lines = [f"| filter (module) | drops a frame when | reason codes | keys ({header}) |",
             "|---|---|---|---|"]
    rows = [(spec.title, spec.run.__module__.rsplit(".", 1)[-1], spec.name, spec.rule,
             spec.reasons, _options(spec.thresholds)) for spec in filters()]
    rows.append(("segments", "segments", "segments", SEGMENTS_RULE, ("short_run",),
                 _options(SegmentRules)))
    for title, module, name, rule, reasons, options in rows:
        if name != "segments" and len({p[name]["enabled"] for p in loaded}) > 1:
            options = ["enabled", *options]  # said where a preset turns the filter off
        keys = ", ".join(f"`{key}` " + " / ".join(_value(p[name][key]) for p in loaded)
                         for key in options)
        codes = ", ".join(f"`{r}`" for r in reasons)
        lines.append(f"| {title} (`{module}.py`) | {rule.replace('|', chr(92) + '|')} | "
                     f"{codes} | {keys} |")
    rules = [load_thresholds(name).instructions.to_dict() for name in presets]
    keys = ", ".join(f"`{key}` " + " / ".join(_value(r[key]) for r in rules)
                     for key in INSTRUCTION_KEYS)
    codes = ", ".join(f"`{r}`" for r in FRAME_REASONS)
    lines.append(f"| instructions, appendix E (`instruct/actions.py`) | {INSTRUCTIONS_RULE} | "
                 f"{codes} | {keys} |")
    return "\n".join(lines) + "\n"


def rewrite(readme: Path) -> bool:
    """Put ``readme_table()`` between the markers of ``readme``; True if it changed."""
    text = readme.read_text(encoding="utf-8")
    start, stop = text.index(BEGIN) + len(BEGIN), text.index(END)
    new = text[:start] + "\n" + readme_table() + text[stop:]
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print (or --write into README) the table "
                                     "of filters derived from their specs.")
    parser.add_argument("--write", type=Path, metavar="README.md", default=None)
    args = parser.parse_args(argv)
    if args.write:
        print(f"{args.write}: {'rewritten' if rewrite(args.write) else 'up to date'}")
    else:
        print(readme_table(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
