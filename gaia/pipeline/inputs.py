"""Turn the INPUT arguments of a curation job into a list of videos.

An INPUT is a video file, a folder (searched recursively by video extension), a glob
(``raw/**/*.mp4``), or a text file listing one INPUT per line (``#`` starts a comment). Each of
these may be local or a URI that pyarrow's filesystems open (``s3://bucket/raw/``,
``gs://...``, ``hdfs://...``, ``file:///...``).
"""

from __future__ import annotations

import fnmatch
import glob
import os
from dataclasses import dataclass
from pathlib import Path

from gaia.pipeline.media.remote import is_local, local_path
from gaia.schemas.keys import sanitize, video_id_for

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".flv", ".mpg", ".mpeg", ".ts", ".wmv"}
)
LIST_EXTENSIONS = frozenset({".txt", ".lst", ".list"})
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class VideoInput:
    """One video to measure: where it is, its stable id, and its source (parent folder)."""

    uri: str
    video_id: str
    source: str


class InputError(ValueError):
    """An INPUT argument that names nothing usable; the message says which and why."""


def resolve_inputs(args: list[str]) -> list[VideoInput]:
    """All videos named by ``args``, de-duplicated, in a stable (sorted) order."""
    uris: set[str] = set()
    for arg in args:
        found = _expand(arg, allow_lists=True)
        if not found:
            raise InputError(f"INPUT {arg!r} names no video (extensions: "
                             f"{', '.join(sorted(VIDEO_EXTENSIONS))})")
        uris.update(found)
    return [VideoInput(uri, video_id_for(uri), source_of(uri)) for uri in sorted(uris)]


def source_of(uri: str) -> str:
    """The input's parent folder name, sanitised: the default grouping for funnels and splits."""
    parent = uri.rstrip("/").rsplit("/", 2)
    return sanitize(parent[-2]) if len(parent) >= 2 and parent[-2] else "root"


def _expand(arg: str, allow_lists: bool) -> list[str]:
    if not is_local(arg):
        return _expand_remote(arg)
    path = local_path(arg)
    if any(ch in path for ch in _GLOB_CHARS):
        return [os.path.abspath(p) for p in glob.glob(path, recursive=True) if _is_video(p)]
    if os.path.isdir(path):
        return [
            os.path.abspath(os.path.join(root, name))
            for root, _, names in os.walk(path)
            for name in names
            if _is_video(name)
        ]
    if allow_lists and Path(path).suffix.lower() in LIST_EXTENSIONS and os.path.isfile(path):
        return _read_list(path)
    if not os.path.lexists(path):
        raise InputError(f"INPUT {arg!r} does not exist")
    # A named file is taken as given, whatever its extension: the job says if it is no video.
    return [os.path.abspath(path)]


def _read_list(path: str) -> list[str]:
    found: list[str] = []
    base = os.path.dirname(os.path.abspath(path))
    with open(path, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            entry = line if not is_local(line) or os.path.isabs(line) else os.path.join(base, line)
            try:
                found.extend(_expand(entry, allow_lists=False))
            except InputError as err:
                raise InputError(f"{path}, line {number}: {err}") from err
    return found


def _expand_remote(uri: str) -> list[str]:
    import pyarrow.fs

    scheme = uri.split("://", 1)[0]
    filesystem, path = pyarrow.fs.FileSystem.from_uri(_glob_base(uri))
    pattern = uri.split("://", 1)[1] if any(ch in uri for ch in _GLOB_CHARS) else None
    info = filesystem.get_file_info(path)
    if info.type == pyarrow.fs.FileType.File and pattern is None:
        return [uri]
    if info.type == pyarrow.fs.FileType.NotFound:
        raise InputError(f"INPUT {uri!r} does not exist")
    selector = pyarrow.fs.FileSelector(path, recursive=True)
    found = []
    for entry in filesystem.get_file_info(selector):
        if entry.type != pyarrow.fs.FileType.File or not _is_video(entry.path):
            continue
        full = f"{scheme}://{entry.path}"
        if pattern is None or fnmatch.fnmatch(full.split("://", 1)[1], pattern):
            found.append(full)
    return found


def _glob_base(uri: str) -> str:
    """The part of a URI before its first glob character, cut back to a folder."""
    cut = min((uri.index(ch) for ch in _GLOB_CHARS if ch in uri), default=len(uri))
    return uri if cut == len(uri) else uri[:cut].rsplit("/", 1)[0]


def _is_video(name: str) -> bool:
    return Path(name).suffix.lower() in VIDEO_EXTENSIONS
