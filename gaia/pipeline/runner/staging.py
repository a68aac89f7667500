"""A job's output in object storage (``--out s3://bucket/runs/r1``): no shared filesystem.

Every job writes its files through ``gaia.schemas.atomic`` (a hidden partial name, then a
rename). When ``--out`` is a URI the job works in a local *stage* folder instead and a commit
hook mirrors each file to the store the moment it is renamed into place, through
``gaia.common.storage.Store.put`` (a temporary key, then a move): the store receives the files in
the order they were committed, so a completion record (a ``status/`` JSON, a manifest part, a
latent shard's part) reaches the store only after the files it vouches for. Resume needs
nothing else: the next run pulls the completion records from the store into a fresh stage and
skips what they list.

- The driver's stage (``staged_output``) pulls what the job reads: settings and completion
  records, measures for extract; never shards (``*.tar``), which are uploaded and then removed
  from the stage, so the driver's disk holds one shard at a time.
- A worker on another node opens its own ``StagedOut``: it writes there, the hook
  uploads, and the stage is deleted when the worker ends.
- The store has no file locks, so the driver takes the lock on a record object,
  ``.gaia.lock`` (host, pid, start, command), besides ``out_lock``'s flock on the stage. A
  record of a dead process on this host is taken over (kill -9, then resume); one of another
  host is refused with the command to remove it. Two runs started in the same instant on two
  hosts are not told apart (object stores give no compare-and-swap through pyarrow): do not
  start two runs on one prefix.
- ``GAIA_STAGE_DIR`` chooses where stages go (default: the system's temporary folder). A stage
  is named for its host and process (``gaia-stage-HOST-PID-XXXXXXXX``), so that a run that
  takes a store's lock removes the stages that runs killed on this host left behind (their
  process is gone); a stage of a live process, of another host or of another user is kept.
- A large upload killed midway leaves an S3 multipart upload open (its parts billed, never
  listed); the run that takes the lock aborts those under its prefix
  (``gaia.common.multipart``).
"""

from __future__ import annotations

import contextlib
import datetime
import fnmatch
import json
import os
import re
import shutil
import socket
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from gaia.common.multipart import abort_unfinished_uploads
from gaia.common.storage import Store, check_uri, is_uri, redact
from gaia.pipeline.runner.out_lock import OutputInUseError, _alive, _holder, _record
from gaia.schemas.atomic import PARTIAL_SUFFIX, add_commit_hook, remove_commit_hook

LOCK_KEY = ".gaia.lock"
STAGE_PREFIX = "gaia-stage-"
SPILLED = ("*.tar",)  # uploaded, then removed from the stage: the bulk of a run's bytes
_active: dict[str, StagedOut] = {}  # store URI -> the driver's stage in this process

Log = Callable[[str], None]


def stage_dir() -> Path:
    """Where stages go: ``GAIA_STAGE_DIR``, else the system's temporary folder."""
    return Path(os.environ.get("GAIA_STAGE_DIR") or tempfile.gettempdir())


def _host_tag() -> str:
    """This host's name as it appears in a stage's name (no path separator, no dash)."""
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())[:64] or "host"


def remove_dead_stages(folder: Path | None = None) -> list[Path]:
    """Delete the stages in ``folder`` (default: ``stage_dir()``) whose run is gone: named for
    this host and a process that no longer runs, and owned by this user. Returns them."""
    folder = stage_dir() if folder is None else Path(folder)
    host, removed = _host_tag(), []
    try:
        candidates = [p for p in folder.iterdir() if p.name.startswith(STAGE_PREFIX)]
    except OSError:  # no stage folder yet, or not readable: nothing of ours to remove
        return removed
    for path in candidates:
        parts = path.name[len(STAGE_PREFIX):].rsplit("-", 2)
        if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
            continue  # another host's, or a stage from before stages were named for a process
        try:
            info = path.lstat()
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or \
                _alive(int(parts[1])):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


