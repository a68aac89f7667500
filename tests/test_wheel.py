"""The built wheel works on its own: presets ship inside it and both CLIs run from it.

A cluster node gets gaia from a wheel, not from this checkout (docs/practices.md: presets are
package data read with ``importlib.resources``). The test builds the wheel from a copy of the
sources, installs it (not editable) into a fresh venv, and runs ``gaia curate tune --preset vae``
and ``gaia train vae --config vae-tiny`` from that venv, outside the repository.

Installing every dependency again would take minutes, so the fresh venv sees the main venv's
site-packages through a one-line ``.pth`` file. A path line in a ``.pth`` only adds that folder
to ``sys.path``; the ``.pth`` files inside it are not processed, so the editable install's finder
(which maps ``gaia`` to this checkout) stays inactive and ``gaia`` must come from the wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(command: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    # No PYTHONPATH: nothing may point the fresh venv back at the checkout.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["OMP_NUM_THREADS"] = "1"
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-3000:])
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the sources (a build in the checkout would leave
    ``build/`` there, whose stale files later builds would pick up)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "gaia", source / "gaia",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index",
          "--no-build-isolation", "-w", str(root / "dist"), str(source)], cwd=root)
    (built,) = (root / "dist").glob("gaia_avatar-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed (``--no-deps``), seeing the main venv's packages."""
    folder = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True,
                   timeout=120)
    python = folder / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
          "--no-deps", "--no-index", str(wheel)], cwd=folder.parent)
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                      "['purelib'])"], cwd=folder.parent).stdout.strip())
    (site / "main-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return folder


def test_the_wheel_holds_every_module_and_preset(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {p.relative_to(REPO).as_posix() for p in (REPO / "gaia").rglob("*")
               if p.suffix in (".py", ".yaml") and "__pycache__" not in p.parts}
    assert sources - names == set()
    assert {"gaia/configs/curation/vae.yaml", "gaia/configs/training/vae-tiny.yaml"} <= names


def test_gaia_comes_from_the_wheel_and_reads_its_presets(venv, tmp_path):
    code = ("import gaia, gaia.common.config_files as c; print(gaia.__file__); "
            "print(','.join(c.preset_names('curation')))")
    lines = _run([str(venv / "bin" / "python"), "-c", code], cwd=tmp_path).stdout.split()
    assert Path(lines[0]).is_relative_to(venv), lines[0]
    assert lines[1].split(",") == ["instruct", "s2m", "vae"]


@pytest.mark.slow  # about 15 s; the wheel's contents and presets stay in make test
def test_tune_and_train_run_from_the_installed_wheel(venv, measured_sample, sample_shards,
                                                     tmp_path):
    gaia = str(venv / "bin" / "gaia")
    tune = ["curate", "tune", str(measured_sample.root), "--preset", "vae"]
    table = _run([gaia, *tune], cwd=tmp_path).stdout
    assert table.startswith("== funnel: vae") and " clips " in table, table
    # The wheel's preset is the checkout's: the same funnel, line for line.
    assert table == _run([sys.executable, "-m", "gaia.cli", *tune], cwd=REPO).stdout

    out = tmp_path / "vae-tiny"
    _run([gaia, "train", "vae", "--config", "vae-tiny", "--shards", str(sample_shards),
          "--out", str(out), "--max-steps", "1", "--batch-size", "2", "--num-workers", "0",
          "--perceptual", "none", "--log-every", "1", "--image-every", "0",
          "--checkpoint-every", "1"], cwd=tmp_path, timeout=300)
    assert (out / "checkpoints" / "step-00000001.pt").is_file()
    model = json.loads((out / "config.json").read_text())["model"]
    assert (model["image_size"], model["channels"], model["disc_start"]) == (64, 16, 100)
