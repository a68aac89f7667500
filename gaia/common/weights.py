"""Pretrained weights on local disk: hashes, versions, and the errors that say what is missing.

docs/weights.md: nothing is ever downloaded. Every loader reads a local file or folder and,
when it is absent, raises ``MissingWeightsError`` naming the file and how to provide it. A
folder holding a file named ``UNTRAINED`` is a random-initialised model for tests: refused
unless untrained models are allowed, and recorded as such in the provenance.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

UNTRAINED_MARKER = "UNTRAINED"


class MissingWeightsError(RuntimeError):
    """A pretrained part's weights are not on this machine; the message says how to add them."""


class UntrainedWeightsError(MissingWeightsError):
    """The model found is marked untrained and the caller did not allow untrained models."""


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks so a large weight file costs no memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def weights_sha256(paths: Sequence[Path]) -> str:
    """SHA-256 of one weight file; of several, SHA-256 of their sorted ``name sha256`` lines."""
    if len(paths) == 1:
        return file_sha256(paths[0])
    lines = sorted(f"{Path(p).name} {file_sha256(p)}\n" for p in paths)
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


def stored_elements(files: Sequence[Path], load_bin: Callable[[Path], Mapping]) -> int:
    """How many numbers the weight files hold, nothing allocated: a ``.safetensors`` file from
    its header; any other file (a ``.bin``) through ``load_bin``, the caller's weights-only,
    memory-mapped loader (``torch.load(..., weights_only=True, mmap=True)``: this module imports
    no torch), counting the tensors of the mapping it gives."""
    from safetensors import safe_open

    total = 0
    for path in files:
        if Path(path).suffix == ".safetensors":
            with safe_open(str(path), framework="numpy") as handle:
                total += sum(math.prod(handle.get_slice(k).get_shape())
                             for k in handle.keys())  # noqa: SIM118 - not a dict
        else:
            total += sum(value.numel() for value in load_bin(Path(path)).values()
                         if hasattr(value, "numel"))
    return total


def check_untrained(folder: Path, what: str, allow_untrained: bool) -> bool:
    """Whether ``folder`` holds an untrained model; refuse one unless ``allow_untrained``."""
    untrained = (folder / UNTRAINED_MARKER).is_file()
    if untrained and not allow_untrained:
        raise UntrainedWeightsError(
            f"{what} at {folder} is marked untrained (file {UNTRAINED_MARKER}): its output is "
            "noise. Provide trained weights, or pass --allow-untrained (tests only)."
        )
    return untrained


def version_of(distribution: str) -> str:
    """The installed version of a distribution, or "not installed"."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def optional_model(metric: str, load, path, hint: str):
    """``(load(path), None)``, or ``(None, note)`` when no path is given or its file is
    missing: a metric whose weights are absent is reported as n/a with the file named, never
    computed from random weights. ``metric`` names it in the note ("FID")."""
    if path is None:
        return None, f"{metric}: n/a, no weights given. {hint}"
    try:
        return load(path), None
    except MissingWeightsError as err:
        return None, f"{metric}: n/a. {err}"
