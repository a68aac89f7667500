"""``gaia train ...``: the training verbs of the command line (thin: parse, call, print).

The verbs' flags are ``training.train_parser``'s (torchrun's entry points read them there);
here each verb gets its handler, the trainer it runs.
"""

from __future__ import annotations

import argparse

from gaia.training import train_parser


def build_train_parser() -> argparse.ArgumentParser:
    """A parser whose first word is the model (``vae``, ``s2m``, ``landmarks``), each verb with
    its handler; used by ``gaia train``."""
    return train_parser.build_train_parser(_handlers())


def add_train_parser(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser("train", help="train a model on shards (vae, s2m, instruct, landmarks)",
                                description="Train GAIA's models on streamed shards.")
    add_train_verbs(train.add_subparsers(dest="model", required=True, metavar="MODEL"))


def add_train_verbs(models: argparse._SubParsersAction) -> None:
    train_parser.add_train_verbs(models, _handlers())


def _handlers() -> dict:
    from gaia.training.instruct.options import INSTRUCT_TASK
    from gaia.training.s2m.options import S2M_TASK

    return {"vae": _train_vae, S2M_TASK: _train_s2m, INSTRUCT_TASK: _train_instruct,
            "landmarks": _train_landmarks}


def _train_vae(args: argparse.Namespace) -> int:
    from gaia.training.vae.options import VaeTrainOptions
    from gaia.training.vae.train import train_vae

    train_vae(VaeTrainOptions.from_args(args))
    return 0


def _train_s2m(args: argparse.Namespace) -> int:
    from gaia.training.s2m.options import OLD_TASK_NAMES, S2mTrainOptions
    from gaia.training.s2m.train import train_s2m

    if args.model in OLD_TASK_NAMES:
        from gaia.common.deprecation import deprecated

        deprecated(f"`gaia train {args.model}`", f"`gaia train {OLD_TASK_NAMES[args.model]}`")
    train_s2m(S2mTrainOptions.from_args(args))
    return 0


def _train_instruct(args: argparse.Namespace) -> int:
    from gaia.training.instruct.options import InstructTrainOptions
    from gaia.training.instruct.train import train_instruct

    train_instruct(InstructTrainOptions.from_args(args))
    return 0


def _train_landmarks(args: argparse.Namespace) -> int:
    from gaia.training.landmarks.options import LandmarkTrainOptions
    from gaia.training.landmarks.train import train_landmarks

    train_landmarks(LandmarkTrainOptions.from_args(args))
    return 0
