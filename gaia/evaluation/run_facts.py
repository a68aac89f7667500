"""What a scaling table says about a model (GAIA tables 4 and 5: "#Params" and "#Hours", the
size of the training data): its parameter count, and the hours of the clips it trained on, read
from the run folder the checkpoint sits in (``RUN/checkpoints/step-N.pt`` beside
``RUN/config.json``, which the trainers write). Hours are those of the ``--max-hours`` subset
the run recorded (``data_subset.hours``), else the ``train`` split of the training shards'
manifest (clip spans, or frames at the shard frame rate); when they cannot be read,
``train_hours_note`` says why.
"""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from gaia.schemas.shards import FPS


def parameter_count(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def manifest_hours(shards: Path, split: str = "train") -> float:
    """Hours of ``split`` in the manifest of a shard folder (video or latent shards)."""
    import pyarrow.parquet as pq

    table = pq.read_table(shards / "manifest.parquet").to_pydict()
    keep = [n for n, s in enumerate(table.get("split", [])) if s == split]
    if "start_s" in table and "end_s" in table:
        seconds = sum(table["end_s"][n] - table["start_s"][n] for n in keep)
    else:
        seconds = sum(table["frames"][n] for n in keep) / FPS
    return seconds / 3600


def _train_hours(config: dict, config_path: Path) -> tuple[float | None, str | None]:
    subset = config.get("data_subset")
    if isinstance(subset, dict) and subset.get("hours") is not None:
        return float(subset["hours"]), None
    options = config.get("options") or {}
    spec = options.get("shards")
    if not isinstance(spec, str):
        return None, f"the run's config ({config_path}) names no training shards"
    # A trainer's paths are as its command line gave them: relative to where it ran.
    folder = next((p for p in (Path(spec), config_path.parent.parent / spec)
                   if (p / "manifest.parquet").is_file()), None)
    if folder is None:
        return None, f"no manifest.parquet in the training shards {spec} from here"
    try:
        return manifest_hours(folder), None
    except (OSError, ValueError, KeyError) as err:
        return None, f"the manifest of {spec} cannot be read ({err})"


def run_facts(checkpoint: str | Path, model: nn.Module) -> dict:
    """``parameters``, ``train_hours`` (or ``train_hours_note``: why not), and the run's
    model config (its switches name an ablation) for the checkpoint ``checkpoint``."""
    facts: dict = {"parameters": parameter_count(model), "train_hours": None,
                   "train_hours_note": None, "model": None}
    config_path = Path(checkpoint).parent.parent / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        facts["train_hours_note"] = f"no run config.json beside the checkpoint ({config_path})"
        return facts
    facts["model"] = config.get("model")
    facts["train_hours"], facts["train_hours_note"] = _train_hours(config, config_path)
    return facts
