"""One run at a time per output folder: an exclusive lock held for the whole run.

Two runs on the same ``--out`` would each clean up the other's in-flight ``.*.partial`` files
(the resume path removes them, ``gaia.schemas.atomic``), so the second one's start would break
the first. Every job takes this lock before it cleans up or writes anything.

The lock is ``OUT/.gaia.lock``, a small JSON file naming the holder (host, pid, start time,
command) and held with ``fcntl.flock`` while the file stays open. The kernel drops a flock when
its process dies, kill -9 included, so a killed run never blocks the next one on the same host:
the next run gets the flock, finds the dead run's record and takes it over (resume keeps
working). Exclusion itself is the flock, never a read-then-write of the record, so two racers
cannot both win. A record left by a run on another host is not taken over, since that host's
process cannot be checked from here: the error says which host and how to remove it.

The lock is re-entrant within a process: ``gaia curate run`` holds it over measure and extract,
whose own runs then enter it again.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shlex
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from gaia.common.run_errors import is_run_error

LOCK_NAME = ".gaia.lock"
_held: dict[Path, object] = {}  # folder -> its open lock file: this process's locks


class OutputInUseError(FileExistsError):
    """Another run holds the output folder's lock; the message names it and what to do."""


def _record(command: str | None) -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command": command if command is not None else shlex.join(sys.argv)}


RECORD_LIMIT = 1 << 16  # a record is a few hundred bytes; more is not a record


def _read(handle) -> dict | None:
    """The lock's record; None when the file holds none (empty) or something that is not a
    record (garbage, or more than ``RECORD_LIMIT``: never read whole into memory)."""
    handle.seek(0)
    try:
        record = json.loads(handle.read(RECORD_LIMIT + 1) or "null")
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _holder(record: dict) -> str:
    return (f"pid {record.get('pid')} on {record.get('host')} since {record.get('started')} "
            f"({record.get('command')})")


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _open_no_link(path: Path):
    """``path`` opened for reading and appending, created if absent, never through a link: a
    ``.gaia.lock`` that is a symbolic link (to a file outside the run, say) is refused, and
    its target is neither created, truncated nor written."""
    flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as err:
        if err.errno != errno.ELOOP:
            raise
        raise OutputInUseError(
            f"{path} is a symbolic link, and the run lock is never opened through a link "
            "(writing it would overwrite the link's target); delete the link and run "
            "again") from None
    return os.fdopen(fd, "a+", encoding="utf-8")


def _open_locked(path: Path) -> tuple[object, bool]:
    """The lock file, open and flocked by us; and whether flock works on this filesystem.

    A file whose flock we got may have been unlinked by its releasing holder in between: then
    the name points at a newer file (or none), so we try again on the current one.
    """
    while True:
        handle = _open_no_link(path)
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            record = _read(handle)
            handle.close()
            holder = _holder(record) if record else "another process (no record yet)"
            raise OutputInUseError(
                f"{path.parent} is in use by another run: {holder}. Wait for it to finish or "
                f"stop it, or use another --out; if no run is active, delete {path}") from None
        except OSError as err:
            if err.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                handle.close()
                raise
            return handle, False
        try:
            same = os.fstat(handle.fileno()).st_ino == os.lstat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return handle, True
        handle.close()


def _acquire(folder: Path, command: str | None, log: Callable[[str], None]):
    path = folder / LOCK_NAME
    handle, flocked = _open_locked(path)
    try:
        old = _read(handle)
        if old is None and os.fstat(handle.fileno()).st_size:
            log(f"{path} held no readable record; taken over, since its file lock was free")
        mine = _record(command)
        if old and old.get("host") != mine["host"]:
            raise OutputInUseError(
                f"{folder} is locked by a run on another host: {_holder(old)}. If that run "
                f"is still going, wait for it; if it is gone, delete {path} and run again")
        if old and not flocked and _alive(old.get("pid")) and old.get("pid") != mine["pid"]:
            raise OutputInUseError(f"{folder} is in use by another run: {_holder(old)}. Wait "
                                   f"for it to finish; if no run is active, delete {path}")
        if old:
            log(f"took over the lock of a run that is gone: {_holder(old)}")
        if not flocked:
            log(f"warning: {folder}'s filesystem has no file locks; two concurrent "
                "runs on it are not prevented")
        handle.seek(0)
        handle.truncate()
        try:  # unbuffered: a refused write must leave nothing for close() to retry
            os.write(handle.fileno(), json.dumps(mine).encode())
            os.fsync(handle.fileno())
        except OSError as err:
            if not is_run_error(err):
                raise
            # A full disk: the flock still excludes others; the record only names the holder.
            # Going on lets the run remove its partial files, which may free the space.
            log(f"warning: could not write the lock record ({err.strerror or err})")
    except BaseException:
        handle.close()
        raise
    return handle


def _release(folder: Path, handle) -> None:
    # Unlink while still holding the flock: a waiter that opened the old file sees its
    # inode is gone from the name (``_open_locked``) and starts over on a fresh file.
    with contextlib.suppress(FileNotFoundError):
        os.unlink(folder / LOCK_NAME)
    handle.close()


@contextlib.contextmanager
def hold_output(folder: str | os.PathLike, command: str | None = None,
                log: Callable[[str], None] = lambda _: None) -> Iterator[Path]:
    """Hold ``folder``'s lock (creating the folder) for the ``with`` block; yields the folder.

    Raises ``OutputInUseError`` naming the holder when another live run has it. Released on
    every exit, exceptions and KeyboardInterrupt included; re-entrant in one process.
    ``command`` (default: this process's argv) is recorded for the error other runs show.
    """
    folder = Path(folder).resolve()
    if folder in _held:  # the outer block of this process holds it and releases it
        yield folder
        return
    folder.mkdir(parents=True, exist_ok=True)
    handle = _acquire(folder, command, log)
    _held[folder] = handle
    try:
        yield folder
    finally:
        del _held[folder]
        _release(folder, handle)


def lock_holder(folder: str | os.PathLike) -> dict | None:
    """The record in ``folder``'s lock file (None: no lock file); for messages and tests."""
    path = Path(folder) / LOCK_NAME
    try:  # never through a link (a link to a device could block), and a record is small
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as handle:
            record = json.loads(handle.read(RECORD_LIMIT).decode("utf-8") or "null")
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None
