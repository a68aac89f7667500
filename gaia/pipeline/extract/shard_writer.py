"""Write samples into WebDataset tar shards (docs/shards.md), whole or not at all.

Shards are plain POSIX (ustar) tars named ``{prefix}-{index:06d}.tar``, members ``KEY.MEMBER``,
written deterministically: members of a sample sorted by name, mtime 0, uid/gid 0, mode 0644.
Each shard is written under a hidden ``.*.partial`` name (``gaia.schemas.atomic``) and renamed
only once closed, so a reader listing ``*.tar`` never sees half a shard; only then does
``on_shard_done`` learn its keys (the caller writes the manifest rows of finished shards only).

A new shard starts when the next sample would make the current one pass ``target_bytes`` (size
on disk, end-of-archive and padding included); a sample bigger than the target gets a shard of
its own. Numbering continues after the shards already in ``out_dir`` and those named in
``taken`` (resume; ``taken``: the shards of a run whose finished shards live in a store).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tarfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from gaia.schemas.atomic import PARTIAL_SUFFIX, committed, partial_path
from gaia.schemas.keys import check_key
from gaia.schemas.shards import check_member

BLOCK = tarfile.BLOCKSIZE  # 512: header and data granularity
RECORD = tarfile.RECORDSIZE  # 10240: a tar file's size is a multiple of this
MAX_NAME = 100  # ustar name field, without the prefix field (names hold no '/')


@dataclass(frozen=True)
class ShardInfo:
    """One finished shard: file name, full path, its keys in order, size in bytes."""

    name: str
    path: Path
    keys: tuple[str, ...]
    num_bytes: int


def shard_index(name: str, prefix: str) -> int | None:
    """The index in a finished shard's file name ``{prefix}-NNNNNN.tar``, else None."""
    match = re.fullmatch(rf"{re.escape(prefix)}-(\d{{6,}})\.tar", name)
    return int(match.group(1)) if match else None


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


def _file_size(payload: int) -> int:
    """Bytes on disk of a tar whose members take ``payload`` bytes (headers + padded data)."""
    return -(-(payload + 2 * BLOCK) // RECORD) * RECORD


class ShardWriter:
    """Append samples with ``add``; ``close`` finishes the last shard and lists all written.

    Use as a context manager: on an exception the shard in progress is discarded (finished
    shards stay), otherwise it is closed.
    """

    def __init__(self, out_dir: Path, prefix: str = "shard", target_bytes: int = 256 << 20,
                 on_shard_done: Callable[[ShardInfo], None] | None = None,
                 taken: Iterable[str] = ()) -> None:
        check_key(prefix)
        if target_bytes <= 0:
            raise ValueError(f"target_bytes must be positive, got {target_bytes}")
        self.out_dir = Path(out_dir)
        self.prefix = prefix
        self.target_bytes = int(target_bytes)
        self.on_shard_done = on_shard_done
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._remove_own_partials()
        names = [p.name for p in self.out_dir.iterdir()] + list(taken)
        indices = [shard_index(name, prefix) for name in names]
        self._next_index = max((i for i in indices if i is not None), default=-1) + 1
        self._seen: set[str] = set()
        self._done: list[ShardInfo] = []
        self._tar: tarfile.TarFile | None = None
        self._partial: Path | None = None
        self._final: Path | None = None
        self._keys: list[str] = []
        self._payload = 0
        self._closed = False

    def _remove_own_partials(self) -> None:
        """Leftovers of a killed writer with this prefix (other prefixes' are left alone)."""
        pattern = re.compile(rf"\.{re.escape(self.prefix)}-\d{{6,}}\.tar\.[0-9a-f]+"
                             rf"{re.escape(PARTIAL_SUFFIX)}")
        for path in self.out_dir.iterdir():
            if pattern.fullmatch(path.name):
                path.unlink(missing_ok=True)

    def add(self, key: str, members: Mapping[str, bytes]) -> None:
        """Write one sample; ValueError (and nothing written) for an unsafe key or member."""
        if self._closed:
            raise ValueError("add() after close()")
        check_key(key)
        if key in self._seen:
            raise ValueError(f"key {key!r} was already written by this writer")
        if not members:
            raise ValueError(f"sample {key!r} has no members")
        entries = []
        for member in sorted(members):
            check_member(member)
            name = f"{key}.{member}"
            if len(name) > MAX_NAME:
                raise ValueError(f"member name {name!r} is longer than {MAX_NAME} characters")
            data = members[member]
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise ValueError(f"{name}: members must be bytes, got {type(data).__name__}")
            entries.append((name, bytes(data)))
        size = sum(BLOCK + _padded(len(data)) for _, data in entries)
        if self._tar is not None and _file_size(self._payload + size) > self.target_bytes:
            self._finish()
        if self._tar is None:
            self._start()
        for name, data in entries:
            self._tar.addfile(_tarinfo(name, len(data)), io.BytesIO(data))
        self._payload += size
        self._keys.append(key)
        self._seen.add(key)

    def close(self) -> list[ShardInfo]:
        """Finish the shard in progress; every shard this writer finished, in order."""
        if not self._closed:
            self._finish()
            self._closed = True
        return list(self._done)

    def abort(self) -> None:
        """Drop the shard in progress (its partial file); finished shards stay."""
        if self._tar is not None:
            try:
                # Closing writes the archive's end blocks, which a full disk refuses; the
                # file goes either way.
                with contextlib.suppress(OSError):
                    self._tar.close()
            finally:
                self._partial.unlink(missing_ok=True)
        self._tar = self._partial = self._final = None
        self._closed = True

    @property
    def shards(self) -> list[ShardInfo]:
        return list(self._done)

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _start(self) -> None:
        self._final = self.out_dir / f"{self.prefix}-{self._next_index:06d}.tar"
        self._next_index += 1
        self._partial = partial_path(self._final)
        # held open across add() calls, closed by _finish() or abort()
        self._tar = tarfile.open(  # noqa: SIM115
            self._partial, mode="w", format=tarfile.USTAR_FORMAT)
        self._keys, self._payload = [], 0

    def _finish(self) -> None:
        if self._tar is None:
            return
        try:
            self._tar.close()
            if self._final.exists():
                raise FileExistsError(f"{self._final} appeared while it was being written")
            with open(self._partial, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(self._partial, self._final)
        except BaseException:
            self._partial.unlink(missing_ok=True)
            raise
        finally:
            self._tar = None
        info = ShardInfo(name=self._final.name, path=self._final, keys=tuple(self._keys),
                         num_bytes=self._final.stat().st_size)
        committed(self._final)  # a staged run uploads it here, before its manifest part
        self._done.append(info)
        if self.on_shard_done is not None:
            self.on_shard_done(info)


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info
