"""``ray job submit`` on a 2-node Ray cluster with token authentication, as the README shows it.

A head and a second node (one CPU each) start on this machine with ``RAY_AUTH_MODE=token`` and a
token file of the test's own; ``gaia curate measure`` goes in with ``ray job submit`` and its
``metrics/`` and ``videos.parquet`` must equal those of a local run on the same clips (the same
supervised measuring process, without Ray). No GPU: everything runs on CPU.

The cluster is stopped by killing the processes of its own sessions, not with ``ray stop``,
which stops every Ray process on the machine (other tests' embedded clusters included).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.conftest import portrait_clip

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="stops the cluster through /proc")

BIN = Path(sys.executable).parent
TIMING = ("elapsed_s", "cpu_s")  # the only columns allowed to differ between runs
WORKER_PORTS = (10002, 19999)  # ray start's default --min-worker-port, --max-worker-port


@dataclass(frozen=True)
class Cluster:
    dashboard: str  # the job server's address, http://127.0.0.1:PORT
    env: dict  # what a client on the head node has: the token path, the venv on PATH
    nodes: int
    head_cwd: Path  # where `ray start --head` ran: a job's working directory


def _free_ports(count: int) -> list[int]:
    """Free ports, none in Ray's worker port range (``ray start`` refuses those)."""
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        while len(ports) < count:
            probe = stack.enter_context(socket.socket())
            probe.bind(("127.0.0.1", 0))
            if not WORKER_PORTS[0] <= probe.getsockname()[1] <= WORKER_PORTS[1]:
                ports.append(probe.getsockname()[1])
        return ports


def _session_pids(session: int) -> list[int]:
    """Processes of one session (``ray start`` run with ``start_new_session``): every daemon
    and worker a node started, even those that moved to a process group of their own."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[3]) == session and fields[0] != "Z":
                    pids.append(int(entry.name))
    return pids


def _stop(sessions: list[int], grace_s: float = 5.0) -> None:
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        for session in sessions:
            for pid in _session_pids(session):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(_session_pids(s) for s in sessions):
            time.sleep(0.2)


def _start_node(args: list[str], env: dict, cwd: Path, log: Path) -> int:
    with log.open("w") as out:
        node = subprocess.Popen([str(BIN / "ray"), "start", *args, "--disable-usage-stats"],
                                env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        code = node.wait(timeout=120)
    except subprocess.TimeoutExpired:
        code = None
    if code != 0:
        _stop([node.pid])
        pytest.fail(f"ray start {args[0]} failed ({code}): {log.read_text()[-3000:]}")
    return node.pid


def _ray(cluster: Cluster, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "ray"), *args], env=cluster.env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    token = root / "auth_token"
    token.write_text(os.urandom(32).hex())
    token.chmod(0o600)
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN", "PYTHONPATH")}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token),
               PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", RAY_USAGE_STATS_ENABLED="0")
    # Ray's unix sockets live under the temp dir: keep its path short (108-byte limit).
    temp = tempfile.mkdtemp(prefix="gaia-ray-")
    gcs, dashboard, client, agent1, agent2 = _free_ports(5)
    sessions: list[int] = []
    try:
        sessions.append(_start_node(
            ["--head", "--port", str(gcs), "--dashboard-host", "127.0.0.1",
             "--dashboard-port", str(dashboard), "--include-dashboard", "true",
             "--ray-client-server-port", str(client), "--dashboard-agent-listen-port",
             str(agent1), "--num-cpus", "1", "--num-gpus", "0", "--temp-dir", temp],
            env, root, root / "head.log"))
        sessions.append(_start_node(
            ["--address", f"127.0.0.1:{gcs}", "--dashboard-agent-listen-port", str(agent2),
             "--num-cpus", "1", "--num-gpus", "0"], env, root, root / "worker.log"))
        made = Cluster(f"http://127.0.0.1:{dashboard}", env, nodes=2, head_cwd=root)
        deadline = time.monotonic() + 60
        while _alive_nodes(made) < 2 and time.monotonic() < deadline:
            time.sleep(1)
        yield made
    finally:
        _stop(sessions)


def _alive_nodes(cluster: Cluster) -> int:
    done = _ray(cluster, "list", "nodes", "--address", cluster.dashboard, "--format", "json")
    if done.returncode != 0:
        return 0
    return sum(node["state"] == "ALIVE" for node in json.loads(done.stdout))


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """Two 2 s clips of a real face: one speaking, one silent."""
    from gaia.samples.speech import silence, speech_of_duration

    folder = tmp_path_factory.mktemp("cluster-raw") / "spk"
    folder.mkdir()
    portrait_clip(folder / "talking.mp4", 2.0, speech_of_duration(2.0))
    portrait_clip(folder / "silent.mp4", 2.0, silence(2.0))
    return folder.parent


def _local_run(inputs: Path, out: Path) -> None:
    """What each cluster actor does, in this process and without Ray."""
    from gaia.pipeline.inputs import resolve_inputs
    from gaia.pipeline.measure.config import MeasureConfig
    from gaia.pipeline.measure.worker_process import IsolatedMeasurer
    from gaia.pipeline.run_dir import RunDir

    run = RunDir(out)
    run.make()
    measurer = IsolatedMeasurer(MeasureConfig(), run.metrics, run.logs)
    try:
        for video in resolve_inputs([str(inputs)]):
            run.write_status(measurer.measure(video.uri, video.video_id, video.source))
    finally:
        measurer.close()
    run.write_videos_table()


def _videos(out: Path) -> list[dict]:
    rows = pq.read_table(out / "videos.parquet").drop_columns(list(TIMING)).to_pylist()
    return sorted(rows, key=lambda row: row["video_id"])


def _submit(cluster: Cluster, submission_id: str, *command: str) -> subprocess.CompletedProcess:
    """The README's line: ``ray job submit --address ... --submission-id ID -- COMMAND``."""
    return _ray(cluster, "job", "submit", "--address", cluster.dashboard, "--submission-id",
                submission_id, "--", *command, timeout=300)


