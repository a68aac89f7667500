"""``gaia curate ...``: the curation verbs of the command line (thin: parse, call, print)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gaia.pipeline.faces import DetectorConfig
from gaia.pipeline.measure_config import MeasureConfig

MEASURE_EPILOG = """\
INPUT is a video file, a folder (searched recursively), a glob ('raw/**/*.mp4') or a text
file listing one INPUT per line; local paths or URIs pyarrow opens (s3://, gs://, hdfs://).

Without --address (or RAY_ADDRESS) an embedded local Ray is started; on a cluster, run the
same command on the head node with --address auto, or send it with `ray job submit`.
Running it again on the same --out skips finished videos and measures the rest.

examples:
  gaia curate measure raw/ --out runs/r1
  gaia curate measure s3://bucket/raw/ --out /shared/runs/r1 --address auto
  ray job submit --working-dir . -- gaia curate measure inputs.txt --out /shared/runs/r1
"""


def add_curate_parser(commands: argparse._SubParsersAction) -> None:
    curate = commands.add_parser("curate", help="curation jobs: measure, ...",
                                 description="Curation jobs on Ray Data.")
    verbs = curate.add_subparsers(dest="verb", required=True, metavar="VERB")
    defaults = MeasureConfig()
    measure = verbs.add_parser(
        "measure", help="measure every frame of every input video (faces, pose, filters' measures)",
        description="Measure every frame of every input video into RUN_DIR/metrics/ "
                    "(Parquet, one row per frame) and RUN_DIR/videos.parquet (one row per input).",
        epilog=MEASURE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    measure.add_argument("inputs", nargs="+", metavar="INPUT", help="videos to measure")
    measure.add_argument("--out", required=True, type=Path, metavar="RUN_DIR",
                         help="output folder; reusing it resumes the job")
    measure.add_argument("--address", default=None,
                         help="Ray cluster to join ('auto' or host:port); default: RAY_ADDRESS, "
                              "else an embedded local Ray")
    measure.add_argument("--workers", type=int, default=None,
                         help="videos measured at once (default: the cluster's CPUs)")
    measure.add_argument("--landmarks", choices=("dlib", "fan"), default=defaults.landmarks,
                         help="68-point landmark model (default: %(default)s; fan needs "
                              "face-alignment weights in the torch hub cache)")
    measure.add_argument("--detect-every", type=int, default=defaults.detector.detect_every,
                         metavar="K", help="run the face detector every K frames and track "
                                           "in between (default: %(default)s)")
    measure.add_argument("--max-side", type=int, default=defaults.max_side, metavar="PX",
                         help="decode frames shrunk to this longer side (default: %(default)s)")
    measure.add_argument("--chunk-frames", type=int, default=defaults.chunk_frames, metavar="N",
                         help="frames decoded at a time; bounds memory (default: %(default)s)")
    measure.add_argument("--stall-timeout", type=float, default=defaults.stall_timeout_s,
                         metavar="S", help="stop a video whose decoding makes no progress for S "
                                           "seconds (default: %(default)s)")
    measure.add_argument("--retry-failed", action="store_true",
                         help="measure again the inputs that failed in an earlier run")
    measure.add_argument("--json", action="store_true",
                         help="print the summary as JSON on stdout (progress stays on stderr)")
    measure.set_defaults(handler=_measure)


def _measure(args: argparse.Namespace) -> int:
    from gaia.pipeline.measure_job import run_measure

    config = MeasureConfig(
        landmarks=args.landmarks,
        detector=DetectorConfig(detect_every=args.detect_every),
        max_side=args.max_side,
        chunk_frames=args.chunk_frames,
        stall_timeout_s=args.stall_timeout,
    )
    summary = run_measure(args.inputs, args.out, config, address=args.address,
                          workers=args.workers, retry_failed=args.retry_failed)
    if args.json:
        print(json.dumps({
            "inputs": summary.inputs, "skipped": summary.skipped,
            "measured_now": summary.measured_now, "status": dict(summary.status),
            "failed_by_reason": dict(summary.failed_by_reason), "flags": dict(summary.flags),
            "hours_measured": summary.hours_measured, "frames_measured": summary.frames_measured,
            "wall_s": summary.wall_s,
        }, indent=2))
    else:
        print(f"== measure summary: {args.out}")
        for line in summary.lines():
            print(line)
    sys.stdout.flush()
    return 0
