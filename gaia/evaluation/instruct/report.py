"""The page of ``gaia eval instruct`` (paper, appendix E): the measured effects per action and
per instruction, BESIDE the paper's human ratings (said to be the paper's, human, and not
comparable one to one), frame strips of the first portrait's videos, and the JSON. One
self-contained HTML file, rendered from ``templates/instruct.html``."""

from __future__ import annotations

import json
from pathlib import Path

from gaia.evaluation.report import environment, machine_readable, png_data
from gaia.schemas.atomic import write_text_atomic


def _cells(summary: dict) -> dict:
    def num(value, fmt: str = ".3f") -> str:
        return "n/a" if value is None else format(value, fmt)

    share = summary["expected_sign_share"]
    return {"effect": num(summary["effect_mean"]), "spread": num(summary["effect_std"]),
            "noise": num(summary["neutral_noise"]), "coverage": num(summary["coverage"], ".0%"),
            "sign": "n/a" if share is None else f"{share:.0%}",
            "sign_expected": "> 0" if summary["expected_sign"] > 0 else "< 0",
            "scored": f"{summary['scored']}/{summary['videos']}",
            "pose": num(summary.get("pose_track_effect_mean")),
            "pose_sign": num(summary.get("pose_track_sign_share"), ".0%"),
            "measured": summary["verdict"].startswith("effect")}


def render_instruct_report(result: dict) -> str:
    """The page's HTML for a ``gaia eval instruct`` result (``evaluation.instruct.protocol``)."""
    summary = machine_readable(result)
    strips = [{"text": text, "images": [png_data(frame) for frame in frames]}
              for text, frames in result.get("strips", {}).items()]
    return environment().get_template("instruct.html").render(
        result=summary, strips=strips,
        actions=[{**s, "cells": _cells(s)} for s in summary["per_action"]],
        instructions=[{**s, "cells": _cells(s)} for s in summary["per_instruction"]],
        summary_json=json.dumps(summary, indent=1)[:200000])


def write_instruct_json(path: Path, result: dict) -> Path:
    """The result as plain JSON at ``path``, written whole or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(machine_readable(result), indent=1))
    return path


def write_instruct_report(path: Path, result: dict) -> tuple[Path, Path]:
    """The page at ``path`` and its JSON at ``path.with_suffix('.json')``."""
    path = Path(path)
    data = write_instruct_json(path.with_suffix(".json"), result)
    write_text_atomic(path, render_instruct_report(result))
    return path, data
