"""``gaia eval vae`` and ``gaia reenact``: a trained VAE measured on shards (paper, appendix
B.2) and applied to a portrait and a driving video (thin: parse, call, print)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

EVAL_EPILOG = """\
Self-reconstruction (appearance and motion from two frames of one clip; PSNR, L1, LPIPS, AKD)
and cross-reenactment (appearance from one clip, motion from another; AKD against the driving
landmarks). AKD is in pixels of the model's frames, on the frames where dlib finds a face;
akd_real_frames is the same on the real frames (the detector's own error).

examples:
  gaia eval vae --vae runs/vae-tiny --shards runs/r1/shards/vae --split val
  gaia eval vae --vae runs/vae-base/checkpoints/step-00100000.pt --shards SPEC \\
      --perceptual lpips --vgg-weights /models/vgg16-397923af.pth --json
"""


def add_eval_parser(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser("eval", help="measure a trained model on shards (vae)",
                                   description="Evaluate GAIA's models on shards.")
    models = evaluate.add_subparsers(dest="model", required=True, metavar="MODEL")
    vae = models.add_parser(
        "vae", help="self-reconstruction and cross-reenactment metrics of the VAE",
        description="Measure a trained two-encoder VAE on pairs of frames from shards "
                    "(posterior means: the same numbers every run).",
        epilog=EVAL_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    vae.add_argument("--vae", required=True, metavar="CKPT_OR_RUN",
                     help="a checkpoint file, or a run folder (its latest checkpoint)")
    vae.add_argument("--shards", required=True, metavar="SPEC", help="shards to evaluate on")
    vae.add_argument("--split", choices=("train", "val", "all"), default="val",
                     help="clips of this split, or all (default: %(default)s)")
    vae.add_argument("--batches", type=int, default=50,
                     help="batches evaluated, 0 for one whole pass (default: %(default)s)")
    vae.add_argument("--batch-size", type=int, default=8, help="pairs per batch")
    vae.add_argument("--perceptual", choices=("lpips", "none"), default="none",
                     help="lpips adds LPIPS (needs VGG16 weights) (default: %(default)s)")
    vae.add_argument("--vgg-weights", default=None, metavar="PATH",
                     help="torchvision-format VGG16 state dict for LPIPS")
    vae.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    vae.add_argument("--json", action="store_true", help="print the metrics as JSON")
    vae.set_defaults(handler=_eval_vae)


def _eval_vae(args: argparse.Namespace) -> int:
    from gaia.reenact import CropLandmarks
    from gaia.training.perceptual import load_perceptual
    from gaia.training.vae_eval import evaluate_vae, format_metrics

    if args.batches < 0 or args.batch_size < 1:
        raise ValueError("--batches must be >= 0 and --batch-size >= 1")
    metrics = evaluate_vae(
        Path(args.vae), args.shards, split=None if args.split == "all" else args.split,
        batches=args.batches or None, batch_size=args.batch_size,
        perceptual=load_perceptual(args.perceptual, args.vgg_weights),
        landmark_fn=CropLandmarks(), device=args.device)
    print(json.dumps(metrics, indent=2) if args.json else format_metrics(metrics))
    return 0


def add_reenact_parser(commands: argparse._SubParsersAction) -> None:
    reenact = commands.add_parser(
        "reenact", help="animate a portrait with a driving video's motion (trained VAE)",
        description="Crop the portrait's face as curation crops clips, follow the driving "
                    "video's face landmarks, and decode each frame with the VAE (appearance "
                    "from the portrait, motion from the driving frame); the mp4 keeps the "
                    "driving video's frame rate and audio.",
        epilog="example:\n  gaia reenact --source me.png --driving talk.mp4 --vae runs/vae "
               "--out me_talking.mp4", formatter_class=argparse.RawDescriptionHelpFormatter)
    reenact.add_argument("--source", required=True, type=Path, metavar="IMAGE",
                         help="portrait with one face (PNG, JPEG)")
    reenact.add_argument("--driving", required=True, type=Path, metavar="VIDEO",
                         help="video of a talking head")
    reenact.add_argument("--vae", required=True, type=Path, metavar="CKPT_OR_RUN",
                         help="a checkpoint file, or a run folder (its latest checkpoint)")
    reenact.add_argument("--out", required=True, type=Path, metavar="OUT.mp4")
    reenact.set_defaults(handler=_reenact)


def _reenact(args: argparse.Namespace) -> int:
    from gaia.reenact import reenact

    reenact(args.source, args.driving, args.vae, args.out)
    return 0
