"""The flags of ``gaia train MODEL``: one parser for the command line (``training.cli``, which
gives each verb its handler, the trainer it runs) and for torchrun's entry points (``python -m
gaia.training.MODEL.train``, which parse the same flags here and call their own trainer). It
imports no trainer, so the trainers may import it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any

RUN_FILE = """\
run file: --config RUN.yaml holds the model and the run options together, keys named like
the flags (max_steps for --max-steps):
  model: {preset}     # or a model YAML file, or keys: {{preset: {preset}, lr: 1.0e-3}}
  shards: {shards}
  out: runs/{preset}
  max_steps: 300
  batch_size: 8{extra}
Precedence, lowest first: defaults < model preset < run file < flags (--max-steps ...,
--set KEY=VALUE for model keys). The run writes the resolved file as RUN_DIR/config.yaml:
`--config RUN_DIR/config.yaml --resume` continues the same run.
"""

VAE_EPILOG = """\
SPEC: a shard folder, a glob, a brace pattern ('shards/shard-{000000..000099}.tar'), URLs, or
'pipe:CMD' entries, comma-separated.

""" + RUN_FILE.format(preset="vae-tiny", shards="runs/r1/shards/vae",
                      extra="\n  perceptual: none") + """
examples:
  gaia train vae --config vae-tiny --shards runs/r1/shards/vae --out runs/vae-tiny \\
      --perceptual none --max-steps 200
  gaia train vae --config run.yaml --max-steps 500     # the run file, one option changed
  torchrun --nproc_per_node 8 -m gaia.training.vae.train --config vae-base \\
      --shards 's3://bucket/shards/shard-{000000..000999}.tar' --out /nfs/runs/vae-base \\
      --vgg-weights /models/vgg16-397923af.pth
  gaia train vae ... --resume        # continue from the latest checkpoint in --out
  gaia train vae --config runs/vae-tiny/config.yaml --resume   # the same, from its config
"""

S2M_EPILOG = """\
SPEC: latent shards written by `gaia encode-latents` (a folder, glob, brace pattern, URLs),
comma-separated; their stats.json is read from the first shard's folder unless --stats is given.

""" + RUN_FILE.format(preset="s2m-tiny", shards="runs/latents", extra="") + """
examples:
  gaia encode-latents --vae runs/vae-tiny --shards runs/r1/shards/s2m --out runs/latents
  gaia train s2m --config s2m-tiny --shards runs/latents --out runs/s2m-tiny --max-steps 300
  torchrun --nproc_per_node 8 -m gaia.training.s2m.train --config s2m-base \\
      --shards '/nfs/latents/shard-{000000..000999}.tar' --stats /nfs/latents/stats.json \\
      --out /nfs/runs/s2m-base

