"""Unfinished S3 multipart uploads under a run's prefix: listed and aborted on resume.

pyarrow uploads a large object (a shard) in parts. A run killed mid-upload leaves the upload
open: its parts are invisible to listings, stored and billed until someone aborts it, and
pyarrow's filesystem can neither list nor abort them. boto3 can, with the same credentials
and endpoint (``AWS_*`` in the environment, ``~/.aws``; ``AWS_ENDPOINT_URL`` for an
S3-compatible server).

Only a run holding the prefix's lock calls this (``pipeline.runner.staging``): no other
writer of ours is uploading there, so every open upload under the prefix is a dead run's.
Uploads started after this run took the lock are left alone all the same, in case another
tool writes beside us. Without boto3, or for a store other than S3, it says what to do
instead (a bucket lifecycle rule) and removes nothing.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from urllib.parse import urlsplit


def abort_unfinished_uploads(uri: str, started_before: datetime.datetime,
                             log: Callable[[str], None] = lambda _: None) -> int:
    """Abort the multipart uploads under ``uri`` (``s3://BUCKET/PREFIX``) begun before
    ``started_before``; returns how many. A store that refuses the listing (permissions, a
    server without it) is logged, never fatal: the lifecycle rule is the fallback."""
    parts = urlsplit(uri)
    if parts.scheme != "s3":
        return 0
    try:
        import boto3
    except ImportError:
        log("boto3 is not installed: unfinished multipart uploads of killed runs are not "
            "aborted; give the bucket an AbortIncompleteMultipartUpload lifecycle rule")
        return 0
    bucket, prefix = parts.netloc, parts.path.strip("/")
    prefix = f"{prefix}/" if prefix else ""
    client = boto3.client("s3")
    aborted = 0
    try:
        for page in client.get_paginator("list_multipart_uploads").paginate(
                Bucket=bucket, Prefix=prefix):
            for upload in page.get("Uploads", []):
                if upload["Initiated"] >= started_before:
                    continue
                client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"],
                                              UploadId=upload["UploadId"])
                aborted += 1
    except Exception as err:  # noqa: BLE001 - a clean-up that cannot run must not stop the run
        log(f"could not list or abort unfinished multipart uploads under {uri}: "
            f"{type(err).__name__}: {err}; give the bucket an AbortIncompleteMultipartUpload "
            "lifecycle rule")
    return aborted
