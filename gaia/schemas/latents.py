"""Latent shards, version 2: what ``gaia encode-latents`` writes and the s2m trainer reads
(paper, section 4.2; docs/shards.md).

One sample per clip of the source shards that has audio, under the clip's key. Members:

==================  ===============================================================
``motion.npy``      float32 ``(frames, D)``: the VAE's motion latent of every frame (posterior
                    mean of the rendered landmarks), flattened from ``latent_shape`` (C, h, w)
``reference.npy``   float32 ``(D,)``: the motion latent of the reference frame
``speech.npy``      float16 ``(2 * frames, F)``: the clip's speech features, as in the source
``pose.npy``        float32 ``(frames, 3)``: pitch, yaw, roll in degrees, as in the source
``json``            UTF-8 object: ``LATENT_JSON_FIELDS`` and the source sample's provenance
==================  ===============================================================

Version 2 adds the JSON field ``latent``: ``motion`` (the paper's motion latents, all that
version 1 held) or ``frame`` (the whole-frame latents of a VAE trained with ``disentangle:
false``, table 6's "w/o disentanglement", stored in ``motion.npy`` and ``reference.npy`` all
the same, since the s2m model learns them in the motion latents' place). Version 1 samples
still read, as ``latent: motion``.

Values are raw (not normalised): ``stats.json`` beside the shards holds the per-dimension mean
and standard deviation of ``motion``, ``pose`` and ``speech`` over all frames of the train
split, and the trainer stores them in its checkpoints. Like the source shards, only ``.npy``
(read with ``allow_pickle=False``) and ``.json`` members: never pickles.
"""

from __future__ import annotations

import json

import numpy as np

from gaia.schemas.keys import check_key
from gaia.schemas.shards import SPLITS, check_member, load_npy

LATENT_SCHEMA_VERSION = 2
READ_VERSIONS = (1, 2)  # version 1: before `latent`, motion latents only
LATENT_KINDS = ("motion", "frame")
LATENT_MEMBERS = ("motion.npy", "reference.npy", "speech.npy", "pose.npy", "json")
STATS_FILE = "stats.json"

LATENT_JSON_FIELDS: dict[str, type | tuple[type, ...]] = {
    "key": str,
    "latent_schema_version": int,
    "frames": int,
    "fps": (int, float),
    "split": str,
    "identity": str,
    "source_video": str,
    "reference_frame": int,  # index of the frame whose motion latent is reference.npy
    "latent_shape": list,  # [C, h, w] of the motion latent; D = C * h * w
    "vae": dict,  # checkpoint file name, step, sha256, config name
    "speech_features": dict,  # the source shards' speech-feature provenance
}

STATS_FIELDS = ("frames", "clips", "latent_shape", "motion_mean", "motion_std", "pose_mean",
                "pose_std", "speech_mean", "speech_std", "vae", "speech_features")


def reference_frame(pose: np.ndarray) -> int:
    """The most frontal frame of a clip (smallest ``|pitch| + |yaw|``; the first on ties):
    portraits given at generation are mostly frontal, so the reference is drawn alike."""
    if pose.ndim != 2 or pose.shape[1] != 3 or not len(pose):
        raise ValueError(f"pose must be (frames, 3), got {pose.shape}")
    return int(np.argmin(np.abs(pose[:, 0]) + np.abs(pose[:, 1])))


def read_latent_sample(members: dict[str, bytes]) -> dict:
    """A latent sample's members (name -> bytes) as arrays and its JSON; ``ValueError`` naming
    the problem when a member is missing, refused (pickles), or out of shape."""
    data = {name: blob for name, blob in members.items() if not name.startswith("__")}
    for name in data:
        check_member(name)
    missing = [name for name in LATENT_MEMBERS if name not in data]
    if missing:
        raise ValueError(f"missing members {missing}")
    meta = json.loads(data["json"].decode("utf-8"))
    if not isinstance(meta, dict):
        raise ValueError("json is not an object")
    for name, kind in LATENT_JSON_FIELDS.items():
        if not isinstance(meta.get(name), kind) or isinstance(meta.get(name), bool):
            raise ValueError(f"json field {name!r} missing or of the wrong type")
    if meta["latent_schema_version"] not in READ_VERSIONS:
        raise ValueError(f"latent_schema_version {meta['latent_schema_version']}, expected "
                         f"one of {READ_VERSIONS}")
    meta.setdefault("latent", "motion")  # version 1 (and samples made by hand): motion latents
    if meta["latent"] not in LATENT_KINDS:
        raise ValueError(f"json field 'latent' is {meta['latent']!r}, not one of "
                         f"{LATENT_KINDS}")
    if meta["split"] not in SPLITS:
        raise ValueError(f"split {meta['split']!r} is not one of {list(SPLITS)}")
    check_key(meta["key"])
    frames = meta["frames"]
    dim = int(np.prod(meta["latent_shape"]))
    arrays = {name.removesuffix(".npy"): load_npy(data[name])
              for name in LATENT_MEMBERS if name.endswith(".npy")}
    shapes = {"motion": (frames, dim), "reference": (dim,), "pose": (frames, 3)}
    for name, shape in shapes.items():
        if arrays[name].shape != shape:
            raise ValueError(f"{name}.npy has shape {arrays[name].shape}, expected {shape}")
    speech = arrays["speech"]
    if speech.ndim != 2 or speech.shape[0] != 2 * frames:
        raise ValueError(f"speech.npy has shape {speech.shape}, expected ({2 * frames}, F)")
    for name, array in arrays.items():
        if not np.issubdtype(array.dtype, np.floating) or not np.isfinite(array).all():
            raise ValueError(f"{name}.npy is not finite floating point ({array.dtype})")
    return {**arrays, "meta": meta}
