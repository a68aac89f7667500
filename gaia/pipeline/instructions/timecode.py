"""Timestamps of SubRip (``00:01:02,500``) and WebVTT (``01:02.500``, ``00:01:02.500``), and
the timing line between two of them.

Lenient in form (a comma or a dot before the fraction, one to three digits of it, hours of
any width), strict in value: minutes and seconds under 60. A leading minus sign is read, so
that a negative time is reported as one (``bad_time``) rather than as an unreadable line.
"""

from __future__ import annotations

import re

_STAMP = re.compile(r"^(-)?(?:(\d+):)?(\d{1,2}):(\d{1,2})(?:[,.](\d{1,3}))?$")
_TIMING = re.compile(r"^\s*(\S+)\s*-->\s*(\S+)(?:\s.*)?$")


def parse_timecode(text: str) -> float | None:
    """Seconds of one timestamp, or None when it is not one."""
    match = _STAMP.match(text.strip())
    if match is None:
        return None
    sign, hours, minutes, seconds, fraction = match.groups()
    if int(minutes) >= 60 or int(seconds) >= 60:
        return None
    value = (int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds)
             + (int(fraction.ljust(3, "0")) / 1000 if fraction else 0.0))
    return -value if sign else value


def parse_timing(line: str) -> tuple[float | None, float | None] | None:
    """``(start, end)`` of a timing line (``A --> B`` and, in WebVTT, cue settings after it);
    None when ``line`` holds no ``-->``; a side that is no timestamp is None."""
    if "-->" not in line:
        return None
    match = _TIMING.match(line)
    if match is None:
        return (None, None)
    return parse_timecode(match.group(1)), parse_timecode(match.group(2))
