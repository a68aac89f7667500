"""Find and read the timed-text sidecar of one input video, never failing the video.

``X.mp4`` (any video extension) may have, beside it, ``X.cues.json``, ``X.srt`` or ``X.vtt``;
they are looked for in that order and the first one found is read (the others are ignored:
one video, one source of timing). Local paths and ``file://`` URIs are read directly; other
URIs (``s3://``, ``gs://``, ...) through pyarrow's filesystems, as the video itself is
(``pipeline.media.remote``). Only a regular file of at most ``MAX_BYTES`` is read, and never
more than that many bytes (a FIFO or a file that grows cannot stall or swamp a worker).

Whatever a sidecar holds, the answer is a ``VideoCues`` (``gaia.schemas.cues``): its state is
``ok``, ``none`` (no sidecar) or the reason it gave no cues; a parser bug on hostile input is
``sidecar_format`` too. Its fields are what the video's status record stores
(``sidecar_columns``).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

from gaia.pipeline.instructions.cues_json import parse_cues_json
from gaia.pipeline.instructions.decode import decode_text
from gaia.pipeline.instructions.raw import RawCue, SidecarError
from gaia.pipeline.instructions.srt import parse_srt
from gaia.pipeline.instructions.tidy import tidy_cues
from gaia.pipeline.instructions.vtt import parse_vtt
from gaia.pipeline.media.remote import is_local, local_path
from gaia.schemas.cues import VideoCues

MAX_BYTES = 2 << 20  # 2 MiB: hours of dense subtitles; more is not a sidecar of one video
PARSERS: dict[str, Callable[[str], list[RawCue]]] = {
    ".cues.json": parse_cues_json,
    ".srt": parse_srt,
    ".vtt": parse_vtt,
}  # in the order they are looked for


def sidecar_paths(uri: str) -> list[str]:
    """Where ``uri``'s sidecars would be, in the order they are looked for."""
    stem = uri[:len(uri) - len(os.path.splitext(uri)[1])]
    return [stem + suffix for suffix in PARSERS]


def _read_local(path: str) -> bytes | None:
    """The bytes of a local sidecar, None when there is none; ``SidecarError`` otherwise."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise SidecarError("sidecar_unreadable", f"{path}: {err.strerror or err}", path) from None
    if not stat.S_ISREG(info.st_mode):
        raise SidecarError("sidecar_unreadable", f"{path} is not a regular file", path)
    if info.st_size > MAX_BYTES:
        raise SidecarError("sidecar_too_large", f"{path} has {info.st_size} bytes, more than "
                           f"{MAX_BYTES}", path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as err:
        raise SidecarError("sidecar_unreadable", f"{path}: {err.strerror or err}", path) from None
    if len(data) > MAX_BYTES:  # it grew since stat
        raise SidecarError("sidecar_too_large", f"{path} holds more than {MAX_BYTES} bytes",
                           path)
    return data


def _read_remote(paths: list[str]) -> tuple[str, bytes] | None:
    """The first remote sidecar of ``paths`` and its bytes (one listing call for all)."""
    import pyarrow.fs

    uri = paths[0]
    try:
        filesystem = pyarrow.fs.FileSystem.from_uri(paths[0])[0]
        names = [pyarrow.fs.FileSystem.from_uri(p)[1] for p in paths]
        for uri, name, info in zip(paths, names, filesystem.get_file_info(names), strict=True):
            if info.type == pyarrow.fs.FileType.NotFound:
                continue
            if info.type != pyarrow.fs.FileType.File:
                raise SidecarError("sidecar_unreadable", f"{uri} is not a file", uri)
            if info.size is not None and info.size > MAX_BYTES:
                raise SidecarError("sidecar_too_large", f"{uri} has {info.size} bytes, more "
                                   f"than {MAX_BYTES}", uri)
            with filesystem.open_input_stream(name) as stream:
                data = stream.read(MAX_BYTES + 1)
            if len(data) > MAX_BYTES:
                raise SidecarError("sidecar_too_large", f"{uri} holds more than {MAX_BYTES} "
                                   "bytes", uri)
            return uri, bytes(data)
    except SidecarError:
        raise
    except Exception as err:  # any store error: the sidecar is unreadable, the video is not
        raise SidecarError("sidecar_unreadable", f"{uri}: {type(err).__name__}: {err}",
                           uri) from None
    return None


def find_sidecar(uri: str) -> tuple[str, bytes] | None:
    """The first sidecar beside ``uri`` (path or URI) and its bytes, None when it has none;
    ``SidecarError`` for one that cannot be read (too large, not a file, a store error)."""
    paths = sidecar_paths(uri)
    if not is_local(uri):
        return _read_remote(paths)
    for path in paths:
        data = _read_local(local_path(path))
        if data is not None:
            return path, data
    return None


def read_video_cues(uri: str) -> VideoCues:
    """The timed text beside the video ``uri`` (module docstring); never raises for what a
    sidecar holds."""
    name = ""
    try:
        found = find_sidecar(uri)
        if found is None:
            return VideoCues("", "none", ())
        path, data = found
        name = os.path.basename(path)
        parser = next(parse for suffix, parse in PARSERS.items() if path.endswith(suffix))
        return VideoCues(name, "ok", tidy_cues(parser(decode_text(data))))
    except SidecarError as err:
        return VideoCues(name or os.path.basename(err.path), err.reason, ())
    except Exception:  # noqa: BLE001 - a parser's bug on hostile input costs the cues only
        return VideoCues(name, "sidecar_format", ())


def sidecar_columns(uri: str) -> dict:
    """The status record's timed-text fields (``gaia.schemas.cues.CUE_FIELDS``) for ``uri``."""
    video = read_video_cues(uri)
    return {"timed_text": video.sidecar, "timed_text_status": video.status,
            "cues": [cue.to_row() for cue in video.cues]}
