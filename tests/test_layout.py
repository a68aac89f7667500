"""The package's layering rule (README, "Layout"; docs/architecture.md), checked on the source.

Every ``import`` and ``from ... import`` in ``gaia/`` is read with ``ast`` (function-level
imports included, so a lazy import cannot hide a climb up the layers) and checked against the
table below: which top-level rooms a room may import, and which heavy frameworks it may not.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "gaia"

# Room -> the gaia rooms it may import (besides itself). A room is a top-level sub-package,
# or "app" for the top-level modules (the CLI dispatcher).
MAY_IMPORT = {
    "schemas": set(),
    "common": set(),
    "filters": {"schemas", "common"},
    "training": {"schemas", "filters", "common"},
    "inference": {"training", "schemas", "filters", "common"},
    "pipeline": {"inference", "training", "schemas", "filters", "common"},
    "generation": {"pipeline", "inference", "training", "schemas", "filters", "common"},
    "evaluation": {"generation", "pipeline", "inference", "training", "schemas", "filters",
                   "common"},
    "samples": {"pipeline", "schemas", "common"},
    "configs": set(),
    "app": {"*"},
}
# Room -> third-party frameworks it must not import.
FORBIDDEN = {
    "schemas": {"torch", "ray"},
    "filters": {"torch", "ray"},
    "common": {"torch", "ray"},
    "training": {"ray"},
    "inference": {"ray"},
    "generation": {"ray"},
    "evaluation": {"ray"},
    "samples": {"ray", "torch"},
}
# Inside pipeline/, only the job runner imports ray: the jobs describe their stages to it.
RAY_ALLOWED = ("pipeline/runner/",)


def _room(path: Path, package: Path) -> str:
    parts = path.relative_to(package).parts
    return parts[0] if len(parts) > 1 else "app"


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative imports would dodge the rule's reading
                found.append((node.lineno, "." * node.level + (node.module or "")))
            elif node.module:
                found.append((node.lineno, node.module))
    return found


def _violations(package: Path = PACKAGE) -> list[str]:
    bad = []
    for path in sorted(package.rglob("*.py")):
        room = _room(path, package)
        where = path.relative_to(package).as_posix()
        allowed = MAY_IMPORT[room]
        for line, module in _imports(path):
            top = module.split(".")[0]
            if module.startswith("."):
                bad.append(f"{where}:{line}: relative import {module} (write gaia.…)")
            elif top == "gaia" and module != "gaia":
                target = module.split(".")[1]
                target = target if (package / target).is_dir() else "app"
                if target != room and "*" not in allowed and target not in allowed:
                    bad.append(f"{where}:{line}: {room}/ imports {module}")
            elif top in FORBIDDEN.get(room, ()):
                bad.append(f"{where}:{line}: {room}/ imports {top}")
            elif top == "ray" and room == "pipeline" and not where.startswith(RAY_ALLOWED):
                bad.append(f"{where}:{line}: only pipeline/runner/ imports ray, not {where}")
    return bad


def test_every_room_is_known() -> None:
    rooms = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert rooms <= set(MAY_IMPORT), f"add {sorted(rooms - set(MAY_IMPORT))} to MAY_IMPORT"


def test_imports_follow_the_layers() -> None:
    assert _violations() == []


def test_the_checker_sees_a_climb(tmp_path: Path) -> None:
    # The rule must be able to fail: a fake package whose training/ imports pipeline/.
    fake = tmp_path / "gaia"
    for room in ("training", "pipeline", "filters"):
        (fake / room).mkdir(parents=True)
        (fake / room / "__init__.py").write_text("")
    (fake / "training" / "x.py").write_text("def f():\n    from gaia.pipeline.y import z\n")
    (fake / "filters" / "t.py").write_text("import torch\n")
    found = _violations(fake)
    assert any("training/ imports gaia.pipeline.y" in v for v in found), found
    assert any("filters/ imports torch" in v for v in found), found


def test_no_room_is_crowded() -> None:
    # docs/architecture.md: once a folder passes about 20 files it gets sub-packages by role.
    crowded = {d.relative_to(PACKAGE).as_posix(): n for d in PACKAGE.rglob("*")
               if d.is_dir() and (n := len(list(d.glob("*.py")))) > 20}
    assert crowded == {}


def test_the_command_line_starts_without_torch_or_ray() -> None:
    # Every verb's --help, and every error found while parsing (a mistyped preset, a missing
    # file), comes back in a fraction of a second: building the parser imports no framework.
    code = ("import sys, gaia.cli; gaia.cli.build_parser(); "
            "print(sorted(m for m in ('torch', 'ray') if m in sys.modules))")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout.strip()
    assert shown == "[]"
