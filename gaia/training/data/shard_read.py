"""One shard's raw samples, from a local path or from object storage (docs/shards.md).

A shard is read as a stream, member after member, and consecutive members that share a key
(``KEY.mp4``, ``KEY.json``, ...) become one sample: WebDataset's grouping, read here with
``tarfile`` directly (WebDataset's generic pipeline of per-member dicts cost 30 % of a raw
read, ``benchmarks/loader_throughput.py``). The rules are WebDataset's, so a shard gives the
same samples either way: the key is the name up to the first dot of its last path part, the
suffix (lower-cased) the rest; non-regular members and ``__name__`` metadata are skipped; a
suffix twice in one sample is an error.

Store URIs (``s3://...``) are opened with pyarrow's filesystems (``gaia.common.storage``:
credentials from the environment or ``~/.aws``) and streamed through a buffer, never downloaded
whole; WebDataset's own ``s3://`` opener shells out to the ``aws`` command-line tool. Other
URLs (``pipe:``, ``http://``) go to WebDataset's opener.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Callable, Iterator
from typing import BinaryIO

import webdataset as wds

from gaia.common.storage import opened

Handler = Callable[[Exception], bool]


_KEY = re.compile(r"^((?:.*/|)[^./]+)\.([^/]*)$")
_META = re.compile(r"__[^/]*__($|/)")


def _grouped(url: str, stream: BinaryIO, handler: Handler) -> Iterator[dict]:
    sample: dict | None = None
    try:
        # A file on disk is read as a plain archive (half the CPU of tarfile's stream mode,
        # which copies every block through its own buffer); a store's stream as a stream.
        seekable = stream.seekable()
        with tarfile.open(fileobj=stream, mode="r:*" if seekable else "r|*") as archive:
            for member in archive:
                if not member.isreg() or _META.match(member.name):
                    continue
                match = _KEY.match(member.name)
                if match is None:
                    continue
                key, suffix = match.group(1), match.group(2).lower()
                data = archive.extractfile(member).read()  # first: a torn member adds nothing
                if sample is None or sample["__key__"] != key:
                    if sample is not None:
                        yield sample
                    sample = {"__key__": key, "__url__": url}
                if suffix in sample:
                    raise ValueError(f"{member.name}: duplicate member {suffix!r} in {url}")
                sample[suffix] = data
                if not seekable:
                    archive.members = []  # a streamed archive need not remember its members
    except Exception as err:  # noqa: BLE001 - recorded by the handler; the shard ends here
        handler(err)
    if sample is not None:  # a truncated shard still gives its last, partial sample
        yield sample


def shard_samples(url: str, handler: Handler) -> Iterator[dict]:
    """The raw samples of shard ``url`` (``__key__``, ``__url__`` and member bytes).

    ``handler(exception)`` is told of an error; the shard ends there (the samples before it
    stand, the rest is not read), as with WebDataset's handlers that return False."""
    if url.startswith(("pipe:", "http://", "https://")):
        yield from wds.tarfile_to_samples(handler=handler)([{"url": url}])
        return
    try:
        with opened(url) as stream:
            yield from _grouped(url, stream, handler)
    except Exception as err:  # noqa: BLE001 - a shard that does not open: the handler records
        handler(err)
