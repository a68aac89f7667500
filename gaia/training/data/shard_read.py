"""One shard's raw samples, from a local path or from object storage (DESIGN.md sections 5, 9).

WebDataset groups a tar's members into samples by key; it opens local paths and ``pipe:``
commands itself, but its ``s3://`` opener shells out to the ``aws`` command-line tool, which a
training image may not have and which reads no settings of ours. Store URIs are opened here
with pyarrow's filesystems instead (``gaia.common.storage``: credentials from the environment
or ``~/.aws``), streamed sequentially, never downloaded whole; the grouping is WebDataset's
own, so a shard reads the same from a bucket as from a disk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import webdataset as wds

from gaia.common.storage import is_uri, open_input

Handler = Callable[[Exception], bool]


def _pyarrow_opens(url: str) -> bool:
    return is_uri(url) and not url.startswith(("file://", "http://", "https://"))


def shard_samples(url: str, handler: Handler) -> Iterator[dict]:
    """The raw samples of shard ``url`` (``__key__``, ``__url__`` and member bytes).

    ``handler(exception)`` is called for an error, as WebDataset does: it returns True to go
    on, False (or None) to stop reading the shard."""
    if not _pyarrow_opens(url):
        yield from wds.tarfile_to_samples(handler=handler)([{"url": url}])
        return
    try:
        stream = open_input(url)
    except Exception as err:  # noqa: BLE001 - the handler decides, as for a local shard
        handler(err)
        return
    with stream:
        files = wds.tariterators.tar_file_expander([{"url": url, "stream": stream}],
                                                   handler=handler)
        yield from wds.tariterators.group_by_keys(files, handler=handler)
