"""The smaller fail-safe items of issue 25: each refusal is one line that names what is wrong."""

from __future__ import annotations

import os

import pytest


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-1", "soon"])
def test_dist_timeout_must_be_finite_and_positive(value, capsys):
    from gaia.training.cli import build_train_parser

    with pytest.raises(SystemExit) as raised:
        build_train_parser().parse_args(["vae", "--config", "vae-tiny", "--shards", "s",
                                         "--out", "o", f"--dist-timeout={value}"])
    assert raised.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--dist-timeout" in error and value in error


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 0.0, -1.0])
def test_init_world_refuses_a_timeout_that_is_not_finite_and_positive(value):
    from gaia.training import distributed

    with pytest.raises(ValueError, match="--dist-timeout"):
        distributed.init_world("cpu", value)


def _pickled_object(path):
    """A file torch's safe loader refuses: it pickles an object of a class it does not allow."""
    import argparse

    import torch

    torch.save({"state": argparse.Namespace(step=1)}, path)
    return path


def _loaders():
    from gaia.evaluation.inception import load_inception
    from gaia.pipeline.speech.denoise import _unpickle_trusted
    from gaia.pipeline.speech.enhance import load_enhancer
    from gaia.pipeline.speech.syncnet import load_syncnet
    from gaia.training.checkpoint import load_checkpoint

    return {
        "checkpoint": lambda path: load_checkpoint(path),
        "inception": lambda path: load_inception(path),
        "syncnet": lambda path: load_syncnet(path),
        "demucs": lambda path: _unpickle_trusted(path),
        "enhancer": lambda path: load_enhancer("dns48", str(path), allow_untrained=True),
    }


@pytest.mark.parametrize("loader", ["checkpoint", "inception", "syncnet", "demucs", "enhancer"])
def test_a_refused_pickle_never_advises_weights_only_false(loader, tmp_path):
    import traceback

    path = _pickled_object(tmp_path / ("dns48.th" if loader == "enhancer" else "model.pt"))
    if loader == "enhancer":
        from gaia.common.weights import UNTRAINED_MARKER

        (tmp_path / UNTRAINED_MARKER).write_text("")
    with pytest.raises(ValueError) as raised:
        _loaders()[loader](path)
    message = str(raised.value)
    assert str(path) in message and "\n" not in message
    assert "weights_only" not in message
    # torch's own text (its advice to set weights_only to False) is not chained on either
    everything = "".join(traceback.format_exception(raised.value))
    assert "Weights only load failed" not in everything and "set to `False`" not in everything


@pytest.mark.parametrize("target_exists", [True, False])
def test_a_run_lock_that_is_a_symlink_is_refused_and_its_target_untouched(target_exists,
                                                                         tmp_path):
    from gaia.pipeline.runner.out_lock import LOCK_NAME, OutputInUseError, hold_output

    outside = tmp_path / "outside.txt"
    if target_exists:
        outside.write_text('{"host": "elsewhere", "pid": 1}')
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_NAME).symlink_to(outside)
    with pytest.raises(OutputInUseError, match="symbolic link") as refused, hold_output(out):
        pass
    assert str(out / LOCK_NAME) in str(refused.value) and "\n" not in str(refused.value)
    if target_exists:
        assert outside.read_text() == '{"host": "elsewhere", "pid": 1}'
    else:
        assert not outside.exists()
    assert (out / LOCK_NAME).is_symlink()
    from gaia.pipeline.runner.out_lock import lock_holder

    assert lock_holder(out) is None  # not read through the link either


@pytest.mark.parametrize("uri", ["s3://bucket/prefix", "gs://bucket/some/shards/"])
def test_inspect_names_a_store_uri_intact_when_it_refuses_it(uri, capsys):
    from gaia.cli import main

    with pytest.raises(SystemExit) as raised:
        main(["inspect", uri])
    assert raised.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("gaia inspect: error:") and uri in error
    assert uri.replace("://", ":/") not in error.replace(uri, "")


def test_inspect_reads_a_file_uri_as_its_local_folder(tmp_path):
    from gaia.pipeline.cli.inspect import shards_folder

    assert shards_folder(f"file://{tmp_path}") == tmp_path
    assert shards_folder(str(tmp_path)) == tmp_path


def _npy_with_header(path, header: bytes, version=(1, 0)):
    """A .npy file of the magic string and ``header`` as it is (no data after it)."""
    import struct

    size = struct.pack("<H" if version == (1, 0) else "<I", len(header))
    path.write_bytes(b"\x93NUMPY" + bytes(version) + size + header)
    return path


def _control_error(path, frames=5, size=64) -> str:
    from gaia.generation.control import read_control

    with pytest.raises(ValueError) as raised:
        read_control(path, frames, size)
    message = str(raised.value)
    assert message.startswith(f"--control {path}:") and "\n" not in message
    assert "allow_pickle" not in message and raised.value.__cause__ is None
    return message


