"""A curated clip sample read back against the shard spec (docs/shards.md,
``gaia.schemas.shards``): its members and JSON checked as far as a model that learns from the
clip's arrays needs (the latent encoder, the landmark model), with ``Skip`` saying why a
sample gives nothing."""

from __future__ import annotations

import json

import numpy as np

from gaia.schemas.keys import check_key
from gaia.schemas.shards import FRAME_SIZE, SPLITS, check_member, load_npy


class Skip(Exception):
    """A sample that gives no latent sample: ``status`` (``no_audio``, ``failed``) and why."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def _field(meta: dict, name: str, kind: type | tuple[type, ...]):
    value = meta.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise Skip("failed", f"source json field {name!r} missing or of the wrong type")
    return value


def clip_array(members: dict[str, bytes], name: str, dtype, shape: tuple) -> np.ndarray:
    """A source array checked against the shard spec (``None`` in ``shape``: any length)."""
    if name not in members:
        raise Skip("failed", f"missing member {name}")
    try:
        array = load_npy(members[name])
    except ValueError as err:
        raise Skip("failed", f"{name} is not a plain .npy array: {err}") from err
    if array.dtype != dtype:
        raise Skip("failed", f"{name} has dtype {array.dtype}, the shard spec says "
                             f"{np.dtype(dtype)}")
    if array.ndim != len(shape) or any(w is not None and w != n
                                       for w, n in zip(shape, array.shape, strict=True)):
        raise Skip("failed", f"{name} has shape {array.shape}, expected {shape}")
    return array


def source_meta(sample: dict, needs_speech: bool = True) -> tuple[dict[str, bytes], dict]:
    """A source sample's members and JSON, checked as far as the latents need; raises ``Skip``
    (``no_audio`` for a clip without speech, else ``failed``). ``needs_speech=False`` (an
    instruction clip, whose condition is its instruction's text) takes clips without audio."""
    members = {name: blob for name, blob in sample.items() if not name.startswith("__")}
    try:
        for name in members:
            check_member(name)  # before anything is parsed: never touch a pickle
        meta = json.loads(members["json"].decode("utf-8")) if "json" in members else None
        key = str(sample.get("__key__"))
        check_key(key)
    except (UnicodeDecodeError, ValueError) as err:
        raise Skip("failed", str(err)) from err
    if not isinstance(meta, dict):
        raise Skip("failed", "json member missing or not an object")
    if meta.get("key") != key:
        raise Skip("failed", f"json key {meta.get('key')!r} is not the sample key {key!r}")
    if not isinstance(meta.get("has_audio"), bool):
        raise Skip("failed", "source json field 'has_audio' missing or not a boolean")
    if needs_speech and not meta["has_audio"]:
        raise Skip("no_audio", "the clip has no audio; the s2m model needs speech")
    for name, kind in (("frames", int), ("split", str), ("fps", (int, float)),
                       ("identity", str), ("source_video", str)):
        _field(meta, name, kind)
    if meta["frames"] < 1 or meta["split"] not in SPLITS:
        raise Skip("failed", f"source json frames {meta['frames']} or split {meta['split']!r} "
                             "is invalid")
    provenance = meta.get("provenance")
    if not isinstance(provenance, dict) or (needs_speech and not isinstance(
            provenance.get("speech_features"), dict)):
        raise Skip("failed", "source json has no provenance.speech_features")
    crop_size = meta.setdefault("crop_size", FRAME_SIZE[0])  # older shards: the frame size
    if not isinstance(crop_size, int | float) or isinstance(crop_size, bool) or crop_size <= 0:
        raise Skip("failed", f"source json crop_size {crop_size!r} is not a positive number")
    return members, meta