class StagedOut:
    """A local folder mirrored to ``store``: committed files are uploaded, discarded ones
    deleted, and ``SPILLED`` ones removed locally once uploaded."""

    def __init__(self, uri: str) -> None:
        self.store = Store(uri)
        self.root = Path(tempfile.mkdtemp(prefix=f"{STAGE_PREFIX}{_host_tag()}-{os.getpid()}-",
                                          dir=stage_dir())).resolve()
        add_commit_hook(self._mirror)

    def key(self, path: Path) -> str | None:
        """``path``'s key in the store, None when it is not under this stage."""
        try:
            return Path(path).resolve().relative_to(self.root).as_posix()
        except ValueError:
            return None

    def _mirror(self, path: Path, present: bool) -> None:
        key = self.key(path)
        if key is None or path.name.endswith(PARTIAL_SUFFIX):
            return
        if not present:
            self.store.delete(key)
            return
        self.store.put(path, key)
        if any(fnmatch.fnmatchcase(path.name, pattern) for pattern in SPILLED):
            path.unlink(missing_ok=True)

    def publish(self, path: Path, keep: bool = False) -> None:
        """Upload a file written outside ``gaia.schemas.atomic`` (another process's)."""
        if Path(path).is_file():
            self._mirror(Path(path), True)
            if not keep:
                Path(path).unlink(missing_ok=True)

    def pull(self, prefixes: Iterable[str], want: Callable[[str], bool] | None = None) -> int:
        """Download the store's files under ``prefixes`` (``"status/"``; a name without a
        trailing slash is one key) that the stage lacks or holds at another size, with the
        store's modification times; ``want(key)`` filters. Never ``*.tar`` unless ``want``
        asks for it. Returns how many were downloaded."""
        pulled = 0
        for prefix in prefixes:
            if prefix.endswith("/"):
                entries = self.store.list(prefix.rstrip("/"))
            else:
                entries = [entry] if (entry := self.store.entry(prefix)) else []
            for entry in entries:
                is_tar = entry.key.endswith(".tar")
                if (want is not None and not want(entry.key)) or (is_tar and want is None):
                    continue
                local = self.root / entry.key
                if local.is_file() and local.stat().st_size == entry.size:
                    continue
                self.store.get(entry.key, local, entry.mtime)
                pulled += 1
        return pulled

    def names(self, folder: Path, pattern: str = "*") -> list[str]:
        """Names of the store's files directly in the stage folder ``folder``."""
        key = self.key(folder)
        if key is None:
            return []
        prefix = "" if key == "." else key
        return [entry.key.rsplit("/", 1)[-1] for entry in self.store.list(prefix, pattern)
                if entry.key.count("/") == prefix.count("/") + bool(prefix)]

    def close(self) -> None:
        remove_commit_hook(self._mirror)
        shutil.rmtree(self.root, ignore_errors=True)


def stage_of(root: Path) -> StagedOut | None:
    """The driver's stage whose folder is ``root`` (None: ``root`` is a plain folder)."""
    for stage in _active.values():
        if stage.root == Path(root).resolve():
            return stage
    return None


def store_uri(root: Path) -> str | None:
    """The store behind a staged ``root``, for workers; None for a plain folder."""
    stage = stage_of(root)
    return stage.store.uri if stage is not None else None


def refresh(root: Path, prefixes: Iterable[str]) -> int:
    """Pull ``prefixes`` again into a staged ``root`` (what workers wrote); 0 for a plain
    folder."""
    stage = stage_of(root)
    return stage.pull(prefixes) if stage is not None else 0


@contextlib.contextmanager
def staged_output(out: Path | str, pull: Iterable[str] = (), log: Log = lambda _: None,
                  lock: bool = True) -> Iterator[Path]:
    """The local folder a job works in: ``out`` itself, or for a URI a stage mirrored to the
    store, with ``pull`` downloaded and (``lock``) the store's lock held and a killed run's
    temporary keys removed (module docstring). ``lock=False`` is for readers such as tune,
    which may look at a run while a job writes it. Re-entrant: ``gaia curate run`` stages once
    for measure and extract."""
    if not is_uri(out):
        yield Path(out)
        return
    uri = check_uri(str(out))
    if uri in _active:
        _active[uri].pull(pull)
        yield _active[uri].root
        return
    stage = StagedOut(uri)
    try:
        if lock:
            _take_lock(stage, log)
        try:
            if lock and (removed := stage.store.remove_partials()):
                log(f"removed {removed} partial object(s) left in {redact(uri)} by an "
                    "interrupted run")
            if lock and (aborted := abort_unfinished_uploads(
                    uri, datetime.datetime.now(datetime.timezone.utc), log)):
                log(f"aborted {aborted} unfinished multipart upload(s) left in {redact(uri)} "
                    "by an interrupted run")
            if lock and (dead := remove_dead_stages()):
                log(f"removed {len(dead)} stage folder(s) of runs that are gone: "
                    f"{', '.join(str(p) for p in dead)}")
            stage.pull(pull)
            _active[uri] = stage
            yield stage.root
        finally:
            _active.pop(uri, None)
            if lock:
                stage.store.delete(LOCK_KEY)
    finally:
        stage.close()


def _take_lock(stage: StagedOut, log: Log) -> None:
    mine = _record(None)
    if stage.store.exists(LOCK_KEY):
        try:
            old = json.loads(stage.store.read_bytes(LOCK_KEY))
        except ValueError:
            old = {}
        where = redact(stage.store.url(LOCK_KEY))
        if old.get("host") != mine["host"]:
            raise OutputInUseError(
                f"{redact(stage.store.uri)} is locked by a run on another host: {_holder(old)}. "
                f"If that run is still going, wait for it; if it is gone, delete {where} "
                "and run again")
        if _alive(old.get("pid")) and old.get("pid") != mine["pid"]:
            raise OutputInUseError(f"{redact(stage.store.uri)} is in use by another run: "
                                   f"{_holder(old)}. Wait for it to finish; if no run is "
                                   f"active, delete {where}")
        log(f"took over the lock of a run that is gone: {_holder(old)}")
    scratch = stage.root / f".lock{PARTIAL_SUFFIX}"
    scratch.write_text(json.dumps(mine), encoding="utf-8")
    try:
        stage.store.put(scratch, LOCK_KEY)
    finally:
        scratch.unlink(missing_ok=True)

