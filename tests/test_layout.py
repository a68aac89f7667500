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
    "training": {"text", "schemas", "filters", "common"},
    "inference": {"training", "text", "schemas", "filters", "common"},
    "pipeline": {"inference", "training", "text", "schemas", "filters", "common"},
    "generation": {"pipeline", "inference", "training", "text", "schemas", "filters",
                   "common"},
    "evaluation": {"generation", "pipeline", "inference", "training", "text", "schemas",
                   "filters", "common"},
    "samples": {"pipeline", "text", "schemas", "common"},
    "text": {"common"},
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
    "text": {"ray"},
}
# Inside pipeline/, only the job runner imports ray: the jobs describe their stages to it.
RAY_ALLOWED = ("pipeline/runner/",)
# Inside pipeline/: the jobs never import each other (nor the command line); they, and the
# parts every job shares (the runner, the models and I/O, the run-folder modules at the top of
# pipeline/: run_dir, inputs, measures, compact_table), import only those shared parts.
JOBS = {"measure", "extract", "tune", "latents"}
SHARED = {"runner", "face", "speech", "media", "duplicates", "identities", "instructions"}


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
            if room == "pipeline" and module.startswith("gaia.pipeline."):
                problem = _pipeline_problem(path.relative_to(package / "pipeline"), module,
                                            package / "pipeline")
                if problem:
                    bad.append(f"{where}:{line}: {problem}")
    return bad


def _pipeline_part(parts: tuple[str, ...], pipeline: Path) -> str:
    """A pipeline module's part: its sub-package, or "shared" for a top-level module."""
    return parts[0] if len(parts) > 1 and (pipeline / parts[0]).is_dir() else "shared"


def _pipeline_problem(source: Path, module: str, pipeline: Path) -> str | None:
    """Why ``source`` (a path under pipeline/) may not import ``module``, or None."""
    mine = _pipeline_part(source.parts, pipeline)
    target = _pipeline_part(tuple(module.split(".")[2:]), pipeline)
    if mine == "cli" or target == mine or target == "shared" or target in SHARED:
        return None
    if target in JOBS or target == "cli":
        who = f"the {mine} job" if mine in JOBS else f"pipeline/{source.as_posix()}"
        return f"{who} imports {module}: jobs never import each other (move what they " \
               "share below them: pipeline/runner, face, speech, media or a run-folder module)"
    return f"pipeline/{source.as_posix()} imports {module} (unknown part {target!r})"


def _module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the gaia modules it imports, at any depth of the file (lazy imports count:
    they run as surely, only later). ``from gaia.a import b`` is an edge to ``gaia.a.b`` when
    that is a module, else to ``gaia.a``."""
    modules = {_module_name(p, package): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}"
                           in modules else node.module for alias in node.names]
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


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


def test_a_job_importing_another_job_is_caught(tmp_path: Path) -> None:
    # The pipeline rule must be able to fail: extract importing tune, a job importing the
    # command line; and what is allowed passes (a job importing the runner, a shared module).
    fake = tmp_path / "gaia"
    for part in ("pipeline", "pipeline/extract", "pipeline/tune", "pipeline/runner",
                 "pipeline/cli"):
        (fake / part).mkdir(parents=True)
        (fake / part / "__init__.py").write_text("")
    (fake / "pipeline" / "measures.py").write_text("")
    (fake / "pipeline" / "extract" / "job.py").write_text(
        "from gaia.pipeline.runner.x import y\nfrom gaia.pipeline.measures import z\n"
        "def f():\n    from gaia.pipeline.tune.table import iter_measures\n")
    (fake / "pipeline" / "tune" / "job.py").write_text("import gaia.pipeline.cli.curate\n")
    (fake / "pipeline" / "cli" / "curate.py").write_text("from gaia.pipeline.tune import job\n")
    found = _violations(fake)
    assert any("the extract job imports gaia.pipeline.tune.table" in v for v in found), found
    assert any("the tune job imports gaia.pipeline.cli.curate" in v for v in found), found
    assert len(found) == 2, found


def test_there_is_no_import_circle() -> None:
    assert import_cycles(import_graph()) == []


def test_the_circle_finder_finds_circles(tmp_path: Path) -> None:
    # A lazy import closing a circle counts; a chain without a way back does not.
    fake = tmp_path / "gaia"
    (fake / "a").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "a" / "__init__.py").write_text("")
    (fake / "a" / "one.py").write_text("from gaia.a import two\n")
    (fake / "a" / "two.py").write_text("def f():\n    from gaia.a.three import x\n")
    (fake / "a" / "three.py").write_text("import gaia.a.one\n")
    (fake / "a" / "four.py").write_text("from gaia.a.one import y\n")
    assert import_cycles(import_graph(fake)) == [["gaia.a.one", "gaia.a.three", "gaia.a.two"]]


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
