"""The training loop every trainer shares: streaming batches, DDP, accumulation, bf16 on CUDA,
logging, atomic checkpoints and exact resume (docs/practices.md).

A *task* (the VAE now, the diffusion model next) owns its models, optimizers and step; this
loop owns everything around it. Model code stays single-device: the task wraps its modules with
``world.wrap`` and the loop never looks inside.

The run folder holds ``config.yaml`` (the resolved run: model and run options, readable back
with ``--config``), ``config.json`` (the same plus provenance: world size, device, torch),
``metrics.jsonl`` (one row per logged step, each step once even across a resume: rows a killed
run logged after its last checkpoint are dropped when it resumes), TensorBoard events and
``checkpoints/``. Rows also count the samples the loader skipped, by reason
(``skipped/REASON``, summed over ranks since the run began), and the last line printed says
the same.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Protocol

import torch

from gaia.common.config_files import dump_yaml
from gaia.schemas.atomic import atomic_path, write_text_atomic
from gaia.training.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    rank_state_path,
    rng_state,
    save_checkpoint,
    save_rank_state,
    set_rng_state,
)
from gaia.training.data.shard_stream import SKIP_REASONS
from gaia.training.distributed import World, barrier, mean_over_world, sum_over_world
from gaia.training.train_options import LoopOptions

logger = logging.getLogger(__name__)  # progress lines; gaia.common.logs routes them


class Task(Protocol):
    """What the loop needs from a model family."""

    def train_step(self, micro_batches: list[dict], step: int) -> dict[str, float]: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...

    def image_grid(self, batch: dict) -> torch.Tensor | None: ...


class ResumableLoader(Protocol):
    def __iter__(self): ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


def autocast(device: torch.device):
    """bf16 autocast on CUDA; plain float32 on CPU (CPU bf16 is slow and not what we test)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def accumulate(logs: dict[str, float], parts: dict, count: int) -> None:
    """Add ``parts`` (tensors or numbers) divided by ``count`` into ``logs``: the mean of each
    logged value over a step's micro-batches."""
    for name, value in parts.items():
        logs[name] = logs.get(name, 0.0) + float(value) / count


def skip_counts(loader: ResumableLoader, world: World) -> dict[str, int]:
    """``skipped/REASON``: samples the loader skipped since the run began, summed over ranks
    (a collective: every rank calls it). Reasons outside ``SKIP_REASONS`` count as other."""
    counts = dict.fromkeys((*SKIP_REASONS, "other"), 0)
    for reason, count in getattr(loader, "skipped_total", {}).items():
        counts[reason if reason in counts else "other"] += count
    summed = sum_over_world({f"skipped/{k}": float(v) for k, v in counts.items()}, world)
    return {name: int(value) for name, value in summed.items()}


def keep_rows_until(path: Path, step: int) -> int:
    """Rewrite ``metrics.jsonl`` (atomically) without rows after ``step``, and without a line
    cut short by a kill; returns the rows dropped. A run resumed from step ``step`` logs the
    later steps again, so each step stays once."""
    if not path.is_file():
        return 0
    kept, dropped = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            logged = int(json.loads(line)["step"])
        except (ValueError, TypeError, KeyError):
            dropped += 1
            continue
        if logged > step:
            dropped += 1
        else:
            kept.append(line)
    if dropped:
        write_text_atomic(path, "".join(f"{line}\n" for line in kept))
    return dropped


