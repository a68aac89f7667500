"""A cue's text with its markup stripped: what the shards' ``instruction.json`` holds.

Subtitles carry styling the instruction is not about: HTML-like tags (``<i>``, ``<b>``,
``<font color=...>``, WebVTT's ``<v Speaker>``, ``<c.class>`` and ``<00:00:01.000>``
timestamps), ASS/SSA override blocks (``{\\an8}``) and their line breaks (``\\N``), and HTML
entities (``&amp;``, ``&nbsp;``). The result is one line of plain text, NFC, without control
characters, single spaces (``gaia.schemas.instruction.text_problem`` holds it to that), so
that the text a model is conditioned on does not depend on how a subtitle was styled.
"""

from __future__ import annotations

import html
import re
import unicodedata

_TAG = re.compile(r"<[^<>]*>")
_OVERRIDE = re.compile(r"\{[^{}]*\}")
_ASS_BREAKS = re.compile(r"\\[Nnh]")


def clean_text(raw: str) -> str:
    """``raw`` without markup, entities decoded, control characters dropped, whitespace
    collapsed to single spaces (module docstring)."""
    text = _ASS_BREAKS.sub(" ", raw)
    text = _OVERRIDE.sub("", text)
    text = _TAG.sub("", text)
    text = html.unescape(text)  # after the tags: "&lt;i&gt;" is text someone meant to show
    # Line breaks and tabs become spaces; other controls and invisible format characters go.
    text = "".join(" " if ch.isspace() else ch for ch in text
                   if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cf"))
    return unicodedata.normalize("NFC", " ".join(text.split()))
