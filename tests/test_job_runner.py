"""The shared job runner and what it checks before any work: the output-folder lock (a second
run refused, naming the first, with the first run's files intact; a killed run's lock taken
over; racers for a stale lock, one winner), ``--out`` made absolute before anything moves,
``--out`` that is a file, a mistyped preset of ``gaia curate run`` found before measuring, and
``--workers`` below 1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gaia.cli import main
from gaia.pipeline.runner.job_runner import Job, run_job
from gaia.pipeline.runner.out_lock import (
    LOCK_NAME,
    OutputInUseError,
    hold_output,
    lock_holder,
)

ROOT = Path(__file__).resolve().parent.parent
# Holds FOLDER's lock until its standard input closes; says "held" once it has it.
HOLDER = """
import sys
from gaia.pipeline.runner.out_lock import OutputInUseError, hold_output
try:
    with hold_output(sys.argv[1], command="gaia curate measure raw/ --out run (the first run)"):
        print("held", flush=True)
        sys.stdin.read()
except OutputInUseError as err:
    print("refused", err, flush=True)
"""


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _holder(folder: Path) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=_env())
    assert child.stdout.readline().strip() == "held"
    return child


def _release(child: subprocess.Popen) -> None:
    child.stdin.close()
    child.wait(timeout=30)


@pytest.fixture(scope="module")
def clip() -> str:
    from gaia.samples.shipped import carphone_path

    return str(carphone_path())


def test_a_second_run_is_refused_before_it_touches_the_first_runs_files(tmp_path, clip,
                                                                        capsys):
    from gaia.pipeline.measure.job import run_measure

    out = tmp_path / "run"
    first = _holder(out)
    try:
        # The first run's state: a finished video and a metrics file still being written.
        (out / "status").mkdir()
        (out / "status" / "done.json").write_text("{}")
        in_flight = out / "metrics" / ".video.parquet.0123abcd.partial"
        in_flight.parent.mkdir()
        in_flight.write_bytes(b"half a parquet file")

        with pytest.raises(OutputInUseError) as refused:
            run_measure([clip], out, use_ray=False, log=lambda _: None)
        message = str(refused.value)
        assert f"pid {first.pid} on " in message and "since 20" in message
        assert "(the first run)" in message and str(out / LOCK_NAME) in message
        assert in_flight.read_bytes() == b"half a parquet file"
        assert not (out / "config.yaml").exists()

        assert main(["curate", "measure", clip, "--out", str(out)]) == 2
        shown = capsys.readouterr().err.strip()
        assert shown.startswith("gaia: error: ") and "\n" not in shown
        assert f"pid {first.pid}" in shown
        assert in_flight.is_file()
    finally:
        _release(first)
    assert not (out / LOCK_NAME).exists()  # released by the holder on its way out
    with hold_output(out):
        assert lock_holder(out)["pid"] == os.getpid()


def test_a_killed_runs_lock_is_taken_over_by_the_next_run(tmp_path):
    out = tmp_path / "run"
    killed = _holder(out)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(timeout=30)
    assert lock_holder(out)["pid"] == killed.pid  # kill -9 leaves its record behind

    lines: list[str] = []
    with hold_output(out, log=lines.append):
        assert lock_holder(out)["pid"] == os.getpid()
        with hold_output(out):  # re-entrant: `gaia curate run` holds it over measure, extract
            pass
        assert lock_holder(out)["pid"] == os.getpid()
        second = subprocess.run([sys.executable, "-c", HOLDER, str(out)], input="",
                                capture_output=True, text=True, env=_env(), timeout=60)
        assert second.stdout.startswith("refused") and f"pid {os.getpid()}" in second.stdout
    assert len(lines) == 1 and f"pid {killed.pid}" in lines[0] and "took over" in lines[0]
    assert not (out / LOCK_NAME).exists()


def test_racers_for_a_stale_lock_have_one_winner(tmp_path):
    out = tmp_path / "run"
    killed = _holder(out)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(timeout=30)
    go = tmp_path / "go"
    racer = ("import os, sys, time\n"
             f"while not os.path.exists({str(go)!r}): time.sleep(0.005)\n" + HOLDER)
    racers = [subprocess.Popen([sys.executable, "-c", racer, str(out)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, env=_env())
              for _ in range(4)]
    try:
        time.sleep(1.0)  # let them all start and wait on the same signal
        go.touch()
        answers = [child.stdout.readline().split()[0] for child in racers]
    finally:
        for child in racers:
            _release(child)
    assert sorted(answers) == ["held", "refused", "refused", "refused"]


def test_the_lock_is_released_on_errors_and_interrupts(tmp_path):
    out = tmp_path / "run"
    for error in (ValueError("bad"), KeyboardInterrupt()):
        with pytest.raises(type(error)), hold_output(out):
            assert (out / LOCK_NAME).is_file()
            raise error
        assert not (out / LOCK_NAME).exists()


def test_a_lock_from_another_host_is_not_taken_over(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    record = {"host": "node-7", "pid": 4242, "started": "2026-01-01T00:00:00Z",
              "command": "gaia curate measure"}
    (out / LOCK_NAME).write_text(json.dumps(record))  # no process holds a flock on it
    match = "another host: pid 4242 on node-7"
    with pytest.raises(OutputInUseError, match=match) as refused, hold_output(out):
        pass
    assert f"delete {out / LOCK_NAME}" in str(refused.value)
    assert lock_holder(out) == record


class _Square:
    built, closed_after = 0, False

    def __init__(self, offset: int) -> None:
        type(self).built += 1
        self.offset = offset

    def __call__(self, row: dict) -> dict:
        return {"n": row["n"], "value": row["n"] ** 2 + self.offset}

    def close(self) -> None:
        type(self).closed_after = True


def test_run_job_skips_what_is_done_and_merges_the_rest_in_process(tmp_path):
    done = {1, 3}
    order: list[str] = []

    def merge(items, todo, rows):
        order.append("merge")
        return len(items), len(todo), sorted((r["n"], r["value"]) for r in rows)

    job = Job(name="toy", out=tmp_path / "out", prepare=lambda: order.append("prepare"),
              plan=lambda: [{"n": n} for n in range(5)],
              pending=lambda item: None if item["n"] in done else item,
              worker=_Square, worker_args={"offset": 10}, merge=merge)
    assert run_job(job, use_ray=False) == (5, 3, [(0, 10), (2, 14), (4, 26)])
    assert order == ["prepare", "merge"] and _Square.built == 1 and _Square.closed_after
    assert not (tmp_path / "out" / LOCK_NAME).exists()
    with pytest.raises(ValueError, match="--workers 0: give 1 or more"):
        run_job(job, use_ray=False, workers=0)


def test_relative_out_is_where_the_user_meant(tmp_path):
    here = tmp_path / "caller"
    here.mkdir()
    empty = here / "empty.mp4"
    empty.write_bytes(b"")
    gaia = [sys.executable, "-m", "gaia.cli", "curate", "measure", "empty.mp4", "--out",
            "runs/r1", "--workers", "1"]
    done = subprocess.run(gaia, cwd=here, capture_output=True, text=True, env=_env(),
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    statuses = list((here / "runs" / "r1" / "status").glob("*.json"))
    assert len(statuses) == 1
    assert json.loads(statuses[0].read_text())["reason"] == "empty_file"

    # A `ray job submit` driver runs in a temporary copy of the working directory: refused.
    submitted = subprocess.run(gaia[:-2] + ["--out", "runs/r2"], cwd=here, capture_output=True,
                               text=True, timeout=120,
                               env={**_env(), "RAY_JOB_CONFIG_JSON_ENV_VAR": "{}"})
    assert submitted.returncode == 2
    assert "is relative, and under `ray job submit`" in submitted.stderr
    assert "Traceback" not in submitted.stderr and not (here / "runs" / "r2").exists()


def test_out_that_is_a_file_is_a_one_line_error(tmp_path, clip, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    for argv in (["curate", "measure", clip, "--out", str(a_file)],
                 ["curate", "extract", str(a_file), "--preset", "vae"],
                 ["encode-latents", "--vae", str(tmp_path), "--shards", str(tmp_path),
                  "--out", str(a_file)]):
        assert main(argv) == 2
        shown = capsys.readouterr().err.strip()
        assert shown.startswith("gaia: error: ") and "is a file, not a folder" in shown
        assert "\n" not in shown
    assert a_file.read_text() == "not a folder"


def test_a_mistyped_preset_fails_before_any_video_is_measured(tmp_path, clip, capsys):
    out = tmp_path / "run"
    assert main(["curate", "run", clip, "--out", str(out), "--preset", "vaee"]) == 2
    shown = capsys.readouterr().err
    assert "'vaee'" in shown and "vae" in shown.replace("'vaee'", "") and "s2m" in shown
    assert not out.exists()  # nothing measured, nothing written


def test_workers_below_one_are_refused(tmp_path, clip, capsys):
    from gaia.pipeline.measure.job import run_measure

    for workers in ("0", "-1"):
        with pytest.raises(SystemExit) as stopped:
            main(["curate", "measure", clip, "--out", str(tmp_path / "run"),
                  "--workers", workers])
        assert stopped.value.code == 2
        assert f"--workers: {workers}: give 1 or more" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--workers -1"):
        run_measure([clip], tmp_path / "run", workers=-1, log=lambda _: None)
    assert not (tmp_path / "run").exists()
    shown = subprocess.run([sys.executable, "-m", "gaia.cli", "curate", "run", "--help"],
                           capture_output=True, text=True, env=_env(), check=True).stdout
    assert "1 or more (default: one per CPU" in " ".join(shown.split())


# A job on an embedded Ray whose worker process dies on item 2 (as a decoder's crash would);
# prints what the driver saw and when.
CRASHING_JOB = """
import os, sys, time
from gaia.common.run_errors import RunStoppedError
from gaia.pipeline.runner.job_runner import Job, run_job

