"""Checks every job makes on its settings before anything starts (no Ray, no cleanup yet).

A mistake found after Ray has started, or after every input was measured, costs the user
minutes to hours; these run first and fail in one clear line (gaia/cli.py prints it and exits
with status 2).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from gaia.common.storage import check_uri, is_uri

# Set by Ray's job supervisor for the driver of a `ray job submit` job.
_SUBMITTED_JOB_VARIABLE = "RAY_JOB_CONFIG_JSON_ENV_VAR"


def output_folder(path: str | os.PathLike, flag: str = "--out") -> Path | str:
    """``path`` made absolute against the current directory, before anything changes it; a
    store URI (``s3://bucket/runs/r1``) is returned as a checked string
    (``gaia.common.storage.check_uri``: no credentials in it).

    Refused: a path that exists and is not a folder, and a relative path in a ``ray job
    submit`` driver, whose current directory is the head node's, not the submitter's: with
    ``--working-dir`` a temporary copy that no other node sees and that Ray deletes (the
    output would be lost), without it the folder ``ray start --head`` ran in.
    """
    if is_uri(path):
        return check_uri(str(path), flag)
    given = Path(path).expanduser()
    if not given.is_absolute() and os.environ.get(_SUBMITTED_JOB_VARIABLE):
        raise ValueError(
            f"{flag} {path} is relative, and under `ray job submit` it would be resolved in "
            f"the job's working directory on the head node ({os.getcwd()}; with --working-dir "
            f"a temporary copy that Ray deletes), not where you typed the command: pass an "
            f"absolute {flag} on a folder every node can write, e.g. /nfs/runs/r1")
    folder = given.resolve()
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{flag} {path} is a file, not a folder: pass a folder (it is "
                         "created if missing)")
    return folder


def check_workers(workers: int | None, flag: str = "--workers") -> int | None:
    """``workers`` as given (None: one per CPU or GPU, the default); below 1 is refused."""
    if workers is not None and (isinstance(workers, bool) or int(workers) != workers
                                or workers < 1):
        raise ValueError(f"{flag} {workers}: give 1 or more, or leave it out for one per CPU")
    return workers


def workers_arg(text: str) -> int:
    """argparse type of ``--workers``: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"{value}: give 1 or more, or leave --workers out for one per CPU")
    return value
