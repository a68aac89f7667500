"""What every ``gaia train MODEL`` command takes, and how it becomes loop options.

Each trainer's options dataclass extends ``TrainOptions`` with its own fields, and
``TrainOptions`` extends the loop's own options (``LoopOptions``, here because the loop imports
torch and building the CLI's parser must not); the CLI adds the shared flags with
``add_common_arguments`` so they read the same for every model. The flags default to None
("not given"), so that a run file (``training.run_file``) sits between the dataclass defaults
and the command line.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from gaia.training.run_file import resolve_options

# Seconds a collective waits for the other ranks under torchrun (``init_process_group``).
DEFAULT_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class LoopOptions:
    """out: run folder. max_steps: optimizer steps to reach. grad_accum: micro-batches per
    step. checkpoint_every / keep: how often, and how many to keep. log_every / image_every:
    scalars and image grids to TensorBoard (rank 0). resume: continue from the latest
    checkpoint in ``out/checkpoints``."""

    out: str
    max_steps: int = 1000
    grad_accum: int = 1
    checkpoint_every: int = 500
    keep: int = 3
    log_every: int = 10
    image_every: int = 200
    resume: bool = False


def positive_seconds(text: str) -> float:
    """argparse type of ``--dist-timeout``: a finite number of seconds above 0 (``nan``,
    ``inf``, 0 and negatives are usage errors, not a wait that never ends or fails at once)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(
            f"{text!r}: give a finite number of seconds above 0")
    return value


# Keyword-only: config and shards have no default and follow the loop's defaulted fields.
@dataclass(frozen=True, kw_only=True)
class TrainOptions(LoopOptions):
    """config: the model (a preset name, a model YAML file, or a mapping of model keys as a
    run file's ``model:`` gives). shards: training shards (spec). dist_timeout: seconds a
    collective waits for the other ranks under torchrun. max_hours: train on a fixed subset of
    the train split's clips adding up to this many hours (``training.data.hours_subset``;
    None: all). The loop's fields as ``LoopOptions``; the rest as ``gaia train MODEL --help``
    explains."""

    # The model config class: its keys tell a run file's model keys from its run options.
    model_class: ClassVar[type]

    config: str | dict[str, Any]
    shards: str
    batch_size: int = 8
    num_workers: int = 2
    batches_per_epoch: int = 100
    seed: int = 0
    device: str | None = None
    dist_timeout: float = DEFAULT_TIMEOUT_S
    overrides: tuple[str, ...] = ()  # KEY=VALUE on top of the model config, e.g. lr=1e-4
    scale_lr: bool = False
    max_hours: float | None = None

    def data_subset(self, log=None):
        """The ``--max-hours`` subset of the train split (``ClipSubset``), or None; its line
        goes to ``log`` (rank 0's)."""
        if self.max_hours is None:
            return None
        from gaia.training.data.hours_subset import select_hours

        subset = select_hours(self.shards, self.max_hours, split="train")
        if log is not None:
            log(f"[train] {subset.line()}")
        return subset

    def lr_scale(self, world_size: int) -> float:
        """The factor on the config's ``lr``: 1, or with ``scale_lr`` the number of samples a
        step sees (processes x batch x accumulation), as latent-diffusion's trainer reads its
        ``base_learning_rate`` (GAIA's 4.5e-6 is that codebase's VAE base rate; the paper does
        not say which reading it ran). See README, "Learning rate"."""
        if not self.scale_lr:
            return 1.0
        return float(world_size * self.batch_size * self.grad_accum)

    def run_document(self, task: str, config: Any, world: Any, **extra: Any) -> dict:
        """What every trainer records of a run: the task, these options, the model config,
        the learning rate as configured and as scaled, the world and the torch version;
        ``extra``: what one trainer adds (its perceptual module, its latents)."""
        import dataclasses

        import torch

        scale = self.lr_scale(world.size)
        return {"task": task, "options": dataclasses.asdict(self), "model": config.to_dict(),
                **extra,
                "lr": {"config": config.lr, "scale": scale, "effective": config.lr * scale},
                "world_size": world.size, "device": str(world.device),
                "torch": torch.__version__}

    def loop_options(self) -> LoopOptions:
        """The loop's fields alone (what ``config.json`` records under ``loop``)."""
        return LoopOptions(**{f.name: getattr(self, f.name) for f in fields(LoopOptions)})

    @classmethod
    def from_args(cls, args: argparse.Namespace):
        """The options from parsed CLI arguments named like the fields, over the run file
        ``--config`` names (if it names one)."""
        flags = {f.name: getattr(args, f.name) for f in fields(cls)
                 if f.name not in ("config", "overrides")}
        return resolve_options(cls, cls.model_class, args.config, flags, tuple(args.overrides))


def add_common_arguments(parser: argparse.ArgumentParser, defaults: TrainOptions,
                         presets: str, shards_help: str, item: str) -> None:
    """The flags every trainer shares; ``item`` names what a batch holds (pairs, windows).
    Each defaults to None (not given); the help shows the dataclass default."""
    def default(name: str) -> str:
        return f"(default: {getattr(defaults, name)})"

    parser.add_argument("--config", required=True, metavar="RUN_OR_MODEL",
                        help=f"a run file (RUN.yaml: model: plus run options, see below), "
                             f"a model preset ({presets}), or a model YAML file")
    parser.add_argument("--shards", metavar="SPEC",
                        help=f"{shards_help} (required here or in the run file)")
    parser.add_argument("--out", metavar="RUN_DIR",
                        help="checkpoints, TensorBoard logs, metrics.jsonl, config.yaml "
                             "(the resolved run), config.json (required here or in the run "
                             "file)")
    parser.add_argument("--max-steps", type=int, help=default("max_steps"))
    parser.add_argument("--batch-size", type=int,
                        help=f"{item} per micro-batch per process {default('batch_size')}")
    parser.add_argument("--grad-accum", type=int,
                        help=f"micro-batches per optimizer step {default('grad_accum')}")
    parser.add_argument("--num-workers", type=int,
                        help="data-loading processes per training process "
                             f"{default('num_workers')}")
    parser.add_argument("--batches-per-epoch", type=int,
                        help="batches per epoch on every process (equal on all ranks) "
                             f"{default('batches_per_epoch')}")
    parser.add_argument("--seed", type=int, help=default("seed"))
    parser.add_argument("--checkpoint-every", type=int, help=default("checkpoint_every"))
    parser.add_argument("--keep", type=int, help=f"checkpoints kept {default('keep')}")
    parser.add_argument("--log-every", type=int, help=default("log_every"))
    parser.add_argument("--image-every", type=int,
                        help="steps between image grids in TensorBoard and the run folder "
                             f"{default('image_every')}")
    parser.add_argument("--resume", action="store_true", default=None,
                        help="continue exactly from the latest checkpoint in --out")
    parser.add_argument("--device",
                        help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--dist-timeout", type=positive_seconds, metavar="SECONDS",
                        help="under torchrun: how long a collective waits for the other "
                             f"ranks before the run fails {default('dist_timeout')}")
    parser.add_argument("--scale-lr", action="store_true", default=None,
                        help="multiply the config's lr by processes x batch x accumulation "
                             "(latent-diffusion's reading of a base rate; default: lr as "
                             "given)")
    parser.add_argument("--max-hours", type=float, metavar="H",
                        help="train on the train split's clips adding up to H hours, the same "
                             "clips every run and on every rank (ordered by a hash of their "
                             "key; tables 4-5 of the paper); more than the data holds uses "
                             "all (default: all clips)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a model-config value (over the run file), e.g. "
                             "lr=1e-4 or betas=[0.5,0.9]")
