"""Files appear whole or not at all (ground rule 5).

Every writer in the project writes to a hidden temporary name in the destination folder and
renames it into place; a reader that lists a folder never sees a half-written file, and a job
killed mid-write leaves only a ``.*.partial`` file that the next run removes.

Commit hooks: a run whose output lives in object storage works in a local stage folder
(``gaia.pipeline.runner.staging``) and registers a hook here; every file committed (renamed
into place) or discarded under that folder is then mirrored to the store in the same order,
so the store's completion records still come after the files they vouch for.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

PARTIAL_SUFFIX = ".partial"
CommitHook = Callable[[Path, bool], None]  # (final path, True: committed / False: removed)
_hooks: list[CommitHook] = []


def add_commit_hook(hook: CommitHook) -> None:
    _hooks.append(hook)


def remove_commit_hook(hook: CommitHook) -> None:
    with contextlib.suppress(ValueError):
        _hooks.remove(hook)


def committed(final: str | os.PathLike) -> None:
    """Tell the hooks that ``final`` was just renamed into place (every writer calls this)."""
    for hook in list(_hooks):
        hook(Path(final), True)


def discard(final: str | os.PathLike) -> None:
    """Remove a finished file (if any) and tell the hooks."""
    Path(final).unlink(missing_ok=True)
    for hook in list(_hooks):
        hook(Path(final), False)


def partial_path(final: str | os.PathLike) -> Path:
    """A unique temporary name beside ``final`` that no reader takes for a finished file."""
    final = Path(final)
    return final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}{PARTIAL_SUFFIX}")


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is renamed to ``final``, else removed."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(final)
    try:
        yield tmp
        os.replace(tmp, final)
        committed(final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_text_atomic(final: str | os.PathLike, text: str) -> Path:
    with atomic_path(final) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(final)


def remove_partials(folder: str | os.PathLike) -> int:
    """Delete temporary files a killed writer left under ``folder``; returns how many."""
    removed = 0
    for leftover in Path(folder).rglob(f".*{PARTIAL_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
            removed += 1
    return removed
