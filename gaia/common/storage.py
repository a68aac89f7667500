"""Object storage (``s3://``, ``gs://``, ``hdfs://``, ...) through pyarrow's filesystems.

A curation run's ``--out`` and a trainer's ``--shards`` may be a URI instead of a folder, so a
cluster needs no filesystem every node can write (docs/architecture.md). Everything that
touches a store goes through ``Store``, which keeps the project's rule that a reader never
takes a half-written file for a whole one (ground rule 5):

- ``put`` uploads to a hidden temporary key (``.NAME.XXXXXXXX.partial``, the same pattern as
  ``gaia.schemas.atomic``) and then moves it to the final key. On an object store a move is a
  server-side copy and a delete, and a copy makes the object appear whole or not at all; a
  writer killed mid-upload leaves only the temporary key, which ``remove_partials`` deletes
  (the next run's clean-up, as for local folders).
- Listing ignores temporary keys, so a resume never reads one as a completion record.

Credentials come from where the cloud SDKs look for them (for S3: ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, ``~/.aws/credentials`` and
``~/.aws/config``, an instance role; the endpoint of an S3-compatible server from
``AWS_ENDPOINT_URL``), never from the command line: a URI carrying a user name, a password or a
secret in its query is refused, so no secret reaches ``ps``, a shell history or a log line.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import parse_qsl, urlsplit

PARTIAL_SUFFIX = ".partial"  # the same as gaia.schemas.atomic's (common imports no schemas)
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SECRET_PARAMETERS = {"access_key", "secret_key", "session_token", "password", "token",
                      "credential", "credentials", "sas_token", "account_key"}
_CHUNK = 8 << 20  # bytes per read/write when copying a file to or from a store


def is_uri(text: str | os.PathLike) -> bool:
    """Whether ``text`` names a store (``scheme://...``) rather than a local path."""
    return isinstance(text, str) and bool(_URI.match(text))


def check_uri(uri: str, flag: str = "--out") -> str:
    """``uri`` without a trailing slash; ValueError when it carries credentials or names no
    bucket or path."""
    parts = urlsplit(uri)
    if parts.username or parts.password:
        raise ValueError(f"{flag} {redact(uri)}: credentials in a URI are refused (they would "
                         "show in process lists and logs); put them in the environment "
                         "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or ~/.aws/credentials")
    secrets = sorted(k for k, _ in parse_qsl(parts.query) if k.lower() in _SECRET_PARAMETERS)
    if secrets:
        raise ValueError(f"{flag} {redact(uri)}: {', '.join(secrets)} in a URI is refused; "
                         "put credentials in the environment or ~/.aws/credentials")
    if parts.scheme != "file" and not parts.netloc:
        raise ValueError(f"{flag} {uri}: no bucket; give scheme://BUCKET/PATH")
    return uri.rstrip("/")


def redact(uri: str) -> str:
    """``uri`` safe for messages: user information and query values replaced by ``***``."""
    parts = urlsplit(uri)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    if parts.username or parts.password:
        netloc = f"***@{netloc}"
    query = "&".join(f"{key}=***" for key, _ in parse_qsl(parts.query))
    return parts._replace(netloc=netloc, query=query).geturl()


@functools.lru_cache(maxsize=32)
def _filesystem(root: str, pid: int):
    """The filesystem of ``scheme://netloc`` (cached: an S3 client is slow to build), one per
    process: a DataLoader worker forked from a process that has a client builds its own
    rather than sharing the parent's connections."""
    import pyarrow.fs

    filesystem, _ = pyarrow.fs.FileSystem.from_uri(root)
    return filesystem


def resolve(uri: str):
    """``(filesystem, path inside it)`` for a URI, the filesystem shared per bucket."""
    import pyarrow.fs

    parts = urlsplit(uri)
    if parts.scheme == "file":
        return pyarrow.fs.LocalFileSystem(), parts.path
    root = f"{parts.scheme}://{parts.netloc}" + (f"?{parts.query}" if parts.query else "")
    return _filesystem(root, os.getpid()), (parts.netloc + parts.path).rstrip("/")


def open_input(uri: str) -> BinaryIO:
    """A sequential binary reader of one object (the caller closes it), buffered: a tar
    reader asks for 512-byte blocks, and an unbuffered S3 stream makes each one a request."""
    filesystem, path = resolve(uri)
    return filesystem.open_input_stream(path, buffer_size=_CHUNK)


def _is_partial(name: str) -> bool:
    return name.startswith(".") and name.endswith(PARTIAL_SUFFIX)


def _temporary(name: str) -> str:
    """A hidden, unique name beside ``name`` that no listing takes for a finished file."""
    return f".{name}.{uuid.uuid4().hex[:8]}{PARTIAL_SUFFIX}"


@dataclass(frozen=True)
class Entry:
    """One object under a store's root: its key relative to the root, size, modification time
    (seconds since the epoch, None where the store gives none)."""

    key: str
    size: int
    mtime: float | None


class Store:
    """The objects under one URI prefix, addressed by keys relative to it (``metrics/a.parquet``).

    ``Store("s3://bucket/runs/r1")``; paths of local files are ``Path``s, keys ``str``s.
    """

    def __init__(self, uri: str) -> None:
        self.uri = check_uri(uri)
        self.filesystem, self.base = resolve(self.uri)

    def __repr__(self) -> str:
        return f"Store({redact(self.uri)!r})"

    def url(self, key: str = "") -> str:
        return f"{self.uri}/{key}" if key else self.uri

    def _path(self, key: str) -> str:
        return f"{self.base}/{key}" if key else self.base

    def list(self, prefix: str = "", pattern: str | None = None) -> list[Entry]:
        """Every finished object under ``prefix`` (recursive, sorted by key), temporary keys
        left out; ``pattern``: an fnmatch pattern on the file name."""
        import pyarrow.fs

        selector = pyarrow.fs.FileSelector(self._path(prefix.rstrip("/")), recursive=True,
                                           allow_not_found=True)
        entries = []
        for info in self.filesystem.get_file_info(selector):
            if info.type != pyarrow.fs.FileType.File or _is_partial(info.base_name):
                continue
            if pattern is not None and not fnmatch.fnmatchcase(info.base_name, pattern):
                continue
            key = info.path[len(self.base) + 1:]
            mtime = info.mtime.timestamp() if info.mtime is not None else None
            entries.append(Entry(key, int(info.size or 0), mtime))
        return sorted(entries, key=lambda entry: entry.key)

    def entry(self, key: str) -> Entry | None:
        """The finished object at ``key``, None when there is none."""
        import pyarrow.fs

        info = self.filesystem.get_file_info(self._path(key))
        if info.type != pyarrow.fs.FileType.File:
            return None
        return Entry(key, int(info.size or 0),
                     info.mtime.timestamp() if info.mtime is not None else None)

    def exists(self, key: str) -> bool:
        return self.entry(key) is not None

    def read_bytes(self, key: str) -> bytes:
        with self.filesystem.open_input_stream(self._path(key)) as stream:
            return stream.read()

    def put(self, local: Path, key: str) -> None:
        """Upload ``local`` to ``key``: to a temporary key first, then moved into place."""
        folder, _, name = key.rpartition("/")
        temporary = f"{folder}/" * bool(folder) + _temporary(name)
        try:
            with open(local, "rb") as source, \
                    self.filesystem.open_output_stream(self._path(temporary)) as target:
                shutil.copyfileobj(source, target, _CHUNK)
            self.filesystem.move(self._path(temporary), self._path(key))
        finally:
            with contextlib.suppress(FileNotFoundError, OSError):
                self.filesystem.delete_file(self._path(temporary))

    def get(self, key: str, local: Path, mtime: float | None = None) -> None:
        """Download ``key`` to ``local`` (written whole, then renamed), with the object's
        modification time when given (so a file's age means the same on every copy)."""
        local.parent.mkdir(parents=True, exist_ok=True)
        partial = local.with_name(_temporary(local.name))
        try:
            with self.filesystem.open_input_stream(self._path(key)) as source, \
                    open(partial, "wb") as target:
                shutil.copyfileobj(source, target, _CHUNK)
            if mtime is not None:
                os.utime(partial, (mtime, mtime))
            os.replace(partial, local)
        finally:
            partial.unlink(missing_ok=True)

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.filesystem.delete_file(self._path(key))

    def remove_partials(self) -> int:
        """Delete the temporary keys a killed writer left; returns how many."""
        import pyarrow.fs

        selector = pyarrow.fs.FileSelector(self.base, recursive=True, allow_not_found=True)
        removed = 0
        for info in self.filesystem.get_file_info(selector):
            if info.type == pyarrow.fs.FileType.File and _is_partial(info.base_name):
                with contextlib.suppress(FileNotFoundError):
                    self.filesystem.delete_file(info.path)
                    removed += 1
        return removed


def list_uri(uri: str, pattern: str = "*") -> list[str]:
    """URIs of the finished objects directly under the prefix ``uri`` whose names match
    ``pattern`` (sorted); for shard folders in a store."""
    store = Store(uri)
    return [store.url(entry.key) for entry in store.list(pattern=pattern)
            if "/" not in entry.key]


@contextlib.contextmanager
def opened(url: str) -> Iterator[BinaryIO]:
    """A binary reader of a local path, a ``file://`` URI or a store URI, closed on exit."""
    if url.startswith("file://"):
        url = urlsplit(url).path
    handle = open_input(url) if is_uri(url) else open(url, "rb")  # noqa: SIM115
    try:
        yield handle
    finally:
        handle.close()
