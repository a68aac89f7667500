"""``gaia eval vae`` and ``gaia eval s2m``: a trained VAE measured on shards (paper, appendix
B.2) and a speech-to-motion model measured on latent shards (paper, section 5) (thin: parse,
call, print); ``gaia eval ablation`` lays several of their JSONs out as the paper's ablation
and scaling tables (``evaluation.ablation``); ``gaia eval instruct`` measures a
text-instructed model's instruction following (appendix E; ``evaluation.instruct.cli``).
``gaia reenact`` is in ``gaia.generation.cli``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

EVAL_EPILOG = """\
The paper's protocols (appendix B.2) on the test videos (whole clips of --split):
self-reconstruction takes each video's first frame as the appearance and every other frame as
driving; cross-reenactment runs 5 rounds of 100 frames, each video driving a random frame of
another one (seeded). The plan (which frames meet which) is written to --plan, or beside
--report, and read back on the next run, so a run can be repeated exactly.

Metrics (table 2): L1 and PSNR on [0, 1]; LPIPS (alex by default: the metric's usual variant;
needs torchvision's AlexNet or VGG16 file); AKD by FOMM's definition (the mean absolute
difference of the x and y coordinates of dlib's 68 points on the real frame and on the output,
pooled over frames, in pixels of the model's frames; akd_euclidean, the mean point distance,
beside it); MSI after StableFace (lips, mouth-width
normalised; msi_real is the real frames'); FID (needs Inception weights,
pt_inception-2015-12-05-6726825d.pth). A metric without its weights is n/a, with a note.

examples:
  gaia eval vae --vae runs/vae-tiny --shards runs/r1/shards/vae --split val
  gaia eval vae --vae runs/vae-base --shards SPEC --alex-weights /models/alexnet-owt-7be5be79.pth \\
      --inception-weights /models/pt_inception-2015-12-05-6726825d.pth --report eval/vae.html
"""

S2M_EPILOG = """\
Motion latents are sampled from each clip's speech, reference frame and head pose (--pose data:
the clip's real pose; predicted: the model's pose predictor's) and compared with the clip's real
latents, standardised (motion_mse; motion_mse_mean_baseline is the error of the data's mean
motion). pose_error_* (degrees) is the pose predictor against the real pose. With --videos (the
source video shards of the latents) every latent is decoded to a frame and dlib reads the face:
msi (motion stability) and lip_sync (mouth opening against the speech), beside msi_real and
lip_sync_real on the clip's stored landmarks. A clip whose frames show a face in fewer than half
of them gets no frame metrics (counted as frame_metrics_skipped). Sync-C and Sync-D need SyncNet
weights (--syncnet-weights), FID Inception's (--inception-weights): without them they are n/a,
with a note naming the file. The protocol (appendix B.3): each clip's first frame is the
reference, and the pose is the model's own prediction (--pose data: the real one).

examples:
  gaia eval s2m --vae runs/vae --s2m runs/s2m --latents runs/latents --split val
  gaia eval s2m --vae runs/vae --s2m runs/s2m/checkpoints/step-00100000.pt \\
      --latents runs/latents --videos runs/r1/shards/s2m --clips 50 --steps 50 \\
      --syncnet-weights /models/syncnet_v2.model --report eval/s2m.html

The landmark model (table 6's "w. landmark prediction"; `gaia train landmarks`) is measured the
same way on clip shards, with no latent shards: --landmarks RUN --videos SHARDS. It samples each
clip's landmarks, and the VAE renders, motion-encodes and decodes them as `gaia generate
--landmarks` does; motion_mse is then in landmark units, and landmark_error_px is the mean
distance of a sampled point from the real one.
  gaia eval s2m --vae runs/vae --landmarks runs/lmk --videos runs/r1/shards/s2m --split val

--diffusion is --s2m's name before the model was named s2m: a deprecated alias, kept for one
release.
"""


def add_eval_parser(commands: argparse._SubParsersAction,
                    default_portraits: Callable[[Path], list[Path]] | None = None) -> None:
    """``gaia eval``'s verbs; ``default_portraits`` writes ``gaia eval instruct``'s portraits
    when none are given (the app passes the shipped real faces: evaluation may not import
    ``samples``)."""
    evaluate = commands.add_parser("eval", help="measure a trained model on shards (vae, s2m; "
                                   "ablation: several evaluations in the paper's tables; "
                                   "instruct: instruction following)",
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
                     help="test videos: clips of this split, or all (default: %(default)s)")
    vae.add_argument("--max-frames", type=int, default=None, metavar="N",
                     help="use the first N frames of each video (default: all, as the paper)")
    vae.add_argument("--rounds", type=int, default=5,
                     help="cross-reenactment rounds (default: %(default)s)")
    vae.add_argument("--frames-per-round", type=int, default=100,
                     help="cross-reenactment frames per video and round (default: %(default)s)")
    vae.add_argument("--seed", type=int, default=0, help="the plan's seed (default: 0)")
    vae.add_argument("--plan", type=Path, default=None, metavar="FILE.json",
                     help="protocol plan: read when it exists, else written (default: beside "
                          "--report)")
    _add_metric_weights(vae)
    vae.add_argument("--batch-size", type=int, default=16, help="frames decoded at a time")
    _add_outputs(vae)
    vae.set_defaults(handler=_eval_vae)
    _add_s2m_parser(models)
    from gaia.evaluation.ablation import add_ablation_parser

    add_ablation_parser(models)
    from gaia.evaluation.instruct.cli import add_instruct_parser

    add_instruct_parser(models, default_portraits)


def _add_s2m_parser(models: argparse._SubParsersAction) -> None:
    from gaia.common.deprecation import add_deprecated_alias

    s2m = models.add_parser(
        "s2m", help="motion, pose, stability and lip-sync metrics of the s2m model",
        description="Measure a trained speech-to-motion model on clips of latent shards: "
                    "motion latents sampled from each clip's speech against its real ones "
                    "(a seeded sampler: the same numbers every run).",
        epilog=S2M_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    s2m.add_argument("--vae", required=True, metavar="CKPT_OR_RUN",
                     help="the VAE the latents were encoded with (file or run folder)")
    model = s2m.add_mutually_exclusive_group(required=True)
    new = model.add_argument("--s2m", metavar="CKPT_OR_RUN",
                             help="speech-to-motion checkpoint or run folder (`gaia train "
                                  "s2m`; its latest checkpoint)")
    add_deprecated_alias(model, "--diffusion", new)
    model.add_argument("--landmarks", metavar="CKPT_OR_RUN",
                       help="a landmark model (`gaia train landmarks`) in place of --s2m, "
                            "evaluated on the clip shards of --videos (see below)")
    s2m.add_argument("--latents", metavar="SPEC",
                     help="latent shards to evaluate on (`gaia encode-latents` output; "
                          "required with --s2m)")
    s2m.add_argument("--videos", default=None, metavar="SPEC",
                     help="the source video shards of the latents, for frame metrics (MSI, "
                          "lip sync; needs dlib's models)")
    s2m.add_argument("--split", choices=("train", "val", "all"), default="val",
                     help="clips of this split, or all (default: %(default)s)")
    s2m.add_argument("--clips", type=int, default=20,
                     help="clips evaluated, 0 for all (default: %(default)s)")
    s2m.add_argument("--steps", type=int, default=25,
                     help="denoising steps of the ODE sampler (default: %(default)s)")
    s2m.add_argument("--seed", type=int, default=0, help="the noise (default: %(default)s)")
    s2m.add_argument("--pose", choices=("data", "predicted"), default="predicted",
                     help="the head pose given to the sampler: the model's prediction from "
                          "the speech (the paper's protocol) or the clip's real pose "
                          "(default: %(default)s)")
    s2m.add_argument("--syncnet-weights", default=None, metavar="PATH",
                     help="syncnet_v2.model (joonson/syncnet_python), for Sync-C and Sync-D")
    _add_fid_weights(s2m)
    _add_outputs(s2m)
    s2m.set_defaults(handler=_eval_s2m)


def _add_metric_weights(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lpips", choices=("alex", "vgg", "none"), default="alex",
                        help="LPIPS backbone (default: %(default)s)")
    parser.add_argument("--alex-weights", default=None, metavar="PATH",
                        help="torchvision's alexnet-owt-7be5be79.pth, for LPIPS (alex)")
    parser.add_argument("--vgg-weights", default=None, metavar="PATH",
                        help="torchvision's vgg16-397923af.pth, for LPIPS (vgg)")
    _add_fid_weights(parser)


def _add_fid_weights(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--inception-weights", default=None, metavar="PATH",
                        help="pt_inception-2015-12-05-6726825d.pth, for FID")


def _add_outputs(parser: argparse.ArgumentParser) -> None:
    """The options both evaluations share: the device and what is written."""
    parser.add_argument("--device", default=None,
                        help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.add_argument("--report", type=Path, default=None, metavar="FILE.html",
                        help="write the report page there, and FILE.json beside it")


def _write_outputs(args: argparse.Namespace, metrics: dict, kind: str, text: str) -> None:
    from gaia.evaluation.report import machine_readable, write_report

    if args.report is not None:
        page, data = write_report(args.report, metrics, kind)
        print(f"[eval] report: {page} (metrics: {data})", file=sys.stderr)
    print(json.dumps(machine_readable(metrics), indent=2) if args.json else text)


def _eval_vae(args: argparse.Namespace) -> int:
    from gaia.evaluation.fid import fid_network
    from gaia.evaluation.lpips_alex import metric_lpips
    from gaia.evaluation.vae import VaeEvalOptions, evaluate_vae, format_metrics
    from gaia.generation.reenact import CropLandmarks

    options = VaeEvalOptions(split=None if args.split == "all" else args.split,
                             rounds=args.rounds, frames_per_round=args.frames_per_round,
                             seed=args.seed, max_frames=args.max_frames,
                             batch_size=args.batch_size)
    perceptual, lpips_note = metric_lpips(
        args.lpips, args.alex_weights if args.lpips == "alex" else args.vgg_weights)
    network, fid_note = fid_network(args.inception_weights)
    plan = args.plan
    if plan is None and args.report is not None:
        plan = args.report.with_suffix(".plan.json")
    metrics = evaluate_vae(
        Path(args.vae), args.shards, options, perceptual=perceptual, detector=CropLandmarks(),
        fid_network=network, plan=plan, notes=[n for n in (lpips_note, fid_note) if n],
        device=args.device, progress=lambda line: print(f"[eval] {line}", file=sys.stderr))
    _write_outputs(args, metrics, "vae", format_metrics(metrics))
    return 0


def _eval_s2m(args: argparse.Namespace) -> int:
    from gaia.evaluation.s2m import evaluate_s2m, format_s2m_metrics
    from gaia.training.s2m.sampler_config import SamplerConfig

    if args.clips < 0:
        raise ValueError("--clips must be >= 0 (0: every clip of the split)")
    from gaia.evaluation.fid import fid_network
    from gaia.evaluation.lip_sync import syncnet_scorer

    landmark_fn = None
    if args.videos:
        from gaia.generation.reenact import CropLandmarks

        landmark_fn = CropLandmarks()
    syncnet, sync_note = syncnet_scorer(args.syncnet_weights)
    network, fid_note = fid_network(args.inception_weights)
    if args.landmarks:
        return _eval_landmarks(args, landmark_fn, syncnet, network, [
            n for n in (sync_note, fid_note) if n])
    if not args.latents:
        raise ValueError("--s2m needs the latent shards it is measured on: --latents SPEC")
    metrics = evaluate_s2m(
        args.vae, args.s2m, args.latents, videos=args.videos,
        split=None if args.split == "all" else args.split, clips=args.clips or None,
        sampler=SamplerConfig(steps=args.steps), seed=args.seed, pose=args.pose,
        landmark_fn=landmark_fn, syncnet=syncnet, fid_network=network,
        notes=[n for n in (sync_note, fid_note) if n], device=args.device)
    _write_outputs(args, metrics, "s2m", format_s2m_metrics(metrics))
    return 0


def _eval_landmarks(args: argparse.Namespace, landmark_fn, syncnet, network,
                    notes: list[str]) -> int:
    """``gaia eval s2m --landmarks``: the landmark model on the clip shards of --videos."""
    from gaia.evaluation.s2m import format_s2m_metrics
    from gaia.evaluation.s2m_landmarks import evaluate_landmark_model
    from gaia.training.s2m.sampler_config import SamplerConfig

    if not args.videos:
        raise ValueError("--landmarks is measured on clip shards: give them as --videos SPEC "
                         "(the landmark model reads no latent shards)")
    metrics = evaluate_landmark_model(
        args.vae, args.landmarks, args.videos, split=None if args.split == "all" else args.split,
        clips=args.clips or None, sampler=SamplerConfig(steps=args.steps), seed=args.seed,
        pose=args.pose, landmark_fn=landmark_fn, syncnet=syncnet, fid_network=network,
        notes=notes, device=args.device)
    _write_outputs(args, metrics, "s2m", format_s2m_metrics(metrics))
    return 0

