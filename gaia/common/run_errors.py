"""Failures that are the run's, not an input's: they stop the whole job.

A corrupt video is data: it gets a ``failed`` status with its reason and the job goes on
(ground rule 5). A full disk is not: every later video would fail the same way and be
recorded as bad, and a resume would then skip them as done. So a worker re-raises these
errors instead of recording them, and the ``gaia`` command ends with one line that says what
to free and that running the same command again resumes.

Which errors count: the output cannot take more bytes (``ENOSPC``, ``EDQUOT``, ``EFBIG``),
is read-only (``EROFS``), or the process ran out of file handles (``EMFILE``, ``ENFILE``).
An ``EIO`` or ``EACCES`` stays an input's failure: reading one unreadable file says nothing
about the others.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator

RUN_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EMFILE,
                        errno.ENFILE})

_ADVICE = {
    errno.ENOSPC: "free space on the output's filesystem",
    errno.EDQUOT: "raise the disk quota or free space under it",
    errno.EFBIG: "use a filesystem that takes larger files, or a smaller --shard-size",
    errno.EROFS: "write to a filesystem that is not read-only",
    errno.EMFILE: "raise the open-file limit (ulimit -n)",
    errno.ENFILE: "close other programs' files or raise the system's file limit",
}


class RunStoppedError(OSError):
    """The job stopped for a reason that is the run's (see the module docstring), or its
    workers died; the message is one line: what happened, what to do, that a rerun resumes."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.errno = code  # str() stays the message alone: OSError shows it when strerror is unset
        self.message = message  # kept apart: Ray appends its retry advice to the arguments

    def __reduce__(self):  # across Ray's pickling with its errno, which OSError's would drop
        return type(self), (self.message, self.errno)


def causes(err: BaseException | None) -> Iterator[BaseException]:
    """``err`` and what it wraps, outermost first. Ray's wrappers (an exception with a
    ``cause`` attribute: a worker's exception re-raised on the driver, its text holding the
    remote traceback) are skipped for the exception they carry."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        wrapped = getattr(err, "cause", None)
        if isinstance(wrapped, BaseException):
            err = wrapped
            continue
        yield err
        err = err.__cause__ or err.__context__


def run_errno(err: BaseException | None) -> int | None:
    """The run-stopping errno behind ``err`` (itself, what it wraps or was raised from), or
    None when it is an input's error."""
    for inner in causes(err):
        if isinstance(inner, OSError) and inner.errno in RUN_ERRNOS:
            return inner.errno
    return None


def is_run_error(err: BaseException) -> bool:
    """Whether ``err`` must stop the job rather than fail one input."""
    return run_errno(err) is not None


def stopped_message(what: str, err: BaseException) -> str:
    """One line for a run-stopping ``err`` met while doing ``what``."""
    code = run_errno(err)
    advice = _ADVICE.get(code, "fix the cause") if code is not None else "fix the cause"
    detail = " ".join(str(err).split()) or type(err).__name__
    return (f"{what}: {detail}. Nothing half-written is kept: {advice}, then run the same "
            "command again (it resumes)")
