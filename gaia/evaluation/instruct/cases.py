"""The instructions ``gaia eval instruct`` gives and what each should do to the measured face
(paper, appendix E: 10 portraits x 10 instructions, rated by people; ours are the instructions
with a measurable effect, ``evaluation.instruct.measures``).

An instruction file (``--instructions FILE``, JSON or YAML) is a list of entries::

    - {text: "turn your head to the left", action: turn left, measure: yaw, sign: 1}

``measure`` is one of ``measures.MEASURES``; ``sign`` the sign the effect (the
instruction's value minus the neutral instruction's) should have: +1 or -1. ``action`` groups
phrasings of one action in the summary (default: the text).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from gaia.evaluation.instruct.measures import MEASURES
from gaia.generation.instructed import clean_instruction


@dataclass(frozen=True)
class InstructionCase:
    """One instruction, the action it asks for, the measure that shows it and the sign of its
    expected effect."""

    text: str
    action: str
    measure: str
    sign: int

    def __post_init__(self) -> None:
        if self.measure not in MEASURES:
            raise ValueError(f"instruction {self.text!r}: measure {self.measure!r} is not one "
                             f"of {', '.join(MEASURES)}")
        if self.sign not in (1, -1):
            raise ValueError(f"instruction {self.text!r}: sign must be 1 or -1, not "
                             f"{self.sign!r}")
        clean_instruction(self.text)


def _cases(action: str, measure: str, sign: int, *texts: str) -> tuple[InstructionCase, ...]:
    return tuple(InstructionCase(text, action, measure, sign) for text in texts)


# "left" and "right" are the subject's own (the instruction is said to the person on camera):
# turning to one's left moves the nose to the image's right, yaw > 0 (``measures``).
DEFAULT_CASES: tuple[InstructionCase, ...] = (
    *_cases("turn left", "yaw", 1, "turn your head to the left", "look to your left"),
    *_cases("turn right", "yaw", -1, "turn your head to the right", "look to your right"),
    *_cases("nod", "pitch_range", 1, "nod your head", "please nod"),
    *_cases("smile", "smile", 1, "please smile", "give a big smile"),
    *_cases("open the mouth", "mouth_open", 1, "open your mouth", "open your mouth wide"),
)


def read_cases(path: Path) -> tuple[InstructionCase, ...]:
    """The instructions of a JSON or YAML file (module docstring); ValueError naming the
    entry that is wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ValueError(f"cannot read --instructions {path}: {err}") from err
    try:
        entries = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as err:
        raise ValueError(f"--instructions {path} is not valid JSON or YAML: {err}") from err
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"--instructions {path}: give a list of entries with text, measure "
                         "and sign (and optionally action)")
    cases = []
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not {"text", "measure", "sign"} <= set(entry):
            raise ValueError(f"--instructions {path}, entry {number}: needs text, measure and "
                             f"sign, got {entry!r}")
        try:
            cases.append(InstructionCase(" ".join(str(entry["text"]).split()),
                                         str(entry.get("action") or entry["text"]),
                                         str(entry["measure"]), int(entry["sign"])))
        except (TypeError, ValueError) as err:
            raise ValueError(f"--instructions {path}, entry {number}: {err}") from err
    return tuple(cases)
