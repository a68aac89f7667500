"""Checkpoints that a killed run resumes from exactly (docs/practices.md, torchtitan).

A checkpoint holds every state the next step depends on: model, optimizers, grad scaler, step,
the data loader's position and every random generator. It is written under a temporary name
and renamed (a reader never sees half a file), only the last ``keep`` are kept, and it is read
with ``torch.load(weights_only=True)``: tensors, numbers, strings and containers only, never a
pickle of arbitrary objects. A file that needs more (a pickled class, or not a torch file at
all) is refused with a ``ValueError`` naming it; the way round is never to unpickle it.
"""

from __future__ import annotations

import pickle
import random
import re
from pathlib import Path

import numpy as np
import torch

from gaia.schemas.atomic import atomic_path

PATTERN = re.compile(r"step-(\d{8})\.pt$")


def rank_seed(seed: int, rank: int) -> int:
    """A seed of its own for each rank, from the run's seed: ranks that drew alike would apply
    the same dropout masks and the same noise to different data."""
    return int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])


def seed_rank(seed: int, rank: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) for ``rank``. Trainers call it after the
    models are built from the shared seed (identical initial weights on every rank) and before
    the first step, so from there on each rank's draws are its own and resume restores them per
    rank."""
    value = rank_seed(seed, rank)
    random.seed(value)
    np.random.seed(value % 2**32)
    torch.manual_seed(value)


def rng_state() -> dict:
    """Python, NumPy and torch (CPU and CUDA) random states as plain tensors and numbers."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos,
                  "has_gauss": has_gauss, "cached": cached},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(_as_tuple(state["python"]))
    numpy = state["numpy"]
    np.random.set_state((numpy["kind"], numpy["keys"].numpy().astype(np.uint32), numpy["pos"],
                         numpy["has_gauss"], numpy["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(value):
    """``random.setstate`` wants tuples where a round trip may have produced lists."""
    if isinstance(value, list | tuple):
        return tuple(_as_tuple(v) for v in value)
    return value


def checkpoint_path(folder: Path, step: int) -> Path:
    return Path(folder) / f"step-{step:08d}.pt"


def list_checkpoints(folder: Path) -> list[Path]:
    """Finished checkpoints in ``folder``, oldest first."""
    found = [(int(m.group(1)), p) for p in Path(folder).glob("step-*.pt")
             if (m := PATTERN.search(p.name))]
    return [p for _, p in sorted(found)]


def save_checkpoint(folder: Path, step: int, state: dict, keep: int = 3) -> Path:
    """Write ``state`` (plus RNG states) as ``step-NNNNNNNN.pt``; keep the last ``keep``."""
    final = checkpoint_path(folder, step)
    with atomic_path(final) as tmp:
        torch.save({**state, "step": step, "rng": rng_state()}, tmp)
    for old in list_checkpoints(folder)[:-keep] if keep > 0 else []:
        for companion in Path(folder).glob(f"{old.stem}*"):  # the checkpoint and its rank files
            companion.unlink(missing_ok=True)
    return final


def rank_state_path(folder: Path, step: int, rank: int) -> Path:
    """Per-rank state of a checkpoint (each rank's data-loader position)."""
    return Path(folder) / f"step-{step:08d}.rank-{rank:05d}.pt"


def save_rank_state(folder: Path, step: int, rank: int, state: dict) -> Path:
    final = rank_state_path(folder, step, rank)
    with atomic_path(final) as tmp:
        torch.save(state, tmp)
    return final


_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict:
    """A checkpoint's state, read without unpickling arbitrary objects (``safe_load``)."""
    return safe_load(path, "a checkpoint this project wrote",
                     "point at a run folder or a step-NNNNNNNN.pt that `gaia train` saved",
                     map_location)


def safe_load(path: str | Path, what: str, hint: str,
              map_location: str | torch.device = "cpu", mmap: bool = False):
    """``torch.load(path, weights_only=True)``; a ValueError naming ``path`` when torch's safe
    loader refuses it: "PATH is not WHAT: it holds ...; HINT". torch's own message advises
    ``weights_only=False``, which would run whatever the file holds: it is not repeated, only
    the class it stopped at. ``mmap``: map the tensors rather than read them (a driver that
    needs a checkpoint's step and config, not its weights)."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        found = _GLOBAL.search(str(err))
        holds = f"a pickled Python object ({found.group(1)})" if found \
            else "data torch's safe loader does not read"
        raise ValueError(f"{path} is not {what}: it holds {holds}, and it is refused rather "
                         f"than unpickled; {hint}") from None


def latest_checkpoint(folder: Path) -> Path | None:
    found = list_checkpoints(folder)
    return found[-1] if found else None


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file as given, or the latest one of a run folder (``RUN/checkpoints`` or
    the folder itself)."""
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        for folder in (path / "checkpoints", path):
            found = latest_checkpoint(folder) if folder.is_dir() else None
            if found is not None:
                return found
        raise FileNotFoundError(f"{path} holds no checkpoint (step-NNNNNNNN.pt, in it or in "
                                "its checkpoints/ folder)")
    raise FileNotFoundError(f"no checkpoint or run folder at {path}")
