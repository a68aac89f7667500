"""``gaia inspect SHARDS_DIR``: check shards against the sample spec (docs/shards.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

INSPECT_EPILOG = """\
Checks every *.tar in SHARDS_DIR: each reads to its end, members are KEY.MEMBER, every sample
has its members with the right dtypes and shapes and as many rows as its mp4 has frames, keys
are unique, and manifest.parquet (when present) lists exactly the samples found.
Exits 1 when anything is wrong. SHARDS_DIR is a local folder (or file:///PATH); shards in an
object store (s3://, gs://, ...) are refused, naming the URI: copy them to a folder first.

examples:
  gaia inspect shards/
  gaia inspect shards/ --no-decode --json
"""


def shards_folder(text: str) -> Path:
    """argparse type of SHARDS_DIR: a local folder. A store URI is refused whole, never turned
    into a path (``Path("s3://b/p")`` is ``s3:/b/p``, a local folder that does not exist)."""
    from urllib.parse import unquote, urlsplit

    from gaia.common.storage import is_uri, redact

    if not is_uri(text):
        return Path(text)
    parts = urlsplit(text)
    if parts.scheme == "file" and parts.netloc in ("", "localhost"):
        return Path(unquote(parts.path))
    raise argparse.ArgumentTypeError(
        f"{redact(text)}: inspect reads a local folder, not an object store; copy the shards "
        "to a folder (e.g. aws s3 cp --recursive) and inspect that")


def add_inspect_parser(commands: argparse._SubParsersAction) -> None:
    inspect = commands.add_parser(
        "inspect", help="check WebDataset shards against the sample spec",
        description="Check a folder of shards: sample members, alignment of every per-frame "
                    "array with the mp4, unique keys, and the manifest; print a summary.",
        epilog=INSPECT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    inspect.add_argument("shards_dir", type=shards_folder, metavar="SHARDS_DIR",
                         help="folder holding *.tar shards (and manifest.parquet)")
    inspect.add_argument("--no-decode", action="store_true",
                         help="skip decoding mp4 and flac (fast: no frame or duration check)")
    inspect.add_argument("--json", action="store_true",
                         help="print the report as JSON on stdout")
    inspect.set_defaults(handler=handle_inspect)


def handle_inspect(args: argparse.Namespace) -> int:
    """Print the report (and every problem); 0 when the shards meet the spec, else 1."""
    from gaia.pipeline.extract.inspect_shards import inspect_shards

    report = inspect_shards(args.shards_dir, decode_media=not args.no_decode)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(f"== inspect: {args.shards_dir}")
        for line in report.lines():
            print(line)
    sys.stdout.flush()
    return 0 if report.ok else 1
