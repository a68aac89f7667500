"""``gaia eval instruct`` (thin: parse, call, print): instruction following measured on
landmarks and head pose (paper, appendix E; the protocol is ``evaluation.instruct.protocol``)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from gaia.evaluation.instruct import NEUTRAL

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
DefaultPortraits = Callable[[Path], list[Path]]

INSTRUCT_EPILOG = """\
For every portrait and instruction the instruct model makes a video (one seed, one length), and
the same portrait a video of the neutral instruction (--neutral). Curation's face stack
measures every frame of both (frames with no face are counted as coverage, not scored), and the
effect is the instruction's value minus the neutral's:

  turn left / right   yaw in the video's second half, degrees; yaw > 0 is the nose toward the
                      image's right, the subject turning to their OWN left: left expects > 0
  nod                 pitch range (5th-95th percentile), degrees: expects > 0
  smile               mouth-corner distance (points 48-54) / inter-ocular, second half: > 0
  open the mouth      inner-lip gap (62-66) / inter-ocular, 90th percentile: > 0

Per instruction and per action: the effect's mean and spread over portraits, the share of
portraits with the expected sign, the face coverage, and the neutral videos' own frame-to-frame
noise (an effect within it is reported as no measurable effect). The paper's appendix E
numbers are human ratings (0-5), shown beside ours, not comparable one to one.

--instructions FILE (JSON or YAML): a list of {text, measure, sign[, action]}, measure one of
yaw, pitch_range, smile, mouth_open. Without --portraits, ten real faces from the installed
wheels (gaia.samples.portraits) are written beside --report / --out-json and used.

examples:
  gaia eval instruct --vae runs/vae --instruct runs/instruct --text-encoder models/clip-text \\
      --report eval/instruct.html
  gaia eval instruct --vae runs/vae --instruct runs/instruct --text-encoder models/clip-text \\
      --portraits faces/ --instructions my-instructions.yaml --seconds 2 --steps 10 --json
"""


def add_instruct_parser(models: argparse._SubParsersAction,
                        default_portraits: DefaultPortraits | None = None) -> None:
    """``gaia eval instruct``; ``default_portraits(folder)`` writes the portraits used without
    --portraits (``gaia.cli`` passes ``samples.portraits.write_portraits``)."""
    instruct = models.add_parser(
        "instruct", help="instruction following of a text-instructed model, measured on "
                         "landmarks and head pose (appendix E)",
        description="Generate portrait x instruction videos with an instruct model and "
                    "measure each instruction's effect against a neutral instruction.",
        epilog=INSTRUCT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    instruct.add_argument("--vae", required=True, metavar="CKPT_OR_RUN",
                          help="the VAE the instruct model's latents were encoded with")
    instruct.add_argument("--instruct", required=True, metavar="CKPT_OR_RUN",
                          help="text-instructed model (`gaia train instruct`)")
    instruct.add_argument("--text-encoder", default=None, metavar="DIR",
                          help="the CLIP text encoder folder the model was trained with")
    instruct.add_argument("--portraits", type=Path, default=None, metavar="DIR",
                          help="a folder of portrait images, one face each (default: ten "
                               "real faces shipped in the installed wheels)")
    instruct.add_argument("--instructions", type=Path, default=None, metavar="FILE",
                          help="instructions with their measure and expected sign (JSON or "
                               "YAML; default: 5 actions x 2 phrasings)")
    instruct.add_argument("--neutral", default=NEUTRAL, metavar="TEXT",
                          help="the instruction effects are measured against (default: "
                               "%(default)r)")
    instruct.add_argument("--seconds", type=float, default=3.0,
                          help="length of every video (default: %(default)s)")
    instruct.add_argument("--steps", type=int, default=25,
                          help="denoising steps of the sampler (default: %(default)s)")
    instruct.add_argument("--seed", type=int, default=0,
                          help="the noise, the same for every video (default: %(default)s)")
    instruct.add_argument("--out-json", type=Path, default=None, metavar="FILE.json",
                          help="write the result as JSON there")
    instruct.add_argument("--device", default=None,
                          help="cpu or cuda (default: cuda if available)")
    instruct.add_argument("--json", action="store_true", help="print the result as JSON")
    instruct.add_argument("--report", type=Path, default=None, metavar="FILE.html",
                          help="write the report page there, and FILE.json beside it")
    instruct.set_defaults(handler=_eval_instruct, default_portraits=default_portraits)


def portrait_files(folder: Path) -> list[Path]:
    """The images of ``folder``, sorted by name; ValueError when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"--portraits {folder} is not a folder: give a folder of portrait "
                         "images")
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not found:
        raise ValueError(f"--portraits {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return found


def _portraits(args: argparse.Namespace, scratch: Path) -> list[Path]:
    if args.portraits is not None:
        return portrait_files(args.portraits)
    if args.default_portraits is None:
        raise ValueError("give --portraits DIR: a folder of portrait images")
    beside = args.report or args.out_json
    folder = beside.with_suffix(".portraits") if beside is not None else scratch
    return args.default_portraits(folder)


def _eval_instruct(args: argparse.Namespace) -> int:
    from gaia.evaluation.instruct.cases import DEFAULT_CASES, read_cases
    from gaia.evaluation.instruct.measures import FrameMeasurer
    from gaia.evaluation.instruct.protocol import (
        InstructEvalSettings,
        evaluate_instruct,
        format_instruct,
    )
    from gaia.evaluation.instruct.report import write_instruct_json, write_instruct_report
    from gaia.evaluation.report import machine_readable
    from gaia.generation.generate import GenerateConfig
    from gaia.generation.instructed import (
        InstructedGenerator,
        clean_instruction,
        instructed_frames,
    )
    from gaia.training.s2m.sampler_config import SamplerConfig

    if args.steps < 1:
        raise ValueError("--steps must be at least 1")
    instructed_frames(args.seconds)
    settings = InstructEvalSettings(seconds=args.seconds, seed=args.seed, steps=args.steps,
                                    neutral=clean_instruction(args.neutral))
    cases = read_cases(args.instructions) if args.instructions else DEFAULT_CASES

    def progress(line: str) -> None:
        print(f"[eval] {line}", file=sys.stderr)

    config = GenerateConfig(sampler=SamplerConfig(steps=args.steps), seed=args.seed,
                            device=args.device)
    with tempfile.TemporaryDirectory(prefix="gaia-portraits-") as scratch:
        portraits = _portraits(args, Path(scratch))  # before the models: a bad folder fails fast
        source = InstructedGenerator(Path(args.vae), Path(args.instruct), config,
                                     text_encoder=args.text_encoder, progress=lambda _: None)
        progress(f"{source.describe()}; {len(portraits)} portraits x {len(cases)} "
                 "instructions, and the neutral one")
        result = evaluate_instruct(source, portraits, cases, settings, FrameMeasurer(),
                                   progress=progress)
    if args.report is not None:
        page, data = write_instruct_report(args.report, result)
        progress(f"report: {page} (result: {data})")
    if args.out_json is not None:
        progress(f"result: {write_instruct_json(args.out_json, result)}")
    print(json.dumps(machine_readable(result), indent=2) if args.json
          else format_instruct(result))
    return 0
