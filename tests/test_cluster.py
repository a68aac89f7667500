"""``ray job submit`` on a 2-node Ray cluster with token authentication, as the README shows it.

A head and a second node (one CPU each) start on this machine with ``RAY_AUTH_MODE=token`` and a
token file of the test's own; ``gaia curate measure`` goes in with ``ray job submit`` and its
``metrics/`` and ``videos.parquet`` must equal those of a local run on the same clips (the same
supervised measuring process, without Ray). No GPU: everything runs on CPU.

The node-loss tests lose the worker node in the middle of a measure and of an extract job; the
job must end on the head node with the outputs of a run without the fault. They leave the worker
node dead, and whatever needs two nodes next starts it again (``_ensure_two_nodes``): a restart
costs seconds and only when a node was lost, and no test depends on running after another.

The cluster is stopped by killing the processes of its own sessions, not with ``ray stop``,
which stops every Ray process on the machine (other tests' embedded clusters included).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.conftest import portrait_clip

# A real two-node cluster costs about 110 s to start and to submit the first job on 2 cores,
# so the whole module is behind the slow marker (make test-slow), as its node-loss cases were.
pytestmark = [pytest.mark.skipif(not sys.platform.startswith("linux"),
                                 reason="stops the cluster through /proc"),
              pytest.mark.slow]

BIN = Path(sys.executable).parent
TIMING = ("elapsed_s", "cpu_s")  # the only columns allowed to differ between runs
WORKER_PORTS = (10002, 19999)  # ray start's default --min-worker-port, --max-worker-port
# The head's health checks of the other nodes: a lost node is declared dead after 3 missed
# checks 1 s apart (Ray's defaults, 5 checks 3 s apart, take about 15 s) so that the node-loss
# tests wait seconds for Ray to notice, not most of a minute. A live node answers each check
# within Ray's 10 s timeout even on a loaded machine: no node is declared dead by mistake.
FAST_NODE_DEATH = {"health_check_period_ms": 1000, "health_check_failure_threshold": 3}


@dataclass(frozen=True)
class Cluster:
    dashboard: str  # the job server's address, http://127.0.0.1:PORT
    env: dict  # what a client on the head node has: the token path, the venv on PATH
    nodes: int
    head_cwd: Path  # where `ray start --head` ran: a job's working directory
    worker: WorkerNode  # the second node, which the node-loss tests stop and start again


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


class WorkerNode:
    """The second node, kept by its session so that a test can lose it alone and start it again.

    ``lose`` is a machine that disappears at once: every process of the node is frozen
    (SIGSTOP) before any is killed, so none of them sees another die and reacts (an actor
    that saw its measuring child die first would record the video as crashed, which is what
    a crashing input looks like, not a lost node).
    """

    def __init__(self, args: list[str], env: dict, cwd: Path, log: Path) -> None:
        self._start = (args, env, cwd, log)
        self.session: int | None = None

    def start(self) -> None:
        self.session = _start_node(*self._start)

    def pids(self) -> list[int]:
        return _session_pids(self.session) if self.session is not None else []

    def lose(self) -> None:
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        deadline = time.monotonic() + 10
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not self.pids(), "the worker node's processes outlived SIGKILL"


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
    head: list[int] = []
    worker = WorkerNode(["--address", f"127.0.0.1:{gcs}", "--dashboard-agent-listen-port",
                         str(agent2), "--num-cpus", "1", "--num-gpus", "0"],
                        env, root, root / "worker.log")
    try:
        head.append(_start_node(
            ["--head", "--port", str(gcs), "--dashboard-host", "127.0.0.1",
             "--dashboard-port", str(dashboard), "--include-dashboard", "true",
             "--ray-client-server-port", str(client), "--dashboard-agent-listen-port",
             str(agent1), "--num-cpus", "1", "--num-gpus", "0", "--temp-dir", temp,
             "--system-config", json.dumps(FAST_NODE_DEATH)],
            env, root, root / "head.log"))
        worker.start()
        made = Cluster(f"http://127.0.0.1:{dashboard}", env, nodes=2, head_cwd=root,
                       worker=worker)
        _ensure_two_nodes(made)
        yield made
    finally:
        _stop([*head, *([worker.session] if worker.session is not None else [])])
        shutil.rmtree(temp, ignore_errors=True)  # Ray's session folders: logs, sockets


def _alive_nodes(cluster: Cluster) -> int:
    done = _ray(cluster, "list", "nodes", "--address", cluster.dashboard, "--format", "json")
    if done.returncode != 0:
        return 0
    return sum(node["state"] == "ALIVE" for node in json.loads(done.stdout))


def _ensure_two_nodes(cluster: Cluster) -> None:
    """Both nodes up: a node-loss test leaves the worker node dead, and whatever runs next and
    needs it (a later test, or this module's fixtures in a ``-k`` selection) starts it again
    here, a few seconds, only when it is gone."""
    if not cluster.worker.pids():
        cluster.worker.start()
    deadline = time.monotonic() + 60
    while _alive_nodes(cluster) != cluster.nodes:
        assert time.monotonic() < deadline, f"the cluster has not {cluster.nodes} live nodes"
        time.sleep(0.5)
    # A node just started has no idle Python worker yet; an actor placed there first waits for
    # one, and the head's actor may meanwhile take every item. Best effort: up to 20 s.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(
            b"ray::IDLE" in _cmdline(pid) for pid in cluster.worker.pids()):
        time.sleep(0.2)


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
    _ensure_two_nodes(cluster)
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


def _start_submit(cluster: Cluster, submission_id: str, *command: str) -> subprocess.Popen:
    """``_submit`` left running: it prints the job's output and exits with its outcome."""
    return subprocess.Popen([str(BIN / "ray"), "job", "submit", "--address", cluster.dashboard,
                             "--submission-id", submission_id, "--", *command],
                            env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _lose_worker_mid_item(cluster: Cluster, job: subprocess.Popen) -> bool:
    """Lose the worker node while its actor works on an item; False when the job ended
    before the worker node took one (the head's actor can take every item when the worker's
    starts late, as on a loaded machine).

    Ray titles an actor's process ``ray::MapWorker(...).submit`` while a task runs in it (and
    ``ray::MapWorker(...)`` between tasks), so the item in flight there is the one lost. Every
    item takes seconds here and the title is read every 50 ms: the item cannot finish first.
    """
    deadline = time.monotonic() + 120
    while not any(b".submit" in _cmdline(pid) for pid in cluster.worker.pids()):
        if job.poll() is not None:
            return False
        assert time.monotonic() < deadline, "the worker node's actor never took an item"
        time.sleep(0.05)
    cluster.worker.lose()
    return True


def _submit_and_lose_the_worker(cluster: Cluster, name: str, fresh: Callable[[], None],
                                *command: str) -> str:
    """Submit ``command`` and lose the worker node mid-item; the job's output. Up to three
    tries, each on a fresh output (``fresh``), for a job whose items all ran on the head."""
    for attempt in range(3):
        fresh()
        _ensure_two_nodes(cluster)
        job = _start_submit(cluster, f"{name}-{attempt}", *command)
        if _lose_worker_mid_item(cluster, job):
            return _finished(job)
        job.communicate()
    pytest.fail("in three tries the worker node never took an item before the job ended")


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _finished(job: subprocess.Popen) -> str:
    try:
        output, _ = job.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        job.kill()
        output, _ = job.communicate()
        pytest.fail(f"the job did not end after the node was lost: {output[-3000:]}")
    assert job.returncode == 0, output[-3000:]
    return output


def _files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())  # hidden partial files included


def test_measure_finishes_on_the_remaining_node_when_the_worker_node_is_lost(
        cluster, clips, r1, tmp_path):
    """The video in flight on the lost node is measured again on the head node (Ray restarts
    its actor there once the head's own actor is done): every video is measured once and the
    run equals ``r1``, a run with no fault; no video is recorded as failed for a lost node."""
    out = tmp_path / "shared" / "lost"
    output = _submit_and_lose_the_worker(
        cluster, "gaia-measure-node-lost", lambda: shutil.rmtree(out, ignore_errors=True),
        "gaia", "curate", "measure", str(clips), "--out", str(out))
    assert "ok: 2   failed: 0" in output
    assert _videos(out) == _videos(r1)
    for folder in ("status", "metrics"):
        assert _files(out / folder) == _files(r1 / folder)
    for name in _files(r1 / "metrics"):
        assert pq.read_table(out / "metrics" / name).equals(pq.read_table(r1 / "metrics" / name))


def _samples(shards: Path) -> dict[str, dict[str, bytes]]:
    """Every sample's members by key; a key twice in the shards fails."""
    import tarfile

    found: dict[str, dict[str, bytes]] = {}
    for shard in sorted(shards.glob("*.tar")):
        with tarfile.open(shard) as archive:
            for member in archive.getmembers():
                key, _, name = member.name.partition(".")
                assert name not in found.setdefault(key, {}), f"{member.name} written twice"
                found[key][name] = archive.extractfile(member).read()
    return found


def test_extract_finishes_on_the_remaining_node_when_the_worker_node_is_lost(
        cluster, r1, tmp_path):
    """The video whose clips were being cut on the lost node is cut again on the head node;
    the driver, the single shard writer, gets its clips once: the shards, manifest and stats
    equal those of the same extract run in this process with no fault."""
    from gaia.pipeline.extract.job import run_extract

    cut = ("--preset", "vae", "--set", "segments.min_s=1")  # 2 s clips: one clip each
    lost, reference = tmp_path / "lost", tmp_path / "reference"
    shutil.copytree(r1, reference)
    run_extract(reference, "vae", overrides=["segments.min_s=1"], use_ray=False,
                log=lambda _: None)

    def fresh() -> None:
        shutil.rmtree(lost, ignore_errors=True)
        shutil.copytree(r1, lost)

    output = _submit_and_lose_the_worker(cluster, "gaia-extract-node-lost", fresh, "gaia",
                                         "curate", "extract", str(lost), *cut)
    assert "2 written now, 0 failed" in output
    ours, theirs = lost / "shards" / "vae", reference / "shards" / "vae"
    assert _files(ours) == _files(theirs)
    assert len(_samples(ours)) == 2 and _samples(ours) == _samples(theirs)
    for table in ("manifest.parquet", "failures.parquet"):
        assert pq.read_table(ours / table).equals(pq.read_table(theirs / table))
    assert json.loads((ours / "stats.json").read_text()) == json.loads(
        (theirs / "stats.json").read_text())