class Dies:
    def __init__(self):
        pass
    def __call__(self, row):
        if row["n"] == 2:
            os._exit(1)
        return {"n": row["n"]}

seen = []
def merge(items, todo, rows):
    for row in rows:
        seen.append(row["n"])
started = time.monotonic()
try:
    run_job(Job(name="toy", out=sys.argv[1], plan=lambda: [{"n": n} for n in range(4)],
                pending=lambda item: item, worker=Dies, worker_args={}, merge=merge),
            workers=1, log=lambda _: None)
except RunStoppedError as err:
    print("stopped", round(time.monotonic() - started), sorted(seen), err.message, flush=True)
"""


@pytest.mark.slow  # an embedded Ray and four deaths, about 15 s (make test-slow)
def test_a_worker_that_keeps_dying_ends_the_job_with_one_line(tmp_path):
    """Ray restarts a dead actor and retries its item forever by default: an input that
    crashes the worker process would loop without end. The runner bounds the restarts, so the
    job ends (within seconds of the last death) with a one-line ``RunStoppedError`` that says
    what happened, the items done before it kept."""
    env = {k: v for k, v in _env().items() if k != "RAY_ADDRESS"}
    result = subprocess.run([sys.executable, "-c", CRASHING_JOB, str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=240, env=env)
    lines = [line for line in result.stdout.splitlines() if line.startswith("stopped")]
    assert lines, result.stdout + result.stderr[-3000:]
    _, seconds, *rest = lines[0].split(" ", 2)
    assert "died 4 times" in lines[0] and "run the same command again" in lines[0], lines[0]
    assert rest[0].startswith("[0"), "the item finished before the crash was merged"
    assert int(seconds) < 120
