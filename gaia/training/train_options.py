"""What every ``gaia train MODEL`` command takes, and how it becomes loop options.

Each trainer's options dataclass extends ``TrainOptions`` with its own fields; the CLI adds the
shared flags with ``add_common_arguments`` so they read the same for every model.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields

from gaia.training.loop import LoopOptions


@dataclass(frozen=True)
class TrainOptions:
    """config: preset name or YAML. shards: training shards (spec). out: run folder. The rest
    as ``gaia train MODEL --help`` explains."""

    config: str
    shards: str
    out: str
    max_steps: int = 1000
    batch_size: int = 8
    grad_accum: int = 1
    num_workers: int = 2
    batches_per_epoch: int = 100
    seed: int = 0
    checkpoint_every: int = 500
    keep: int = 3
    log_every: int = 10
    image_every: int = 200
    resume: bool = False
    device: str | None = None
    overrides: tuple[str, ...] = ()  # KEY=VALUE on top of the model config, e.g. lr=1e-4

    def loop_options(self) -> LoopOptions:
        return LoopOptions(out=self.out, max_steps=self.max_steps, grad_accum=self.grad_accum,
                           checkpoint_every=self.checkpoint_every, keep=self.keep,
                           log_every=self.log_every, image_every=self.image_every,
                           resume=self.resume)

    @classmethod
    def from_args(cls, args: argparse.Namespace):
        """The options from parsed CLI arguments named like the fields."""
        values = {f.name: getattr(args, f.name) for f in fields(cls)}
        values["overrides"] = tuple(values["overrides"])
        return cls(**values)


def add_common_arguments(parser: argparse.ArgumentParser, defaults: TrainOptions,
                         presets: str, shards_help: str, item: str) -> None:
    """The flags every trainer shares; ``item`` names what a batch holds (pairs, windows)."""
    parser.add_argument("--config", required=True, help=f"{presets}, or a YAML file")
    parser.add_argument("--shards", required=True, metavar="SPEC", help=shards_help)
    parser.add_argument("--out", required=True, metavar="RUN_DIR",
                        help="checkpoints, TensorBoard logs, metrics.jsonl, config.json")
    parser.add_argument("--max-steps", type=int, default=defaults.max_steps)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size,
                        help=f"{item} per micro-batch per process (default: %(default)s)")
    parser.add_argument("--grad-accum", type=int, default=defaults.grad_accum,
                        help="micro-batches per optimizer step (default: %(default)s)")
    parser.add_argument("--num-workers", type=int, default=defaults.num_workers,
                        help="data-loading processes per training process "
                             "(default: %(default)s)")
    parser.add_argument("--batches-per-epoch", type=int, default=defaults.batches_per_epoch,
                        help="batches per epoch on every process (equal on all ranks)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every)
    parser.add_argument("--keep", type=int, default=defaults.keep, help="checkpoints kept")
    parser.add_argument("--log-every", type=int, default=defaults.log_every)
    parser.add_argument("--image-every", type=int, default=defaults.image_every,
                        help="steps between image grids in TensorBoard and the run folder")
    parser.add_argument("--resume", action="store_true",
                        help="continue exactly from the latest checkpoint in --out")
    parser.add_argument("--device", default=None,
                        help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a model-config value, e.g. lr=1e-4")
