"""What the timed-text parsers give: raw cues, and the error of a sidecar that gives none."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RawCue:
    """One entry as a parser read it: seconds (None: unreadable), its text with markup still
    in, and ``reason`` already known to the parser (``bad_cue``, ``bad_time``) or ``""``."""

    start_s: float | None
    end_s: float | None
    text: str
    reason: str = ""


class SidecarError(ValueError):
    """A sidecar that gives no cues at all; ``reason`` is one of
    ``gaia.schemas.cues.SIDECAR_REASONS``, ``path`` the sidecar's (when known)."""

    def __init__(self, reason: str, message: str, path: str = "") -> None:
        super().__init__(message)
        self.reason, self.path = reason, path
