"""A full disk ends the run with one line, keeps nothing half-written, and a rerun completes.

Each job writes onto a small tmpfs that the test fills at a chosen moment (from the job's own
progress lines, so the failure lands mid-run, after some outputs are finished). Then:

- the job raises (in process) or the ``gaia`` command exits 2 with one ``gaia: error:`` line
  within seconds (on Ray: the case that used to hang in Ray Data's shutdown);
- no ``.partial`` file is left and no input is recorded as failed for the disk's sake (a
  full disk is the run's failure, ``gaia.common.run_errors``);
- after the filler is deleted, the same call resumes and its outputs equal a run that never
  met a full disk.

Mounting needs root (CI runs the tests as root); elsewhere these tests skip and say so.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from gaia.common.run_errors import RunStoppedError

BIN = Path(sys.executable).parent
TIMING = {"elapsed_s", "cpu_s", "path"}  # what may differ between two runs of the same videos


@pytest.fixture()
def small_disk(tmp_path) -> Path:
    """A 24 MB tmpfs of the test's own, unmounted at the end."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs ({result.stderr.strip() or 'not root'}): the "
                    "disk-full tests need root, as CI has")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave: int = 0) -> Path:
    """Fill ``disk`` up to ``leave`` free bytes with one file; returns it."""
    filler = disk / "filler"
    chunk = b"\0" * (1 << 16)
    with open(filler, "ab") as handle:
        while True:
            free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
            if free <= leave:
                break
            try:
                handle.write(chunk[:max(4096, min(len(chunk), free - leave))])
                handle.flush()
            except OSError as err:
                assert err.errno == errno.ENOSPC
                break
    return filler


def fill_when(disk: Path, marker: str, lines: list[str]):
    """A job log that fills ``disk`` the first time a line contains ``marker``."""
    def log(line: str) -> None:
        lines.append(line)
        if marker in line and not (disk / "filler").exists():
            fill(disk)
    return log


def partials(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.partial"))


def members(folder: Path) -> dict[str, bytes]:
    """Every sample member of every shard in ``folder``, by name: equal whatever the shards'
    boundaries (a resumed run may pack its clips into other shards)."""
    out: dict[str, bytes] = {}
    for shard in sorted(folder.glob("*.tar")):
        with tarfile.open(shard) as archive:
            for member in archive.getmembers():
                assert member.name not in out, f"{member.name} written twice"
                out[member.name] = archive.extractfile(member).read()
    return out


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory) -> Path:
    """2 s of the astronaut speaking: a run of two videos measured three times stays quick."""
    from gaia.samples.speech import speech_of_duration
    from tests.conftest import portrait_clip

    return portrait_clip(tmp_path_factory.mktemp("short") / "astronaut_2s.mp4", 2.0,
                         speech_of_duration(2.0))


def test_measure_stops_on_a_full_disk_and_resumes(small_disk, short_clip, cartoon_clip,
                                                 tmp_path):
    from gaia.pipeline.measure.job import run_measure

    inputs = [str(short_clip), str(cartoon_clip)]
    out, lines = small_disk / "run", []
    with pytest.raises(RunStoppedError) as raised:
        run_measure(inputs, out, use_ray=False, log=fill_when(small_disk, "1/2", lines))
    message = str(raised.value)
    assert raised.value.errno == errno.ENOSPC and "\n" not in message
    assert partials(out) == []
    statuses = {p.stem: json.loads(p.read_text()) for p in (out / "status").glob("*.json")}
    assert len(statuses) == 1, "only the video measured before the disk filled is recorded"
    assert all(s["status"] == "ok" for s in statuses.values())
    done = next(iter(statuses.values()))["path"]
    stopped = next(path for path in inputs if path != done)
    assert "run the same command again" in message and Path(stopped).name in message

    (small_disk / "filler").unlink()
    run_measure(inputs, out, use_ray=False, log=lines.append)
    assert any("1 already done, 1 to measure" in line for line in lines)
    clean = run_measure(inputs, tmp_path / "clean", use_ray=False, log=lambda _: None)
    assert clean.status["ok"] == 2
    for name in ("videos.parquet", *[f"metrics/{p.name}" for p in (out / "metrics").iterdir()]):
        resumed, fresh = pq.read_table(out / name), pq.read_table(tmp_path / "clean" / name)
        keep = [c for c in fresh.column_names if c not in TIMING]
        assert resumed.select(keep).equals(fresh.select(keep)), name


