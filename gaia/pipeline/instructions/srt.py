"""SubRip (``.srt``) cues: blocks of an index line, a timing line and text lines.

::

    1
    00:00:01,000 --> 00:00:02,500
    Please <i>smile</i>.

Blocks are separated by blank lines. A block without a timing line (a stray line, text split
by a blank line) is ``bad_cue``; a timing line that does not read is ``bad_time``. Lines
before the timing line (the index) are ignored; the text lines are kept with their markup for
``markup.clean_text``. WebVTT shares this block shape (``vtt``).
"""

from __future__ import annotations

import re

from gaia.pipeline.instructions.raw import RawCue
from gaia.pipeline.instructions.timecode import parse_timing

_BLANK = re.compile(r"\n[ \t]*\n")


def split_blocks(text: str) -> list[list[str]]:
    """The blocks of ``text`` (any newline convention), each a list of its lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return [block.split("\n") for block in _BLANK.split(text) if block.strip()]


def read_block(lines: list[str]) -> RawCue:
    """One block as a cue (module docstring)."""
    for at, line in enumerate(lines):
        timing = parse_timing(line)
        if timing is None:
            continue
        start, end = timing
        text = "\n".join(lines[at + 1:])
        return RawCue(start, end, text, "" if start is not None and end is not None
                      else "bad_time")
    return RawCue(None, None, "\n".join(lines), "bad_cue")


def parse_srt(text: str) -> list[RawCue]:
    """Every block of a SubRip file as a cue, in file order."""
    return [read_block(lines) for lines in split_blocks(text)]
