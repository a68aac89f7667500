"""The design documents live in the repository (docs/), and what points at them resolves.

- No tracked file names the old design notes outside the repository: a clone has no such
  folder, so every pointer must go to a page under ``docs/``.
- Every ``docs/NAME.md`` that the README or a module of ``gaia/`` names exists, and every
  relative link between the pages of ``docs/`` lands on a page that exists.

Each checker is also run on a small fake tree with a violation, so it is shown to fail.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Spelled in pieces so that this file does not name them itself.
OUTSIDE_POINTERS = ("../" + "shared" + "/", "DESIGN" + ".md")
DOC_NAME = re.compile(r"\bdocs/([A-Za-z0-9_.-]+\.md)\b")
RELATIVE_LINK = re.compile(r"\]\(([A-Za-z0-9_.-]+\.md)(?:#[^)]*)?\)")


def _tracked_files(root: Path) -> list[Path] | None:
    """Files git tracks under ``root`` that exist in the working tree; None without git."""
    if shutil.which("git") is None:
        return None
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True)
    if listed.returncode != 0:
        return None
    names = [name for name in listed.stdout.decode("utf-8", "replace").split("\0") if name]
    return [root / name for name in names if (root / name).is_file()]


def _outside_pointers(root: Path, files: list[Path]) -> list[str]:
    """``path:line: text`` for every line of ``files`` naming a pointer out of the repository."""
    found = []
    for path in files:
        text = path.read_bytes().decode("utf-8", "replace")
        for number, line in enumerate(text.splitlines(), start=1):
            if any(pointer in line for pointer in OUTSIDE_POINTERS):
                found.append(f"{path.relative_to(root).as_posix()}:{number}: {line.strip()}")
    return found


def _missing_pages(root: Path) -> list[str]:
    """Pages named as ``docs/NAME.md`` in README.md and gaia/**/*.py, or linked relatively
    between docs/*.md, that do not exist; each as ``where: docs/NAME.md``."""
    sources = [root / "README.md", *sorted((root / "gaia").rglob("*.py"))]
    missing = []
    for path in sources:
        if not path.is_file():
            continue
        for name in DOC_NAME.findall(path.read_text(encoding="utf-8", errors="replace")):
            if not (root / "docs" / name).is_file():
                missing.append(f"{path.relative_to(root).as_posix()}: docs/{name}")
    for page in sorted((root / "docs").glob("*.md")):
        for name in RELATIVE_LINK.findall(page.read_text(encoding="utf-8")):
            if not (root / "docs" / name).is_file():
                missing.append(f"{page.relative_to(root).as_posix()}: docs/{name}")
    return missing


def test_no_tracked_file_points_outside_the_repository() -> None:
    files = _tracked_files(ROOT)
    if files is None:
        pytest.skip("git is not installed, or this is not a git checkout")
    assert files, "git ls-files listed nothing"
    assert _outside_pointers(ROOT, files) == []


def test_every_docs_page_pointed_to_exists() -> None:
    assert (ROOT / "docs" / "README.md").is_file()
    assert _missing_pages(ROOT) == []


def test_the_pointers_are_found_in_readme_and_docstrings() -> None:
    # The pattern really meets the pointers it guards (a regex that matched nothing would pass).
    named = set(DOC_NAME.findall((ROOT / "README.md").read_text(encoding="utf-8")))
    for path in (ROOT / "gaia").rglob("*.py"):
        named |= set(DOC_NAME.findall(path.read_text(encoding="utf-8")))
    assert named, "README.md and gaia/ name no docs/ page"


def test_the_checkers_catch_violations(tmp_path: Path) -> None:
    (tmp_path / "gaia").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "here.md").write_text("See [there](there.md) and [here](here.md).\n")
    (tmp_path / "README.md").write_text("Read docs/here.md and docs/gone.md.\n")
    module = tmp_path / "gaia" / "m.py"
    module.write_text(f'"""Details in {OUTSIDE_POINTERS[0]}notes, docs/lost.md."""\n')
    notes = tmp_path / "notes.txt"
    notes.write_text(f"fine\nsee {OUTSIDE_POINTERS[1]} section 4\n")

    missing = _missing_pages(tmp_path)
    assert "README.md: docs/gone.md" in missing
    assert "gaia/m.py: docs/lost.md" in missing
    assert "docs/here.md: docs/there.md" in missing
    assert not any(entry.endswith("docs/here.md") for entry in missing), missing

    found = _outside_pointers(tmp_path, [module, notes])
    assert [entry.split(":")[:2] for entry in found] == [["gaia/m.py", "1"], ["notes.txt", "2"]]
