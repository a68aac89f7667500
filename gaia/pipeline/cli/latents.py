"""``gaia encode-latents``: the motion latents the s2m model trains on (paper, section
4.2), as a Ray Data job (thin: parse, call, print)."""

from __future__ import annotations

import argparse
import json
import sys

from gaia.pipeline.runner.checks import output_folder, workers_arg

EPILOG = """\
SPEC: input shards of `gaia curate extract` (a folder, a glob, a brace pattern
'shards/shard-{000000..000099}.tar', URLs or 'pipe:CMD' entries), comma-separated.

outputs in DIR: one latent shard per input shard (<name>.tar: KEY.motion.npy, .reference.npy,
.speech.npy, .pose.npy, .json per clip with audio), parts/<name>.json (per-clip status and
per-shard sums), stats.json (per-dimension mean and std over the train split), manifest.parquet,
encode.json (the VAE). Running it again on the same DIR skips finished shards; a different VAE
on the same DIR is refused. Clips without audio are skipped (the model needs speech).
One run at a time per DIR: a second one is refused, naming the first (DIR/.gaia.lock).

Instruct shards (`gaia curate extract --preset instruct`, paper appendix E) are encoded with
--text-encoder DIR (a CLIP text model folder; `gaia samples text-encoder DIR` writes a small
random one for tests): each clip's condition is then its instruction's text embedding and a
clock since the cue, in .speech.npy's place, for `gaia train instruct`. Clips without audio are
taken; clips without instruction.json are skipped (no_instruction).

Without --address (or RAY_ADDRESS) an embedded local Ray is started; on a cluster DIR must be a
folder every node can write. One actor per GPU where the cluster has GPUs, else per CPU.

examples:
  gaia encode-latents --vae runs/vae-tiny --shards runs/r1/shards/s2m --out runs/latents
  gaia encode-latents --vae runs/vae-tiny --shards runs/r1/shards/instruct \
      --text-encoder models/clip-text --out runs/instruct-latents
  gaia encode-latents --vae runs/vae-base/checkpoints/step-00100000.pt \\
      --shards '/nfs/shards/shard-{000000..000999}.tar' --out /nfs/latents --address auto
"""


def add_encode_latents_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "encode-latents", help="encode the clips of shards into motion latents (s2m data)",
        description="Render every frame's landmarks and encode them with a trained VAE's motion "
                    "encoder (posterior mean), one Ray Data task per shard, into latent shards "
                    "with per-dimension statistics: the training data of the speech-to-motion "
                    "(s2m) model.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vae", required=True, metavar="CKPT_OR_RUN",
                        help="a VAE checkpoint (step-NNNNNNNN.pt) or a `gaia train vae` run "
                             "folder (its latest checkpoint)")
    parser.add_argument("--shards", required=True, metavar="SPEC", help="input shards (SPEC)")
    parser.add_argument("--out", required=True, type=str, metavar="DIR",
                        help="output folder or store URI (s3://BUCKET/PATH); reusing it "
                             "resumes the job")
    parser.add_argument("--address", default=None,
                        help="Ray cluster to join ('auto' or host:port); default: RAY_ADDRESS, "
                             "else an embedded local Ray")
    parser.add_argument("--workers", type=workers_arg, default=None, metavar="N",
                        help="shards encoded at once, 1 or more (default: one per GPU of the "
                             "cluster, else one per CPU)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None,
                        help="where the VAE runs (default: cuda on GPU nodes, else cpu)")
    parser.add_argument("--batch-frames", type=int, default=256, metavar="N",
                        help="frames rendered and encoded at once; bounds memory "
                             "(default: %(default)s)")
    parser.add_argument("--text-encoder", default=None, metavar="DIR",
                        help="CLIP text encoder folder: encode instruct shards, each clip "
                             "conditioned on its instruction (see below)")
    parser.add_argument("--allow-untrained", action="store_true",
                        help="accept a text encoder marked untrained (tests, the demo)")
    parser.add_argument("--json", action="store_true",
                        help="print the summary as JSON on stdout (progress stays on stderr)")
    parser.set_defaults(handler=_encode_latents)


def _encode_latents(args: argparse.Namespace) -> int:
    from gaia.pipeline.latents.job import run_encode_latents

    args.out = output_folder(args.out)
    summary = run_encode_latents(args.vae, args.shards, args.out, address=args.address,
                                 workers=args.workers, device=args.device,
                                 batch_frames=args.batch_frames,
                                 text_encoder=args.text_encoder,
                                 allow_untrained=args.allow_untrained)
    if args.json:
        print(json.dumps(summary.to_json(), indent=2))
    else:
        print(f"== encode-latents summary: {args.out}")
        for line in summary.lines():
            print(line)
    sys.stdout.flush()
    return 0
