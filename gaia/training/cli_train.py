"""``gaia train ...``: the training verbs of the command line (thin: parse, call, print)."""

from __future__ import annotations

import argparse

TRAIN_EPILOG = """\
SPEC: a shard folder, a glob, a brace pattern ('shards/shard-{000000..000099}.tar'), URLs, or
'pipe:CMD' entries, comma-separated.

examples:
  gaia train vae --config vae-tiny --shards runs/r1/shards/vae --out runs/vae-tiny \\
      --perceptual none --max-steps 200
  torchrun --nproc_per_node 8 -m gaia.training.train_vae --config vae-base \\
      --shards 's3://bucket/shards/shard-{000000..000999}.tar' --out /shared/runs/vae-base \\
      --vgg-weights /models/vgg16-397923af.pth
  gaia train vae ... --resume        # continue from the latest checkpoint in --out
"""


def build_train_parser() -> argparse.ArgumentParser:
    """A parser whose first word is the model (``vae``); used by ``gaia train`` and torchrun."""
    parser = argparse.ArgumentParser(prog="gaia train")
    add_train_verbs(parser.add_subparsers(dest="model", required=True, metavar="MODEL"))
    return parser


def add_train_parser(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser("train", help="train a model on shards (vae)",
                                description="Train GAIA's models on streamed shards.")
    add_train_verbs(train.add_subparsers(dest="model", required=True, metavar="MODEL"))


def add_train_verbs(models: argparse._SubParsersAction) -> None:
    from gaia.training.train_vae import VaeTrainOptions

    defaults = VaeTrainOptions(config="", shards="", out="")
    vae = models.add_parser(
        "vae", help="the two-encoder VAE (appearance + motion), adversarial with LPIPS",
        description="Train the two-encoder VAE on streamed shards. Alone it runs as one "
                    "process (CPU, or one GPU with bf16 autocast); under torchrun on any number "
                    "of processes and nodes (gloo on CPU, nccl on GPU).",
        epilog=TRAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    vae.add_argument("--config", required=True,
                     help="vae-tiny, vae-small, vae-base, vae-large, or a YAML file")
    vae.add_argument("--shards", required=True, metavar="SPEC", help="training shards")
    vae.add_argument("--out", required=True, metavar="RUN_DIR",
                     help="checkpoints, TensorBoard logs, metrics.jsonl, config.json")
    vae.add_argument("--max-steps", type=int, default=defaults.max_steps)
    vae.add_argument("--batch-size", type=int, default=defaults.batch_size,
                     help="pairs per micro-batch per process (default: %(default)s)")
    vae.add_argument("--grad-accum", type=int, default=defaults.grad_accum,
                     help="micro-batches per optimizer step (default: %(default)s)")
    vae.add_argument("--num-workers", type=int, default=defaults.num_workers,
                     help="data-loading processes per training process (default: %(default)s)")
    vae.add_argument("--pairs-per-clip", type=int, default=defaults.pairs_per_clip,
                     help="(appearance, target) pairs drawn per decoded clip")
    vae.add_argument("--max-frames", type=int, default=defaults.max_frames,
                     help="frames decoded per clip, pairs drawn among them (bounds memory)")
    vae.add_argument("--batches-per-epoch", type=int, default=defaults.batches_per_epoch,
                     help="batches per epoch on every process (equal on all ranks)")
    vae.add_argument("--seed", type=int, default=defaults.seed)
    vae.add_argument("--perceptual", choices=("lpips", "none"), default=None,
                     help="perceptual loss (default: the config's; lpips needs --vgg-weights)")
    vae.add_argument("--vgg-weights", default=None, metavar="PATH",
                     help="torchvision-format VGG16 state dict for LPIPS")
    vae.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every)
    vae.add_argument("--keep", type=int, default=defaults.keep, help="checkpoints kept")
    vae.add_argument("--log-every", type=int, default=defaults.log_every)
    vae.add_argument("--image-every", type=int, default=defaults.image_every,
                     help="steps between reconstruction grids in TensorBoard")
    vae.add_argument("--resume", action="store_true",
                     help="continue exactly from the latest checkpoint in --out")
    vae.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    vae.add_argument("--set", dest="overrides", action="append", default=[],
                     metavar="KEY=VALUE", help="override a model-config value, e.g. lr=1e-4")
    vae.set_defaults(handler=_train_vae)


def _train_vae(args: argparse.Namespace) -> int:
    from gaia.training.train_vae import VaeTrainOptions, train_vae

    fields = VaeTrainOptions.__dataclass_fields__
    values = {name: getattr(args, name) for name in fields}
    values["overrides"] = tuple(values["overrides"])
    options = VaeTrainOptions(**values)
    train_vae(options)
    return 0