class RunLog:
    """Rank 0 writes TensorBoard events and ``metrics.jsonl`` (one line per logged step).
    ``step``: the step the run starts from; rows and events logged after it by an earlier,
    killed run are dropped."""

    def __init__(self, out: Path, world: World, step: int = 0) -> None:
        self.world = world
        self.out = out
        self._writer = None
        self._jsonl = None
        if world.is_main:
            from torch.utils.tensorboard import SummaryWriter

            keep_rows_until(out / "metrics.jsonl", step)
            # purge_step: TensorBoard hides the older events at steps from here on.
            self._writer = SummaryWriter(str(out / "tensorboard"), purge_step=step + 1)
            self._jsonl = open(out / "metrics.jsonl", "a", encoding="utf-8")  # noqa: SIM115

    def scalars(self, step: int, values: dict[str, float],
                counts: dict[str, int] | None = None) -> None:
        """``values`` averaged over ranks, ``counts`` already summed (``skip_counts``)."""
        values = {**mean_over_world(values, self.world), **(counts or {})}
        if self._writer is None:
            return
        for name, value in values.items():
            self._writer.add_scalar(name, value, step)
        self._jsonl.write(json.dumps({"step": step, **values}) + "\n")
        self._jsonl.flush()

    def image(self, step: int, name: str, grid: torch.Tensor) -> None:
        """A (3, H, W) image in [0, 1] to TensorBoard and as ``NAME-STEP.png`` in the run."""
        if self._writer is None:
            return
        self._writer.add_image(name, grid, step)
        from PIL import Image

        pixels = (grid.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        with atomic_path(self.out / f"{name}-{step:08d}.png") as tmp:
            Image.fromarray(pixels).save(tmp, format="PNG")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._jsonl.close()


def run_loop(task: Task, loader: ResumableLoader, options: LoopOptions, world: World,
             config_document: dict, log: Callable[[str], None] = logger.info,
             run_config: dict | None = None) -> int:
    """Train until ``options.max_steps``; returns the last step reached. ``config_document``
    becomes ``config.json``, ``run_config`` (the resolved run file) ``config.yaml``."""
    out = Path(options.out)
    checkpoints = out / "checkpoints"
    existing = latest_checkpoint(checkpoints) if checkpoints.is_dir() else None
    if existing is not None and not options.resume:
        raise FileExistsError(f"{out} already holds checkpoints (latest {existing.name}): pass "
                              "--resume to continue that run, or choose another --out")
    if world.is_main:  # after the check, so a refused run leaves the old run's files alone
        checkpoints.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / "config.json", json.dumps(
            {**config_document, "loop": asdict(options)}, indent=2, default=str))
        if run_config is not None:
            write_text_atomic(out / "config.yaml", dump_yaml(run_config))
    barrier(world)
    step = 0
    if options.resume and (latest := latest_checkpoint(checkpoints)) is not None:
        state = load_checkpoint(latest, map_location=world.device)
        step = int(state["step"])
        task.load_state_dict(state["task"])
        mine = load_checkpoint(rank_state_path(checkpoints, step, world.rank))
        loader.load_state_dict(mine["loader"])
        if hasattr(task, "load_rank_state_dict"):
            task.load_rank_state_dict(mine["task"])
        # Each rank's own random states (dropout, augmentation); checkpoints from before they
        # were kept per rank hold rank 0's only.
        set_rng_state(mine.get("rng", state["rng"]))
        log(f"[train] resumed from {latest.name} at step {step}")
    elif options.resume:
        log("[train] --resume given but no checkpoint found: starting from step 0")

    run_log = RunLog(out, world, step)
    started, seen = time.monotonic(), 0
    batches = _forever(loader)
    try:
        while step < options.max_steps:
            micro = [next(batches) for _ in range(options.grad_accum)]
            logs = task.train_step(micro, step)
            step += 1
            seen += sum(len(b["key"]) for b in micro) * world.size
            if step % options.log_every == 0 or step == options.max_steps:
                rate = seen / max(time.monotonic() - started, 1e-9)
                run_log.scalars(step, {**logs, "samples_per_s": rate},
                                skip_counts(loader, world))
                if world.is_main:
                    shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted(logs.items())[:6])
                    log(f"[train] step {step}/{options.max_steps}: {shown}, {rate:.1f} samples/s")
            if options.image_every and step % options.image_every == 0:
                grid = task.image_grid(micro[0])
                if grid is not None:
                    run_log.image(step, getattr(task, "image_name", "reconstruction"), grid)
            if step % options.checkpoint_every == 0 or step == options.max_steps:
                _checkpoint(task, loader, checkpoints, step, options.keep, world)
        skipped = {k.split("/", 1)[1]: v for k, v in skip_counts(loader, world).items() if v}
        log(f"[train] done at step {step}; samples skipped: " + (", ".join(
            f"{reason} {count}" for reason, count in skipped.items()) or "none"))
    finally:
        run_log.close()
    return step


def _forever(loader: ResumableLoader):
    """Epoch after epoch: the loader moves to its next epoch each time it is iterated again."""
    while True:
        yielded = False
        for batch in loader:
            yielded = True
            yield batch
        if not yielded:
            raise RuntimeError("the data loader yielded no batch in a whole epoch")


def _checkpoint(task: Task, loader: ResumableLoader, folder: Path, step: int, keep: int,
                world: World) -> None:
    """Every rank writes its own state (loader position, its global random states, and the
    task's per-rank state such as a noise generator seeded by rank), then rank 0 the checkpoint
    itself: the main file appears last, so a checkpoint that exists is complete. Random states
    are per rank because ranks draw differently (``seed_rank``; dropout over windows of
    different lengths), so rank 0's would put every other rank on the wrong sequence."""
    rank_task = task.rank_state_dict() if hasattr(task, "rank_state_dict") else {}
    save_rank_state(folder, step, world.rank, {"loader": loader.state_dict(), "task": rank_task,
                                               "rng": rng_state()})
    barrier(world)
    if world.is_main:
        save_checkpoint(folder, step, {"task": task.state_dict()}, keep=keep)
    barrier(world)