@pytest.fixture(scope="module")
def r1(cluster, clips, tmp_path_factory) -> Path:
    """The clips measured by a job submitted to the cluster."""
    assert _alive_nodes(cluster) == cluster.nodes
    # A folder every node writes (a shared filesystem on a real cluster; one machine here).
    out = tmp_path_factory.mktemp("shared") / "runs" / "r1"
    submit = _submit(cluster, "gaia-measure-r1", "gaia", "curate", "measure", str(clips),
                     "--out", str(out))
    assert submit.returncode == 0, submit.stdout[-3000:] + submit.stderr[-3000:]
    return out


def test_job_submit_on_two_nodes_equals_a_local_run(cluster, clips, r1, tmp_path):
    status = _ray(cluster, "job", "status", "--address", cluster.dashboard, "gaia-measure-r1")
    assert "Job 'gaia-measure-r1' succeeded" in status.stdout
    logs = _ray(cluster, "job", "logs", "--address", cluster.dashboard, "gaia-measure-r1")
    assert "== measure summary" in logs.stdout and "ok: 2   failed: 0" in logs.stdout

    # Two actors, one per node (each node has one CPU), each with its own measuring log.
    assert len(list((r1 / "logs").glob("measure-*.log"))) == 2

    local = tmp_path / "local"
    _local_run(clips, local)
    cluster_rows, local_rows = _videos(r1), _videos(local)
    assert [r["status"] for r in cluster_rows] == ["ok", "ok"]
    assert cluster_rows == local_rows
    names = sorted(p.name for p in (r1 / "metrics").glob("*.parquet"))
    assert names == sorted(p.name for p in (local / "metrics").glob("*.parquet"))
    assert len(names) == 2
    for name in names:
        ours, theirs = pq.read_table(r1 / "metrics" / name), pq.read_table(
            local / "metrics" / name)
        assert ours.num_rows == 50 and ours.equals(theirs), name
        assert np.isfinite(np.asarray(ours["yaw_deg"].to_pylist(), dtype=float)).any()


def test_submitting_again_resumes_under_a_new_submission_id(cluster, clips, r1):
    command = ("gaia", "curate", "measure", str(clips), "--out", str(r1))
    again = _submit(cluster, "gaia-measure-r1-again", *command)
    assert again.returncode == 0 and "2 already done, 0 to measure" in again.stdout
    used = _submit(cluster, "gaia-measure-r1", *command)  # Ray refuses a used submission id
    assert used.returncode != 0 and "already exists" in used.stdout + used.stderr


def test_a_relative_out_is_refused_under_job_submit(cluster, clips, tmp_path):
    """A job's working directory is the head node's (or Ray's copy of ``--working-dir``):
    a relative --out would land where no other node writes, so gaia refuses it at once."""
    out = Path("relative-runs") / tmp_path.name
    done = _submit(cluster, "gaia-measure-relative", "gaia", "curate", "measure",
                   str(clips / "spk" / "talking.mp4"), "--out", str(out))
    assert done.returncode == 1
    assert f"gaia: error: --out {out} is relative" in done.stdout
    assert "pass an absolute --out" in done.stdout
    assert not (cluster.head_cwd / out).exists()


def test_a_failed_job_makes_job_submit_fail_with_gaias_error(cluster, tmp_path):
    done = _submit(cluster, "gaia-measure-missing", "gaia", "curate", "measure",
                   str(tmp_path / "missing"), "--out", str(tmp_path / "out"))
    assert done.returncode == 1
    assert "gaia: error: INPUT" in done.stdout and "does not exist" in done.stdout


def test_a_client_without_the_token_is_refused(cluster, tmp_path):
    env = {k: v for k, v in cluster.env.items() if not k.startswith("RAY_AUTH")}
    env["HOME"] = str(tmp_path)  # no ~/.ray/auth_token either
    done = subprocess.run([str(BIN / "ray"), "job", "list", "--address", cluster.dashboard],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "Missing authentication token" in done.stdout + done.stderr