@pytest.mark.parametrize("value", [1e300, -1e300, float("nan"), float("inf"), 129.0, -65.0])
def test_control_values_are_real_finite_and_within_the_image(value, tmp_path):
    import numpy as np

    track = np.full((5, 68, 2), 10.0)
    track[2, 30, 1] = value
    np.save(tmp_path / "bad.npy", track)
    message = _control_error(tmp_path / "bad.npy")
    assert "non-finite" in message or "give -64 to 128" in message


def test_control_values_at_the_bounds_are_read(tmp_path):
    import numpy as np

    from gaia.generation.control import read_control

    track = np.full((68, 2), 10.0)
    track[0], track[1] = -64.0, 128.0
    np.save(tmp_path / "edge.npy", track)
    held = read_control(tmp_path / "edge.npy", 3, 64)
    assert held.dtype == np.float32 and held.shape == (3, 68, 2) and held.max() == 128.0


@pytest.mark.parametrize("dtype", ["complex64", "complex128", "bool"])
def test_a_control_file_of_complex_or_bool_values_is_refused_not_cast(dtype, tmp_path):
    import numpy as np

    np.save(tmp_path / "c.npy", np.full((5, 68, 2), 10 + 0j).astype(dtype))
    assert f"dtype {dtype} is refused" in _control_error(tmp_path / "c.npy")


def test_a_control_file_with_a_giant_or_garbled_header_is_one_line(tmp_path):
    giant = _npy_with_header(tmp_path / "giant.npy", b" " * 60000 + b"\n")
    assert "header" in _control_error(giant)
    garbled = _npy_with_header(tmp_path / "garbled.npy", b"{'descr': <f4, oops\n")
    assert "header" in _control_error(garbled)
    (tmp_path / "empty.npy").write_bytes(b"")
    assert "header" in _control_error(tmp_path / "empty.npy")
    # a valid header claiming 10**12 frames: refused from the header, nothing allocated
    huge = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 68, 2), }"
    claimed = _npy_with_header(tmp_path / "huge.npy", huge.ljust(117) + b"\n")
    assert "shape (1000000000000, 68, 2)" in _control_error(claimed)
    # a header that fits, over data that is not there
    short = b"{'descr': '<f4', 'fortran_order': False, 'shape': (5, 68, 2), }"
    truncated = _npy_with_header(tmp_path / "short.npy", short.ljust(117) + b"\n")
    assert "not a readable plain .npy" in _control_error(truncated)


PLAN_VIDEOS = [("a", 40), ("b", 250), ("c", 3)]


def _plan(tmp_path, **changes):
    """A plan written by ``write_plan`` with ``changes`` applied to its JSON (a value of
    ``...`` removes the field)."""
    import json

    from gaia.evaluation.protocols import EvalVideo, write_plan

    path = tmp_path / "plan.json"
    document = write_plan(path, [EvalVideo(k, n) for k, n in PLAN_VIDEOS], seed=7, rounds=2,
                          frames_per_round=10)
    for key, value in changes.items():
        if value is ...:
            del document[key]
        else:
            document[key] = value
    path.write_text(json.dumps(document))
    return path


def _plan_error(path, expected=None) -> str:
    import time

    from gaia.evaluation.protocols import EvalVideo, read_plan

    began = time.monotonic()
    with pytest.raises(ValueError) as raised:
        read_plan(path, None if expected is None else [EvalVideo(k, n) for k, n in expected])
    assert time.monotonic() - began < 2  # refused from its sizes, not after replaying them
    message = str(raised.value)
    assert str(path) in message and "\n" not in message and raised.value.__cause__ is None
    return message


@pytest.mark.parametrize("rounds", [1e9, 10**9, 0, -1, True, "5", None])
def test_a_plans_rounds_are_checked_before_it_is_replayed(rounds, tmp_path):
    message = _plan_error(_plan(tmp_path, rounds=rounds))
    assert "rounds" in message and "1 to 1000" in message


def test_a_plans_videos_are_bounded_and_checked_against_the_data(tmp_path):
    huge = [{"key": "a", "frames": 10**12}, {"key": "b", "frames": 250}]
    assert "frames of a" in _plan_error(_plan(tmp_path, test_videos=huge))
    other = [("a", 40), ("b", 250), ("c", 4)]
    assert "other test videos" in _plan_error(_plan(tmp_path), expected=other)
    assert "other test videos" in _plan_error(_plan(tmp_path), expected=other[:2])
    assert "frames_per_round" in _plan_error(_plan(tmp_path, frames_per_round=10**12))


@pytest.mark.parametrize("change", [
    {"seed": -1}, {"seed": 1.5}, {"test_videos": {"a": 40}}, {"test_videos": [["a", 40]]},
    {"test_videos": [{"key": 7, "frames": 40}]}, {"cross_reenactment": []},
    {"self_reconstruction": [{"key": "a"}] * 3}, {"rounds": ...}, {"plan_version": 99}])
def test_a_malformed_plan_is_one_line(change, tmp_path):
    _plan_error(_plan(tmp_path, **change))


@pytest.mark.parametrize("text", ["not json", "[1, 2]", "", "[" * 100000, '{"rounds": 1e999}',
                                  "\udcff"])
