"""``gaia curate ...``: the curation verbs of the command line (thin: parse, call, print)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gaia.common.deprecation import add_deprecated_alias
from gaia.common.storage import redact
from gaia.filters.describe import tune_help
from gaia.pipeline.face.detect import DetectorConfig
from gaia.pipeline.measure.config import BACKENDS, LANDMARK_MODELS, MeasureConfig
from gaia.pipeline.runner.checks import output_folder, workers_arg

MEASURE_EPILOG = """\
INPUT is a video file, a folder (searched recursively), a glob ('raw/**/*.mp4') or a text
file listing one INPUT per line; local paths or URIs pyarrow opens (s3://, gs://, hdfs://).

Without --address (or RAY_ADDRESS) an embedded local Ray is started; on a cluster, run the
same command on the head node with --address auto, or send it with `ray job submit`.
Running it again on the same --out skips finished videos and measures the rest. One run at a
time per RUN_DIR: a second one is refused, naming the first (lock: RUN_DIR/.gaia.lock; a
killed run's lock is taken over by the next run). A relative --out is taken from the current
folder; under `ray job submit` give an absolute one.

examples:
  gaia curate measure raw/ --out runs/r1
  gaia curate measure s3://bucket/raw/ --out /nfs/runs/r1 --address auto
  ray job submit --working-dir . -- gaia curate measure inputs.txt --out /nfs/runs/r1
"""


def add_curate_parser(commands: argparse._SubParsersAction) -> None:
    curate = commands.add_parser("curate", help="curation jobs: measure, tune, extract, run",
                                 description="Curation jobs on Ray Data.")
    verbs = curate.add_subparsers(dest="verb", required=True, metavar="VERB")
    measure = verbs.add_parser(
        "measure", help="measure every frame of every input video (faces, pose, filters' measures)",
        description="Measure every frame of every input video into RUN_DIR/metrics/ "
                    "(Parquet, one row per frame) and RUN_DIR/videos.parquet (one row per input).",
        epilog=MEASURE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    measure.add_argument("inputs", nargs="+", metavar="INPUT", help="videos to measure")
    measure.add_argument("--out", required=True, type=str, metavar="RUN_DIR",
                         help="output folder, or a store URI (s3://BUCKET/PATH; credentials "
                              "from the environment or ~/.aws, never the URI); reusing it "
                              "resumes the job")
    _add_measure_options(measure)
    measure.add_argument("--retry-failed", action="store_true",
                         help="measure again the inputs that failed in an earlier run")
    measure.add_argument("--json", action="store_true",
                         help="print the summary as JSON on stdout (progress stays on stderr)")
    measure.set_defaults(handler=_measure)

    tune = verbs.add_parser(
        "tune", help="what thresholds keep and drop, from stored measures (no decoding)",
        description="Apply curation thresholds to RUN_DIR/metrics/ and print the funnel: hours "
                    "and frames in, dropped by each filter (as first failing filter and as any "
                    "failing filter), kept hours and clips, by source folder. Reads only the "
                    "stored measures; nothing is decoded.",
        epilog=tune_help() + "\n" + TUNE_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    tune.add_argument("run_dir", type=str, metavar="RUN_DIR",
                      help="a measured run: a folder or a store URI (its measures are "
                           "downloaded to a temporary stage)")
    tune.add_argument("--preset", default=None,
                      help="thresholds preset: vae (loose) or s2m (strict; diffusion is its "
                           "old name), or a YAML "
                           "file (default: the built-in defaults)")
    tune.add_argument("--set", dest="overrides", action="append", default=[],
                      metavar="FILTER.KEY=VALUE", help="override one threshold (repeatable)")
    tune.add_argument("--sweep", default=None, metavar="FILTER.KEY=START:STOP:STEP",
                      help="kept hours and clips for each value of one threshold")
    tune.add_argument("--measures", choices=("auto", "table", "metrics"), default="auto",
                      help="read the compact tune table (RUN_DIR/tune/, built when missing; "
                           "exact for thresholds on its grid), or metrics/ (the reference), "
                           "or auto: the table unless a threshold is off its grid "
                           "(default: %(default)s)")
    tune.add_argument("--serve", action="store_true",
                      help="serve a page to tune the thresholds live in a browser: a slider "
                           "per threshold, a switch per filter, the funnel, histograms, frames "
                           "near a threshold, and a button that saves a preset YAML")
    tune.add_argument("--host", default="127.0.0.1",
                      help="address to serve on (default: %(default)s; any other address "
                           "needs the token printed in the URL)")
    tune.add_argument("--port", type=int, default=8765,
                      help="port to serve on, 0 for any free one (default: %(default)s)")
    tune.add_argument("--json", action="store_true",
                      help="print the funnel as JSON on stdout (logs go to stderr)")
    tune.add_argument("--table1", action="store_true",
                      help="also print the paper's Table 1 for this run: per source and in "
                           "total, #IDs (run-wide identities) and hours, raw and after the "
                           "thresholds (with --json: a table1 key)")
    tune.add_argument("--report", type=Path, default=None, metavar="FILE.html",
                      help="write a self-contained HTML report (histograms, retention, "
                           "thumbnails, per-video strips)")
    tune.set_defaults(handler=_tune)

    extract = verbs.add_parser(
        "extract", help="cut the kept segments of a measured run into WebDataset shards",
        description="Cut the segments that PRESET keeps (exactly what `tune` reports) into "
                    "WebDataset shards under RUN_DIR/shards/PRESET/, with manifest.parquet and "
                    "stats.json. Running it again resumes: clips already in finished shards "
                    "are skipped.", formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXTRACT_EPILOG)
    extract.add_argument("run_dir", type=str, metavar="RUN_DIR",
                         help="a measured run: a folder or a store URI")
    _add_extract_options(extract)
    extract.set_defaults(handler=_extract)

    run = verbs.add_parser(
        "run", help="the main job: measure INPUT..., then extract PRESET's clips into shards",
        description="measure, then extract: the whole curation of INPUT... into RUN_DIR.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=MEASURE_EPILOG + "\n" + EXTRACT_EPILOG)
    run.add_argument("inputs", nargs="+", metavar="INPUT", help="videos to curate")
    run.add_argument("--out", required=True, type=str, metavar="RUN_DIR",
                     help="output folder or store URI (s3://BUCKET/PATH); reusing it resumes")
    _add_measure_options(run)
    _add_extract_options(run)
    run.set_defaults(handler=_run)


def _add_measure_options(parser: argparse.ArgumentParser) -> None:
    defaults = MeasureConfig()
    parser.add_argument("--address", default=None,
                         help="Ray cluster to join ('auto' or host:port); default: RAY_ADDRESS, "
                              "else an embedded local Ray")
    parser.add_argument("--workers", type=workers_arg, default=None, metavar="N",
                         help="videos measured at once, 1 or more (default: one per CPU of "
                              "the cluster)")
    parser.add_argument(
        "--face-backend", dest="backend", choices=BACKENDS, default=defaults.backend,
        help="face detection and landmarks: dlib (HOG + the 68-point predictor) or mediapipe "
             "(BlazeFace + the face mesh, from the mediapipe wheel, run with LiteRT; finds "
             "turned faces) (default: %(default)s)")
    backend = parser.add_argument(
        "--landmark-backend", dest="landmarks", choices=LANDMARK_MODELS,
        default=defaults.landmarks,
        help="68-point landmark fitter; auto: the face backend's own (default: %(default)s; "
             "mesh: MediaPipe's face mesh mapped to 68 points; fan needs face-alignment "
             "weights in the torch hub cache)")
    parser.add_argument("--no-hands", dest="hands", action="store_false",
                        help="do not look for hands over the mouth (the hand_cover measure; "
                             "needs the mediapipe wheel)")
    add_deprecated_alias(parser, "--landmarks", backend)
    parser.add_argument("--syncnet-weights", default=None, metavar="PATH",
                        help="syncnet_v2.model (joonson/syncnet_python's published state dict, "
                             "never downloaded): SyncNet's per-frame offset and confidence, for "
                             "the lip_sync filter and extract's audio shift (default: none, "
                             "those columns are null)")
    parser.add_argument("--detect-every", type=int, default=defaults.detector.detect_every,
                         metavar="K", help="run the face detector every K frames and track "
                                           "in between (default: %(default)s)")
    min_side = parser.add_argument(
        "--min-side", type=int, default=defaults.min_side, metavar="PX",
        help="decode frames shrunk to at least this longer side; larger when the faces are "
             f"small, so the face keeps about {defaults.face_px:.0f} px (96 for the face "
             "mesh) (default: "
             "%(default)s)")
    add_deprecated_alias(parser, "--max-side", min_side)
    parser.add_argument("--chunk-frames", type=int, default=defaults.chunk_frames, metavar="N",
                         help="frames decoded at a time; bounds memory (default: %(default)s)")
    parser.add_argument("--stall-timeout", type=float, default=defaults.stall_timeout_s,
                         metavar="S", help="stop a video whose decoding makes no progress for S "
                                           "seconds (default: %(default)s)")


EXTRACT_EPILOG = """\
outputs: RUN_DIR/shards/PRESET/shard-NNNNNN.tar (KEY.mp4, .flac, .speech.npy, .landmarks.npy,
.pose.npy, .json per clip), manifest.parquet (one row per clip), stats.json (funnel, hours,
clips, shards), failures.parquet. Check them with `gaia inspect RUN_DIR/shards/PRESET`.

examples:
  gaia curate extract runs/r1 --preset s2m
  gaia curate extract runs/r1 --preset s2m --features wav2vec2 --wav2vec2 models/w2v
  gaia curate run raw/ --out runs/r1 --preset vae
"""


def _add_extract_options(parser: argparse.ArgumentParser) -> None:
    from gaia.pipeline.extract.job import ExtractConfig

    defaults = ExtractConfig()
    parser.add_argument("--preset", required=True,
                        help="thresholds: vae, s2m (strict; diffusion is its old name), or a "
                             "YAML file")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="FILTER.KEY=VALUE", help="override one threshold (repeatable)")
    parser.add_argument("--denoise", choices=("none", "dns48", "dns64", "master64", "demucs"),
                        default=defaults.denoise,
                        help="audio denoising: the paper's speech enhancer (dns48, dns64, "
                             "master64: Defossez et al. 2020), demucs's music separation "
                             "(vocals), or none (default: %(default)s)")
    parser.add_argument("--denoise-weights", default=None, metavar="PATH",
                        help="local model file or folder for --denoise (never downloaded)")
    parser.add_argument("--trust-pickled-weights", action="store_true",
                        help="load a demucs .th model: a pickle, which runs any code it holds, "
                             "so only for a file whose source you trust (else use .safetensors)")
    parser.add_argument("--features", choices=("logmel", "wav2vec2"), default=defaults.features,
                        help="speech features (default: %(default)s; wav2vec2 needs "
                             "--wav2vec2)")
    wav2vec2 = parser.add_argument(
        "--wav2vec2", dest="features_dir", default=None, metavar="DIR",
        help="local wav2vec 2.0 model folder (config.json and weights)")
    add_deprecated_alias(parser, "--features-dir", wav2vec2)
    parser.add_argument("--allow-untrained", action="store_true",
                        help="accept weights marked untrained; the samples say so")
    parser.add_argument("--shard-size", type=float, default=defaults.shard_mb, metavar="MB",
                        help="target shard size in MB (default: %(default)s)")
    parser.add_argument("--val-fraction", type=float, default=defaults.val_fraction,
                        metavar="F", help="share of identities in the validation split "
                                          "(default: %(default)s)")
    parser.add_argument("--shift-audio-by", choices=("syncnet", "weightless", "none"),
                        default=defaults.shift_audio_by,
                        help="whose measured lip-sync lag shifts a clip's audio: SyncNet's "
                             "(measure --syncnet-weights; without them no shift), the weightless "
                             "estimator's (noise on faces that are not the speaker) or none "
                             "(default: %(default)s)")
    parser.add_argument("--identities", default=None, metavar="FILE.csv",
                        help="CSV with path (or video_id) and identity columns; default "
                             "identity: the source folder")
    if not any(action.dest == "address" for action in parser._actions):  # extract alone
        parser.add_argument("--address", default=None,
                            help="Ray cluster to join; default: RAY_ADDRESS, else local Ray")
        parser.add_argument("--workers", type=workers_arg, default=None, metavar="N",
                            help="videos cut at once, 1 or more (default: one per CPU of the "
                                 "cluster)")


def _extract_config(args: argparse.Namespace):
    from gaia.pipeline.extract.job import ExtractConfig

    return ExtractConfig(denoise=args.denoise, denoise_weights=args.denoise_weights,
                         features=args.features, features_dir=args.features_dir,
                         allow_untrained=args.allow_untrained,
                         trust_pickled_weights=args.trust_pickled_weights,
                         shard_mb=args.shard_size,
                         val_fraction=args.val_fraction, shift_audio_by=args.shift_audio_by)


def _extract(args: argparse.Namespace, setup=None) -> int:
    from gaia.pipeline.extract.job import run_extract

    args.run_dir = output_folder(args.run_dir, "RUN_DIR")
    summary = run_extract(args.run_dir, args.preset, args.overrides, _extract_config(args),
                          identities_csv=args.identities, address=args.address,
                          workers=args.workers, setup=setup)
    print(f"== extract summary: {args.run_dir} ({args.preset})")
    for line in summary.lines():
        print(line)
    return 0


def _run(args: argparse.Namespace) -> int:
    """measure, then extract, under one lock on RUN_DIR; the extract settings (preset,
    thresholds, weights) are checked before the first video is measured."""
    from gaia.pipeline.extract.job import check_extract
    from gaia.pipeline.runner.out_lock import hold_output
    from gaia.pipeline.runner.ray_setup import log_to_stderr
    from gaia.pipeline.runner.staging import staged_output
    from gaia.pipeline.tune.table import format_funnel, funnel_for

    args.out = output_folder(args.out)
    setup = check_extract(args.preset, args.overrides, _extract_config(args), args.identities)
    args.retry_failed, args.json, args.run_dir = False, False, args.out

    def log(line: str) -> None:
        log_to_stderr(f"[run] {line}")

    # One stage (a store URI) and one lock for both jobs; they enter them again.
    with staged_output(args.out, log=log) as root, hold_output(root, log=log):
        _measure(args)
        funnel = funnel_for(root, setup.thresholds)
        for line in format_funnel(funnel, f"{args.preset} ({redact(str(args.out))})"):
            print(line)
        return _extract(args, setup)


# What tune reads of a run in a store (pulled into a temporary stage; never the shards).
TUNE_READS = ("config.yaml", "videos.parquet", "status/", "metrics/", "tune/", "presets/",
              "duplicates.parquet", "identities.parquet")

TUNE_EXAMPLES = """\
examples:
  gaia curate tune runs/r1 --preset s2m
  gaia curate tune runs/r1 --preset vae --set jitter.max_box=0.2 --json
  gaia curate tune runs/r1 --preset s2m --sweep frontal.max_deviation_deg=10:40:5
  gaia curate tune runs/r1 --preset s2m --report runs/r1/s2m.html
  gaia curate tune runs/r1 --preset s2m --serve        # then open the URL it prints
  gaia curate tune runs/r1 --preset runs/r1/presets/tuned.yaml   # a preset saved by the page
"""


def _tune(args: argparse.Namespace) -> int:
    from gaia.pipeline.runner.staging import staged_output

    given = output_folder(args.run_dir, "RUN_DIR")
    with staged_output(given, pull=TUNE_READS, lock=False) as root:
        args.run_dir, args.run_name = root, str(given)
        return _tune_here(args)


def _tune_here(args: argparse.Namespace) -> int:
    from gaia.filters.thresholds import load_thresholds
    from gaia.pipeline.tune.table import format_funnel, funnel_for, parse_sweep, run_sweep

    thresholds = load_thresholds(args.preset, args.overrides)
    title = f"{args.preset or 'defaults'}{' ' + ' '.join(args.overrides) if args.overrides else ''}"
    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    if args.serve:
        from gaia.pipeline.tune.serve import serve

        serve(args.run_dir, thresholds, args.preset, args.host, args.port, log)
        return 0
    funnel = funnel_for(args.run_dir, thresholds, source=args.measures, log=log)
    document = {"run_dir": args.run_name, "preset": args.preset,
                "thresholds": thresholds.to_dict(), **funnel.to_json()}
    ids = None
    if args.table1:
        from gaia.pipeline.tune.table1 import table1_rows
        from gaia.pipeline.tune.table1_ids import count_identities

        ids = count_identities(args.run_dir, thresholds, log=log)
        document["table1"] = table1_rows(funnel, ids)
    if args.sweep:
        sweep = parse_sweep(args.sweep)
        rows = run_sweep(args.run_dir, thresholds, sweep, log=log)
        document["sweep"] = {"key": sweep.name, "values": [
            {"value": value, "kept_hours": f.kept_s / 3600, "clips": f.clips} for value, f in rows]}
    if args.report:
        from gaia.pipeline.tune.report import write_report

        write_report(args.run_dir, thresholds, args.report, title=title)
        print(f"[tune] report written to {args.report}", file=sys.stderr)
    if args.json:
        print(json.dumps(document, indent=2))
        return 0
    for line in format_funnel(funnel, f"{title} ({args.run_name})"):
        print(line)
    if args.table1:
        from gaia.pipeline.tune.table1 import table1_lines

        print()
        for line in table1_lines(funnel, ids):
            print(line)
    if args.sweep:
        print(f"\nsweep of {document['sweep']['key']}:")
        print(f"  {'value':>10}  {'kept hours':>12}  {'clips':>6}")
        for row in document["sweep"]["values"]:
            print(f"  {row['value']:>10g}  {row['kept_hours']:>12.4f}  {row['clips']:>6}")
    return 0


def _measure(args: argparse.Namespace) -> int:
    from gaia.pipeline.measure.job import run_measure

    args.out = output_folder(args.out)
    config = MeasureConfig(
        backend=args.backend,
        landmarks=args.landmarks,
        hands=args.hands,
        syncnet_weights=args.syncnet_weights,
        detector=DetectorConfig(detect_every=args.detect_every),
        min_side=args.min_side,
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
