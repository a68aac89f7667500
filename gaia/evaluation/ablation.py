"""``gaia eval ablation``: several evaluations side by side in the paper's ablation and scaling
tables (GAIA section 5.3 and appendix C.2: tables 6 and 9, the ablations of the
speech-to-motion model; tables 5 and 4, scaling the diffusion model and the VAE), one row per
evaluation JSON (``gaia eval s2m --report`` or ``gaia eval vae --report`` writes one), with a
label per run. The paper's rows stay above ours; a table whose kind of evaluation (s2m or vae)
none of the inputs is shows the paper's rows and says so.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from gaia.evaluation.paper_tables import LAYOUTS, PAGES, build_table
from gaia.evaluation.report import environment, run_detail, table_notes, upgrade_legacy
from gaia.schemas.atomic import write_text_atomic


@dataclass(frozen=True)
class AblationRun:
    label: str
    source: Path
    kind: str  # "s2m" or "vae"
    metrics: dict


def evaluation_kind(metrics: dict) -> str | None:
    """"vae" or "s2m" by the sections an evaluation JSON has, or None."""
    if isinstance(metrics.get("self_reconstruction"), dict):
        return "vae"
    if isinstance(metrics.get("metrics"), dict) and "provenance" in metrics:
        return "s2m"
    return None


def load_runs(paths: list[Path], labels: list[str] | None = None) -> list[AblationRun]:
    """The evaluations at ``paths``, labelled by ``labels`` (one each) or by file name."""
    if labels is not None and len(labels) != len(paths):
        raise ValueError(f"{len(labels)} labels for {len(paths)} evaluation files: give one "
                         "label per file, in the same order")
    runs = []
    for n, path in enumerate(paths):
        path = Path(path)
        try:
            metrics = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ValueError(f"cannot read the evaluation {path}: {err}") from err
        kind = evaluation_kind(metrics) if isinstance(metrics, dict) else None
        if kind is None:
            raise ValueError(f"{path} is not the JSON of `gaia eval s2m` or `gaia eval vae` "
                             "(no self_reconstruction, or no metrics and provenance)")
        runs.append(AblationRun(labels[n] if labels else path.stem, path, kind,
                                upgrade_legacy(metrics)))
    return runs


def _settings(run: AblationRun) -> str:
    """The switches an ablation varies, as the run's config recorded them."""
    model = (run.metrics.get("run") or {}).get("model") or {}
    shown = [f"{name} {model[key]}" for key, name in (
        ("speech_condition", "speech"), ("reference_condition", "reference"),
        ("backbone", "backbone"), ("use_pose", "pose"), ("diffusion", "diffusion"),
        ("disentangle", "disentangle")) if key in model]
    switches = ", ".join(shown) if model else "no run config recorded"
    return "; ".join(part for part in (run_detail(run.metrics), switches, run.source.name)
                     if part)


def ablation_tables(runs: list[AblationRun]) -> list[dict]:
    """Tables 6, 9, 5 and 4 with the paper's rows and one row per run of the table's kind."""
    tables = []
    for number in PAGES["ablation"]:
        kind = LAYOUTS[number].kind
        mine = [r for r in runs if r.kind == kind]
        table = build_table(number, [(r.label, _settings(r), r.metrics) for r in mine])
        table["notes"] = table_notes(number, mine[0].metrics) if mine else [
            f"No `gaia eval {kind}` evaluation among the inputs: the paper's rows only."]
        tables.append(table)
    return tables


def render_ablation(runs: list[AblationRun]) -> str:
    return environment().get_template("ablation.html").render(
        runs=runs, tables=ablation_tables(runs))


def write_ablation(path: Path, runs: list[AblationRun]) -> tuple[Path, Path]:
    """The page at ``path`` and the tables as JSON beside it, each written whole or not at
    all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = path.with_suffix(".json")
    document = {"runs": [{"label": r.label, "source": str(r.source), "kind": r.kind}
                         for r in runs], "tables": ablation_tables(runs)}
    write_text_atomic(data, json.dumps(document, indent=1))
    write_text_atomic(path, render_ablation(runs))
    return path, data


def add_ablation_parser(models: argparse._SubParsersAction) -> None:
    parser = models.add_parser(
        "ablation", help="several evaluations in the paper's ablation and scaling tables",
        description="Lay several evaluation JSONs (of gaia eval s2m / vae --report) out as the "
                    "paper's tables 6 and 9 (ablations) and 5 and 4 (scaling), one row each.")
    parser.add_argument("evaluations", nargs="+", type=Path, metavar="EVAL.json")
    parser.add_argument("--labels", nargs="+", default=None, metavar="LABEL",
                        help="one row label per file, in order (default: the file names)")
    parser.add_argument("--report", type=Path, required=True, metavar="FILE.html",
                        help="the page to write (and FILE.json beside it)")
    parser.set_defaults(handler=_eval_ablation)


def _eval_ablation(args: argparse.Namespace) -> int:
    runs = load_runs(args.evaluations, args.labels)
    page, data = write_ablation(args.report, runs)
    print(f"[eval] ablation report: {page} ({len(runs)} runs; tables: {data})",
          file=sys.stderr)
    return 0
