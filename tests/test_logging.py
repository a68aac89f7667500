"""Errors and log lines: a user sees one line saying what to do, ``--debug`` adds the
traceback; library code logs through ``logging`` (``gaia.common.logs``), never ``print``."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from gaia.common.logs import LOGGER, configure_logging

ROOT = Path(__file__).resolve().parents[1]


def gaia(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gaia.cli", *argv], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)


def test_an_error_is_one_line_with_a_hint_and_debug_adds_the_traceback(tmp_path):
    missing = str(tmp_path / "no-run")
    plain = gaia("curate", "tune", missing)
    assert plain.returncode == 2
    assert plain.stderr.count("\n") == 1, plain.stderr
    assert plain.stderr.startswith("gaia: error: ") and "videos.parquet not found" in plain.stderr
    assert plain.stderr.rstrip().endswith("(run with --debug for the traceback)")
    assert "Traceback" not in plain.stderr

    for argv in (("--debug", "curate", "tune", missing), ("curate", "tune", missing, "--debug")):
        debug = gaia(*argv)
        assert debug.returncode == 2, argv
        first, rest = debug.stderr.split("\n", 1)
        assert first.startswith("gaia: error: ") and "--debug" not in first, argv
        assert rest.startswith("Traceback (most recent call last):"), argv
        assert "FileNotFoundError: " in rest and "funnel_for" in rest, argv


@pytest.fixture
def gaia_logger():
    """The ``gaia`` logger as configured by an entry point, put back afterwards."""
    logger = logging.getLogger(LOGGER)
    saved = logger.level, list(logger.handlers)
    yield logger
    logger.setLevel(saved[0])
    logger.handlers[:] = saved[1]


def test_configured_lines_go_to_stderr_once_and_debug_only_with_debug(gaia_logger, capsys):
    from gaia.pipeline.runner.ray_setup import log_to_stderr

    configure_logging()
    configure_logging()  # again (the CLI in one process twice): still one handler
    log_to_stderr("[measure] 1/1 done")
    logging.getLogger("gaia.training.loop").debug("a detail")
    shown = capsys.readouterr()
    assert shown.out == "" and shown.err == "[measure] 1/1 done\n"

    configure_logging(debug=True)
    logging.getLogger("gaia.training.loop").debug("a detail")
    assert capsys.readouterr().err == "a detail\n"


def test_a_library_progress_line_reaches_a_caplog_handler(tmp_path, caplog):
    """``run_measure``'s default log: the job's own progress lines, as log records."""
    from gaia.pipeline.measure.job import run_measure
    from gaia.samples.shipped import carphone_path

    with caplog.at_level(logging.INFO, logger=LOGGER):
        run_measure([str(carphone_path())], tmp_path / "run", use_ray=False)
    records = [r for r in caplog.records if r.name.startswith(f"{LOGGER}.")]
    assert records and all(r.levelno == logging.INFO for r in records)
    assert any("carphone_pristine" in r.getMessage() for r in records), \
        [r.getMessage() for r in records]
