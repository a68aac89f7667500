"""Windows of 68 landmark coordinates, speech and pose read from curated clip shards, for the
landmark diffusion model of fully controllable generation (paper, section 5.4 and appendix D).

The landmark model is the speech-to-motion model with a different "motion": each frame's 68
points, ``(x + 0.5) / crop_size`` (pixel centres as fractions of the face crop, so any VAE
size renders them), flattened to 136 values. It learns from the clip shards curation writes
(``gaia.schemas.shards``) and reads only their arrays, never the mp4: ``landmarks.npy``,
``speech.npy``, ``pose.npy`` and the json. Windows, references and batches are the latent
windows' (``training.data.latent_windows``), so the stream splits, shuffles and resumes as the
motion model's does.

``landmark_stats`` makes the ``LatentStats`` the task standardises with, in one pass over the
shards' arrays (float64 sums, ``schemas.moments``): what ``stats.json`` is to latent
shards. Its ``vae`` provenance says what the motion dimensions are (``LANDMARK_MOTION``), which
is how generation tells a landmark checkpoint from a motion-latent one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaia.schemas.clip_sample import Skip, source_meta
from gaia.schemas.clip_sample import clip_array as read_array
from gaia.schemas.latents import reference_frame
from gaia.schemas.moments import Moments
from gaia.schemas.shards import N_LANDMARKS
from gaia.training.data.clip_decode import SampleError
from gaia.training.data.latent_stats import LatentStats
from gaia.training.data.latent_windows import WindowStreamConfig, check_clip_length
from gaia.training.data.shard_stream import expand_shards

LANDMARK_DIM = 2 * N_LANDMARKS
LANDMARK_SHAPE = (1, N_LANDMARKS, 2)  # LatentStats' "latent_shape" of the flattened points
LANDMARK_MOTION = {"motion": "landmarks", "points": N_LANDMARKS,
                   "units": "(x + 0.5) / crop_size"}


def landmark_units(landmarks: np.ndarray, crop_size: float) -> np.ndarray:
    """Crop pixels ``(T, 68, 2)`` -> the model's ``(T, 136)`` fractions of the crop."""
    return ((landmarks.astype(np.float32) + 0.5) / np.float32(crop_size)).reshape(
        len(landmarks), LANDMARK_DIM)


def image_pixels(units: np.ndarray, size: int) -> np.ndarray:
    """The model's ``(T, 136)`` fractions -> ``(T, 68, 2)`` pixels of a ``size`` image."""
    return (np.asarray(units, np.float32).reshape(-1, N_LANDMARKS, 2) * size - 0.5).astype(
        np.float32)


def landmark_sample(sample: dict) -> dict:
    """A clip shard's sample -> ``motion`` (landmark units), ``speech``, ``pose``,
    ``reference`` (the most frontal frame's points), ``key``, ``meta``. ``Skip`` when the
    clip cannot be used (no audio, bad arrays)."""
    members, meta = source_meta(sample)
    frames = meta["frames"]
    landmarks = read_array(members, "landmarks.npy", np.float32, (frames, N_LANDMARKS, 2))
    pose = read_array(members, "pose.npy", np.float32, (frames, 3))
    speech = read_array(members, "speech.npy", np.float16, (2 * frames, None))
    if not (np.isfinite(landmarks).all() and np.isfinite(pose).all()):
        raise Skip("failed", "landmarks.npy or pose.npy holds non-finite values")
    motion = landmark_units(landmarks, float(meta["crop_size"]))
    return {"key": meta["key"], "meta": meta, "motion": motion, "speech": speech,
            "pose": pose, "reference": motion[reference_frame(pose)]}


@dataclass(frozen=True)
class LandmarkStreamConfig(WindowStreamConfig):
    """``WindowStreamConfig`` over clip shards: the same windows, landmarks for motion."""

    def decode(self, sample: dict, rng: np.random.Generator) -> dict | None:
        try:
            clip = landmark_sample(sample)
        except Skip as skipped:
            # A vae-preset clip without audio is sound data, only not for this model.
            reason = "no_audio" if skipped.status == "no_audio" else "bad_array"
            raise SampleError(reason, skipped.reason) from skipped
        if self.split is not None and clip["meta"]["split"] != self.split:
            return None
        return check_clip_length(clip, self)


def landmark_stats(shards: str, split: str = "train") -> LatentStats:
    """Per-dimension mean and std of landmark units, pose and speech over the ``split`` clips
    of ``shards`` (all clips when none is in it); ValueError when no clip has speech or the
    clips' speech features differ."""
    import webdataset as wds

    totals = {"split": Moments(), "all": Moments()}
    features: dict[str, dict] = {}
    for url in expand_shards(shards):
        for sample in wds.tarfile_to_samples(handler=wds.warn_and_continue)([{"url": url}]):
            try:
                clip = landmark_sample(sample)
            except Skip:
                continue  # the stream skips and counts them; statistics go without
            provenance = clip["meta"]["provenance"]["speech_features"]
            features[repr(sorted(provenance.items()))] = provenance
            arrays = {"motion": clip["motion"], "pose": clip["pose"], "speech": clip["speech"]}
            totals["all"].add(arrays)
            if clip["meta"]["split"] == split:
                totals["split"].add(arrays)
    if len(features) > 1:
        raise ValueError(f"clips in {shards} have different speech features "
                         f"({list(features.values())}): train on clips of one extractor")
    moments = totals["split"] if totals["split"].frames else totals["all"]
    if not moments.frames:
        raise ValueError(f"no clip with speech, landmarks and pose in {shards}: give the clip "
                         "shards `gaia curate run` wrote (they need audio)")
    state = {"latent_shape": list(LANDMARK_SHAPE), "vae": dict(LANDMARK_MOTION),
             "speech_features": next(iter(features.values()))}
    for name in Moments.NAMES:
        state[f"{name}_mean"], state[f"{name}_std"] = moments.mean_std(name)
    return LatentStats.from_state(state)


def is_landmark_stats(stats: LatentStats) -> bool:
    """Whether a checkpoint's statistics are a landmark model's (``LANDMARK_MOTION``)."""
    return stats.vae.get("motion") == "landmarks" and stats.latent_dim == LANDMARK_DIM
