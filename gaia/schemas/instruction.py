"""The ``instruction.json`` member of an instruct clip sample (paper, appendix E; docs/shards.md).

The ``instruct`` curation preset cuts, for each instruction spoken off-screen ("please smile"),
the clip of the action that follows it. Each such sample carries, beside the clip's usual
members, ``KEY.instruction.json``: a UTF-8 JSON object with

- ``text``: the cue's text with markup stripped, exactly as the sidecar gave it (what
  ``gaia encode-latents --text-encoder`` turns into the diffusion model's condition);
- ``cue_start_s``, ``cue_end_s``: when the instruction is spoken, seconds in the source video;
  the action window opens at ``cue_end_s``;
- ``offset_s``: the clip's ``start_s`` minus ``cue_end_s``, how long after the instruction the
  action clip begins (0 up to the preset's ``instructions.grace_s``);
- ``window_end_s``: where the action window closed, ``cue_end_s`` plus
  ``instructions.window_s`` or the next cue's start if that came first; the clip ends by then;
- ``cue_index``: the cue's index among the video's stored cues (``videos.parquet``);
- ``sidecar``: the file name of the timed-text sidecar the cue came from;
- ``mode``: the instruction filter that chose the cue (``imperative``, ``words``, ``all``).

``read_instruction`` reads and checks one member (what a trainer calls); ``instruction_problems``
also checks its times against the sample's JSON (what ``gaia inspect`` calls).
"""

from __future__ import annotations

import json
import math
import unicodedata
from dataclasses import asdict, dataclass

INSTRUCTION_MEMBER = "instruction.json"
MAX_TEXT_CHARS = 500  # an instruction is a sentence; a paragraph is narration, not an action
MODES = ("imperative", "words", "all")
# Slack for times that went through JSON and a frame grid: one frame at 25 fps.
FRAME_S = 1.0 / 25


class InstructionError(ValueError):
    """An ``instruction.json`` member that breaks the spec; the message names the field."""


@dataclass(frozen=True)
class Instruction:
    """One instruct sample's instruction (module docstring)."""

    text: str
    cue_start_s: float
    cue_end_s: float
    offset_s: float
    window_end_s: float
    cue_index: int
    sidecar: str
    mode: str

    def to_bytes(self) -> bytes:
        """The member's bytes: sorted keys, UTF-8 (not ASCII-escaped: the text is read as is)."""
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=False).encode("utf-8")


def text_problem(text: object) -> str | None:
    """Why ``text`` is not a clean instruction text (None: it is).

    Clean: a non-empty string of at most ``MAX_TEXT_CHARS`` characters, Unicode NFC, no
    control or format characters, no leading, trailing or doubled whitespace (the timed-text
    reader's output, ``gaia.pipeline.instructions.markup``)."""
    if not isinstance(text, str):
        return f"is a {type(text).__name__}, not a string"
    if not text:
        return "is empty"
    if len(text) > MAX_TEXT_CHARS:
        return f"has {len(text)} characters, more than {MAX_TEXT_CHARS}"
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text):
        return "holds control characters"
    if " ".join(text.split()) != text:
        return "has leading, trailing or repeated whitespace"
    if unicodedata.normalize("NFC", text) != text:
        return "is not in Unicode NFC form"
    return None


def _number(meta: dict, name: str) -> float:
    value = meta.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InstructionError(f"instruction.json field {name!r} must be a finite number, "
                               f"not {value!r}")
    return float(value)


def parse_instruction(meta: object) -> Instruction:
    """An ``Instruction`` from the member's parsed JSON; ``InstructionError`` names the field."""
    if not isinstance(meta, dict):
        raise InstructionError(f"instruction.json is a {type(meta).__name__}, not an object")
    why = text_problem(meta.get("text"))
    if why:
        raise InstructionError(f"instruction.json text {why}")
    start, end = _number(meta, "cue_start_s"), _number(meta, "cue_end_s")
    offset, window_end = _number(meta, "offset_s"), _number(meta, "window_end_s")
    if start < 0 or end <= start:
        raise InstructionError(f"instruction.json cue times {start} - {end} s: the start must "
                               "be zero or more and the end after it")
    if offset < -1e-6:
        raise InstructionError(f"instruction.json offset_s {offset} is negative: the action "
                               "clip must start at or after the instruction's end")
    if window_end <= end:
        raise InstructionError(f"instruction.json window_end_s {window_end} is not after "
                               f"cue_end_s {end}")
    index = meta.get("cue_index")
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise InstructionError(f"instruction.json cue_index must be a whole number >= 0, not "
                               f"{index!r}")
    sidecar, mode = meta.get("sidecar"), meta.get("mode")
    if not isinstance(sidecar, str):
        raise InstructionError(f"instruction.json sidecar must be a string, not {sidecar!r}")
    if mode not in MODES:
        raise InstructionError(f"instruction.json mode must be one of {MODES}, not {mode!r}")
    return Instruction(meta["text"], start, end, offset, window_end, index, sidecar, mode)


def read_instruction(blob: bytes) -> Instruction:
    """One ``instruction.json`` member's bytes, read and checked (module docstring);
    ``InstructionError`` says what is wrong. What ``encode-latents --text-encoder`` calls."""
    try:
        meta = json.loads(bytes(blob).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise InstructionError(f"instruction.json does not parse as UTF-8 JSON: {err}") from None
    return parse_instruction(meta)


def instruction_problems(blob: bytes, start_s: object, end_s: object) -> list[str]:
    """What is wrong with an ``instruction.json`` member, its times checked against the
    sample JSON's ``start_s`` and ``end_s`` (each not a number: not compared)."""
    try:
        instruction = read_instruction(blob)
    except InstructionError as err:
        return [str(err)]
    problems = []
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (start_s, end_s))
    if numbers:
        # Both come from the same floats at extract: only JSON's round trip may move them.
        if abs((start_s - instruction.cue_end_s) - instruction.offset_s) > 1e-6:
            problems.append(f"instruction.json offset_s {instruction.offset_s:.6f} is not the "
                            f"clip's start_s {start_s} minus cue_end_s {instruction.cue_end_s}")
        if end_s > instruction.window_end_s + FRAME_S + 1e-6:
            problems.append(f"the clip ends at {end_s:.3f} s, after its action window "
                            f"(closed at {instruction.window_end_s:.3f} s)")
    return problems
