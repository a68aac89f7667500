"""``X.cues.json``: a JSON list of ``{"start": seconds, "end": seconds, "text": "..."}``.

The plainest way to give gaia timed text (``make demo`` writes these). Anything but a list at
the top is ``sidecar_format``; an item that is not an object with a string ``text`` is
``bad_cue``; a ``start`` or ``end`` that is not a finite number (missing, a string, a boolean,
``NaN``) is ``bad_time``.
"""

from __future__ import annotations

import json
import math

from gaia.pipeline.instructions.raw import RawCue, SidecarError


def _seconds(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _cue(item: object) -> RawCue:
    if not isinstance(item, dict) or not isinstance(item.get("text"), str):
        text = item.get("text") if isinstance(item, dict) else None
        return RawCue(None, None, text if isinstance(text, str) else "", "bad_cue")
    start, end = _seconds(item.get("start")), _seconds(item.get("end"))
    reason = "" if start is not None and end is not None else "bad_time"
    return RawCue(start, end, item["text"], reason)


def parse_cues_json(text: str) -> list[RawCue]:
    """Every item of the list as a cue, in file order (module docstring)."""
    try:
        items = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise SidecarError("sidecar_format", f"a .cues.json sidecar does not parse as JSON: "
                           f"{type(err).__name__}: {str(err)[:200]}") from None
    if not isinstance(items, list):
        raise SidecarError("sidecar_format", "a .cues.json sidecar must hold a JSON list of "
                           '{"start": s, "end": s, "text": "..."} objects, not a '
                           f"{type(items).__name__}")
    return [_cue(item) for item in items]