def test_extract_stops_on_a_full_disk_and_resumes(small_disk, measured_sample, sample_shards):
    from gaia.pipeline.extract.job import ExtractConfig, run_extract

    run = small_disk / "run"
    shutil.copytree(measured_sample.root, run)
    config, lines = ExtractConfig(shard_mb=0.5, val_fraction=0.0), []
    with pytest.raises(OSError) as raised:  # the driver's shard writer: in process, the OSError
        run_extract(run, "vae", config=config, use_ray=False,
                    log=fill_when(small_disk, "[extract] shard ", lines))
    assert raised.value.errno == errno.ENOSPC
    shards = run / "shards" / "vae"
    assert partials(run) == [], "the shard in progress is deleted, not left"
    finished = sorted(shards.glob("*.tar"))
    assert len(finished) == 1 and len(list((shards / ".manifest").iterdir())) == 1

    (small_disk / "filler").unlink()
    run_extract(run, "vae", config=config, use_ray=False, log=lines.append)
    assert members(shards) == members(sample_shards)
    manifest = pq.read_table(shards / "manifest.parquet")
    assert sorted(manifest.column("key").to_pylist()) == sorted(
        pq.read_table(sample_shards / "manifest.parquet").column("key").to_pylist())


def test_encode_latents_stops_on_a_full_disk_and_resumes(small_disk, sample_shards,
                                                        vae_checkpoint, latent_shards):
    from gaia.pipeline.latents.job import run_encode_latents

    out, lines = small_disk / "latents", []
    assert len(list(sample_shards.glob("*.tar"))) >= 2, "the sample must span shards"
    with pytest.raises(OSError) as raised:
        run_encode_latents(vae_checkpoint, str(sample_shards), out, use_ray=False,
                           log=fill_when(small_disk, ".tar: ", lines))
    assert raised.value.errno == errno.ENOSPC
    assert partials(out) == []
    (small_disk / "filler").unlink()
    run_encode_latents(vae_checkpoint, str(sample_shards), out, use_ray=False,
                       log=lines.append)
    assert any("1 already done" in line for line in lines), lines
    assert members(out) == members(latent_shards)


def _gaia(args: list[str], timeout: float = 120.0) -> tuple[int, str, float]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # an embedded Ray
    started = time.monotonic()
    result = subprocess.run([str(BIN / "gaia"), *args], capture_output=True, text=True,
                            timeout=timeout, env=env)
    return result.returncode, result.stderr, time.monotonic() - started


def _one_error_line(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("gaia: error:")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr and "Ray is not initialized" not in stderr, stderr
    return errors[0]


@pytest.mark.slow  # an embedded Ray, about 15 s (make test-slow); in make test the
# in-process cases and ray_failure's unwrapping (test_fail_safe_small) hold the same rules
def test_on_ray_a_worker_that_meets_a_full_disk_ends_the_job_in_one_line(small_disk,
                                                                       talking_clip):
    """Measure writes its metrics in the actors: the worker's full disk reaches the driver
    through Ray (its own exception, with its errno) and ends the command with exit status 2
    and one line that names the video and says a rerun resumes."""
    fill(small_disk, leave=48 << 10)  # the run's small files fit; a video's metrics do not
    code, stderr, seconds = _gaia(["curate", "measure", str(talking_clip), "--out",
                                   str(small_disk / "measured"), "--workers", "1"])
    line = _one_error_line(stderr)
    assert code == 2 and "No space left on device" in line, stderr
    assert talking_clip.name in line and "run the same command again" in line
    assert partials(small_disk) == [] and not list((small_disk / "measured/status").iterdir())


@pytest.mark.slow  # another embedded Ray (about 15 s); make test-slow runs it
def test_on_ray_the_drivers_full_disk_is_one_line_and_an_exit(small_disk, measured_sample):
    """Extract's driver writes the shards while Ray Data streams the clips: a full disk there
    used to print tracebacks and then hang in Ray Data's shutdown at exit. Now: exit status 2,
    one line, within seconds, and no partial shard left."""
    run = small_disk / "run"
    shutil.copytree(measured_sample.root, run)
    fill(small_disk, leave=48 << 10)  # room to start, not for the first shard
    code, stderr, seconds = _gaia(["curate", "extract", str(run), "--preset", "vae",
                                   "--workers", "1"])
    line = _one_error_line(stderr)
    assert code == 2 and "No space left on device" in line and seconds < 90, (seconds, stderr)
    assert " to cut -> " in stderr, "the error must come from the job on Ray, not before it"
    assert partials(run) == []


def test_the_lock_record_needs_no_space(small_disk):
    """On a disk with no byte free the lock is still taken (its record is only a name), so
    a rerun can go on to remove its partial files, which is what frees the space."""
    from gaia.pipeline.runner.out_lock import LOCK_NAME, hold_output

    out = small_disk / "run"
    out.mkdir()
    (out / ".shard-000001.tar.0a.partial").write_bytes(b"x" * 8192)
    fill(small_disk)
    lines: list[str] = []
    with hold_output(out, log=lines.append):
        assert (out / LOCK_NAME).exists()
    assert any("could not write the lock record" in line for line in lines)