`gaia train diffusion` is the verb's name before s2m: a deprecated alias, kept for one release.
"""

INSTRUCT_EPILOG = """\
SPEC: latent shards of instruct clips, written by `gaia encode-latents --text-encoder DIR`
(their condition is each clip's instruction); their stats.json is read from the first shard's
folder unless --stats is given. Speech latents are refused (train those with `gaia train s2m`).

""" + RUN_FILE.format(preset="instruct-tiny", shards="runs/instruct-latents", extra="") + """
examples:
  gaia curate extract runs/r1 --preset instruct
  gaia encode-latents --vae runs/vae-tiny --shards runs/r1/shards/instruct \\
      --text-encoder models/clip-text --out runs/instruct-latents
  gaia train instruct --config instruct-tiny --shards runs/instruct-latents \\
      --out runs/instruct-tiny --max-steps 300
  gaia generate --image me.png --text "turn your head left" --seconds 3 \\
      --vae runs/vae-tiny --instruct runs/instruct-tiny --text-encoder models/clip-text \\
      --out me_left.mp4
"""

LANDMARKS_EPILOG = """\
SPEC: clip shards written by `gaia curate run` (a folder, glob, brace pattern, URLs),
comma-separated; clips without audio are skipped and counted (skipped/no_audio).

""" + RUN_FILE.format(preset="landmarks-tiny", shards="runs/r1/shards/vae", extra="") + """
examples:
  gaia train landmarks --config landmarks-tiny --shards runs/r1/shards/vae --out runs/lmk-tiny
  gaia generate --portrait face.png --audio speech.wav --vae runs/vae-tiny \\
      --s2m runs/s2m-tiny --landmarks runs/lmk-tiny --control mouth.npy \\
      --control-points mouth --out held.mp4
"""


def build_train_parser(handlers: Mapping[str, Callable[[argparse.Namespace], int]] | None = None
                       ) -> argparse.ArgumentParser:
    """A parser whose first word is the model (``vae``, ``s2m``, ``instruct``, ``landmarks``);
    ``handlers``
    as ``add_train_verbs``."""
    parser = argparse.ArgumentParser(prog="gaia train")
    add_train_verbs(parser.add_subparsers(dest="model", required=True, metavar="MODEL"),
                    handlers)
    return parser


def add_train_verbs(models: argparse._SubParsersAction,
                    handlers: Mapping[str, Callable[[argparse.Namespace], int]] | None = None
                    ) -> None:
    """The models' verbs and their flags; each verb named in ``handlers`` (the CLI's trainers)
    gets its function as the ``handler`` default."""
    _add_vae(models)
    _add_s2m(models)
    _add_instruct(models)
    _add_landmarks(models)
    for verb, handler in (handlers or {}).items():
        models.choices[verb].set_defaults(handler=handler)


def _add_vae(models: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from gaia.training.train_options import add_common_arguments
    from gaia.training.vae.options import VaeTrainOptions

    defaults = VaeTrainOptions(config="", shards="", out="")
    vae = models.add_parser(
        "vae", help="the two-encoder VAE (appearance + motion), adversarial with LPIPS",
        description="Train the two-encoder VAE on streamed shards. Alone it runs as one "
                    "process (CPU, or one GPU with bf16 autocast); under torchrun on any number "
                    "of processes and nodes (gloo on CPU, nccl on GPU).",
        epilog=VAE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(vae, defaults, "vae-tiny, vae-small, vae-base, vae-large",
                         "training shards (curated clips)", "pairs")
    vae.add_argument("--pairs-per-clip", type=int,
                     help="(appearance, target) pairs drawn per decoded clip "
                          f"(default: {defaults.pairs_per_clip})")
    vae.add_argument("--max-frames", type=int,
                     help="frames decoded per clip, pairs drawn among them (bounds memory) "
                          f"(default: {defaults.max_frames})")
    vae.add_argument("--perceptual", choices=("lpips", "none"),
                     help="perceptual loss (default: the config's; lpips needs --vgg-weights)")
    vae.add_argument("--vgg-weights", metavar="PATH",
                     help="torchvision-format VGG16 state dict for LPIPS")
    return vae


def _add_s2m(models: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from gaia.training.s2m.options import OLD_TASK_NAMES, S2M_TASK, S2mTrainOptions
    from gaia.training.train_options import add_common_arguments

    defaults = S2mTrainOptions(config="", shards="", out="")
    s2m = models.add_parser(
        S2M_TASK, aliases=list(OLD_TASK_NAMES),
        help="the speech-to-motion (s2m) Conformer, a diffusion model on latent shards "
             "(alias: diffusion, deprecated)",
        description="Train the speech-to-motion (s2m) model (VP-SDE diffusion, x0 prediction) "
                    "and its pose predictor on windows of motion latents, speech and head "
                    "pose. Alone or under torchrun, as `gaia train vae`.",
        epilog=S2M_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(s2m, defaults, "s2m-tiny, s2m-small, s2m-base, s2m-large",
                         "latent shards (gaia encode-latents)", "windows")
    _add_window_arguments(s2m, defaults)
    s2m.add_argument("--stats", metavar="STATS_JSON",
                     help="the latent shards' stats.json (default: beside the shards)")
    return s2m


def _add_instruct(models: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from gaia.training.instruct.options import INSTRUCT_TASK, InstructTrainOptions
    from gaia.training.train_options import add_common_arguments

    defaults = InstructTrainOptions(config="", shards="", out="")
    instruct = models.add_parser(
        INSTRUCT_TASK, help="the text-instructed motion model (appendix E), on latent shards "
                            "of instruct clips",
        description="Train the text-instructed motion model (paper, appendix E): the "
                    "speech-to-motion Conformer and its pose predictor with each clip's "
                    "instruction (a CLIP text embedding and a clock since the cue) in the "
                    "speech features' place. Alone or under torchrun, as `gaia train s2m`.",
        epilog=INSTRUCT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(instruct, defaults, "instruct-tiny, instruct-small",
                         "latent shards of instruct clips (gaia encode-latents "
                         "--text-encoder)", "windows")
    _add_window_arguments(instruct, defaults)
    instruct.add_argument("--stats", metavar="STATS_JSON",
                          help="the latent shards' stats.json (default: beside the shards)")
    return instruct


def _add_window_arguments(parser: argparse.ArgumentParser, defaults) -> None:
    """The window stream's flags, shared by the s2m and the landmark models."""
    parser.add_argument("--windows-per-clip", type=int,
                        help="windows drawn per clip read "
                             f"(default: {defaults.windows_per_clip})")
    parser.add_argument("--reference", choices=("stored", "random"),
                        help="reference latent: a random frame of the clip each time, as "
                             "the paper trains (random), or the clip's most frontal frame "
                             f"(stored) (default: {defaults.reference})")
    parser.add_argument("--short-clips", choices=("whole", "drop"),
                        help="clips shorter than the model's window_min: one window of "
                             "the whole clip (whole) or skipped and counted as "
                             f"skipped/short_clip (drop) (default: {defaults.short_clips})")


def _add_landmarks(models: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from gaia.training.landmarks.options import LandmarkTrainOptions
    from gaia.training.train_options import add_common_arguments

    defaults = LandmarkTrainOptions(config="", shards="", out="")
    landmarks = models.add_parser(
        "landmarks", help="the landmark diffusion model of controllable generation (on clip "
                          "shards)",
        description="Train the landmark diffusion model (paper, section 5.4 and appendix D): "
                    "the speech-to-motion Conformer over the 68 x 2 landmark coordinates of "
                    "each frame, conditioned on speech, a reference frame's landmarks and head "
                    "pose. `gaia generate --landmarks RUN --control FILE.npy` holds chosen "
                    "points fixed and draws the rest. Alone or under torchrun, as `gaia train "
                    "vae`.",
        epilog=LANDMARKS_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(landmarks, defaults, "landmarks-tiny, landmarks-small",
                         "clip shards with audio (gaia curate run)", "windows")
    _add_window_arguments(landmarks, defaults)
    landmarks.add_argument("--stats", metavar="STATS_JSON",
                           help="a landmark_stats.json to reuse (default: computed from the "
                                "shards' train split and written to the run folder)")
    return landmarks


def torchrun_options(model: str, options_class: Any, argv: list[str] | None = None) -> Any:
    """Entry of ``torchrun -m gaia.training.MODEL.train ...``: the ``gaia train MODEL`` options
    from ``argv`` (default: the command line) as ``options_class``, logging configured as the
    ``gaia`` command configures it."""
    import sys

    from gaia.common.logs import configure_logging

    configure_logging()
    args = build_train_parser().parse_args([model, *(sys.argv[1:] if argv is None else argv)])
    return options_class.from_args(args)
