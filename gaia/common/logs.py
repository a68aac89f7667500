"""Where the library's log lines go: one standard-error handler on the ``gaia`` logger.

Library code never prints: it logs through ``logging.getLogger("gaia.SOMETHING")`` (progress lines at
INFO, details at DEBUG), so a program that embeds gaia routes them its own way. The entry
points (the ``gaia`` command, the trainers' ``torchrun`` entries) call ``configure_logging``:
message-only lines on standard error, so standard output stays for results (JSON, summaries).
"""

from __future__ import annotations

import logging
import sys

LOGGER = "gaia"


class _StderrHandler(logging.StreamHandler):
    """Writes each record to the ``sys.stderr`` of that moment, not the one it was made with:
    a test (or a caller) that swaps the stream still gets the lines."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:  # StreamHandler sets it; the property decides
        pass


def configure_logging(debug: bool = False) -> logging.Logger:
    """INFO (DEBUG with ``debug``) lines of every ``gaia.*`` logger to standard error, message
    only. Calling it again only changes the level: there is never a second handler."""
    logger = logging.getLogger(LOGGER)
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    if not any(isinstance(handler, _StderrHandler) for handler in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    return logger
