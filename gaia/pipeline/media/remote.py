"""Inputs on any filesystem pyarrow opens (local, ``s3://``, ``gs://``, ``hdfs://``, ...).

Decoders want a local file, so a remote input is copied to a local temporary file in blocks
(bounded memory), measured, then deleted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator

from gaia.pipeline.media.decode import DecodeError

COPY_BLOCK = 8 << 20


def is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


def local_path(uri: str) -> str:
    return uri[len("file://"):] if uri.startswith("file://") else uri


@contextlib.contextmanager
def local_copy(uri: str) -> Iterator[str]:
    """A local path holding ``uri``'s bytes for the duration of the ``with`` block."""
    if is_local(uri):
        yield local_path(uri)
        return
    import pyarrow.fs

    suffix = os.path.splitext(uri)[1][:8]
    handle, tmp = tempfile.mkstemp(prefix="gaia-input-", suffix=suffix)
    try:
        try:
            filesystem, path = pyarrow.fs.FileSystem.from_uri(uri)
            with filesystem.open_input_stream(path) as src, os.fdopen(handle, "wb") as dst:
                shutil.copyfileobj(src, dst, COPY_BLOCK)
        except Exception as err:
            raise DecodeError("not_found", f"{uri} could not be read: {err}") from err
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