def test_a_plan_that_is_not_json_or_not_an_object_is_one_line(text, tmp_path):
    path = tmp_path / "plan.json"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    assert "plan" in _plan_error(path)


def test_an_untouched_plan_still_replays(tmp_path):
    from gaia.evaluation.protocols import EvalVideo, cross_reenactment, read_plan

    videos = [EvalVideo(k, n) for k, n in PLAN_VIDEOS]
    pairs, drives = read_plan(_plan(tmp_path), videos)
    assert len(pairs) == 3 and drives == cross_reenactment(videos, 2, 10, 7)


def test_a_resumed_run_in_a_store_removes_the_stages_of_dead_runs(tmp_path, monkeypatch):
    import subprocess
    import sys

    from gaia.pipeline.runner import staging

    stages = tmp_path / "stages"
    stages.mkdir()
    monkeypatch.setenv("GAIA_STAGE_DIR", str(stages))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(gone.stdout)  # a process that has ended
    host = staging._host_tag()
    dead = stages / f"gaia-stage-{host}-{dead_pid}-abc123de"
    (dead / "measures").mkdir(parents=True)
    (dead / "measures" / "m.parquet").write_bytes(b"left by a killed run")
    kept = [stages / f"gaia-stage-{host}-{os.getpid()}-live0000",  # a live process's
            stages / f"gaia-stage-other-host-{dead_pid}-abc123de",  # another host's
            stages / "gaia-stage-k3j4h5g6"]  # named before stages carried their process
    for folder in kept:
        folder.mkdir()
    (stages / f"gaia-stage-{host}-{dead_pid}-notadir0").write_text("a file, not a stage")
    (tmp_path / "bucket" / "run").mkdir(parents=True)  # a file:// store: its folder is there
    lines = []
    with staging.staged_output(f"file://{tmp_path / 'bucket' / 'run'}", log=lines.append) as root:
        assert root.parent == stages.resolve()
        assert root.name.startswith(f"gaia-stage-{host}-{os.getpid()}-")
        assert not dead.exists() and all(folder.is_dir() for folder in kept)
    assert (stages / f"gaia-stage-{host}-{dead_pid}-notadir0").is_file()
    assert any("1 stage folder(s) of runs that are gone" in line and str(dead) in line
               for line in lines)
    assert not root.exists()


def _main_with(handler, capsys) -> tuple[int, list[str]]:
    """``gaia.cli.main`` on a real verb whose handler is replaced by ``handler``."""
    from gaia import cli

    parser = cli.build_parser()
    original = parser.parse_args

    def parse(argv=None):
        args = original(argv)
        args.handler = handler
        return args

    parser.parse_args = parse
    build = cli.build_parser
    cli.build_parser = lambda: parser
    try:
        code = cli.main(["inspect", "somewhere"])
    finally:
        cli.build_parser = build
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize(("error", "code", "says"), [
    (OSError(28, "No space left on device"), 2, "free space on the output's filesystem"),
    (OSError(30, "Read-only file system"), 2, "not read-only"),
    (PermissionError(13, "Permission denied"), 2, "Permission denied"),
    (RuntimeError("an unforeseen state\nwith a second line"), 1, "unexpected RuntimeError"),
    (KeyError("frames"), 1, "unexpected KeyError"),
])
def test_every_failure_is_one_line_and_an_exit_status(error, code, says, capsys):
    """Whatever a verb raises ends as one ``gaia: error:`` line, never a traceback: a full
    disk with what to free and that a rerun resumes (status 2), a bug as unexpected (1)."""
    def handler(_args):
        raise error

    status, lines = _main_with(handler, capsys)
    assert status == code
    assert len(lines) == 1 and lines[0].startswith("gaia: error: ") and says in lines[0], lines


def test_a_workers_error_wrapped_by_ray_keeps_its_own_message():
    """What Ray hands the driver: a wrapper whose ``cause`` is the worker's exception (its
    pickled copy). A worker's full disk keeps its errno and message; anything else names the
    innermost error and says that a rerun resumes."""
    from gaia.common.run_errors import RunStoppedError, stopped_message
    from gaia.pipeline.runner.job_runner import ray_failure

    class Wrapped(Exception):  # the shape of ray.exceptions.RayTaskError
        def __init__(self, cause: BaseException) -> None:
            super().__init__("ray::MapWorker(...) Traceback ... (remote frames)")
            self.cause = cause

    stopped = RunStoppedError(stopped_message("measuring a.mp4", OSError(28, "disk full")), 28)
    failure = ray_failure("measure", Wrapped(stopped))
    assert failure.errno == 28 and failure.message == stopped.message
    failure = ray_failure("extract", Wrapped(OSError(122, "Disk quota exceeded")))
    assert failure.errno == 122 and "raise the disk quota" in str(failure)
    failure = ray_failure("extract", Wrapped(TypeError("bad row\nmore")))
    assert failure.errno is None and "TypeError: bad row" in str(failure)
    assert "run the same command again" in str(failure) and "\n" not in str(failure)
