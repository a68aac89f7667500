"""WebVTT (``.vtt``) cues: the ``WEBVTT`` header, then blocks like SubRip's.

A cue block has an optional identifier line, a timing line (``00:01.000 --> 00:02.500``,
hours optional, cue settings after the end time ignored) and text lines (``<v Speaker>``,
``<c>``, ``<i>`` and inline timestamps are markup, stripped later). ``NOTE``, ``STYLE`` and
``REGION`` blocks are not cues and are skipped. A file that does not start with ``WEBVTT``
is not WebVTT: ``sidecar_format``.
"""

from __future__ import annotations

import re

from gaia.pipeline.instructions.raw import RawCue, SidecarError
from gaia.pipeline.instructions.srt import read_block, split_blocks

_HEADER = re.compile(r"^WEBVTT(?:[ \t].*)?$")
_NOT_CUES = re.compile(r"^(?:NOTE|STYLE|REGION)(?:[ \t].*)?$")


def parse_vtt(text: str) -> list[RawCue]:
    """Every cue block of a WebVTT file, in file order (module docstring)."""
    blocks = split_blocks(text)
    if not blocks or not _HEADER.match(blocks[0][0].strip()):
        raise SidecarError("sidecar_format", "a .vtt sidecar must start with the line WEBVTT")
    # The header block may run straight into the first cue when no blank line follows it.
    first = blocks[0][1:]
    cues = [first] if any("-->" in line for line in first) else []
    cues += [lines for lines in blocks[1:] if not _NOT_CUES.match(lines[0].strip())]
    return [read_block(lines) for lines in cues]
