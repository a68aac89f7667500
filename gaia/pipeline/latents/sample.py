"""One clip's latent sample: the VAE that encodes it, the source sample's checks against the
shard spec, and the motion latents of its landmarks (paper, section 4.2; docs/shards.md;
the output format is ``gaia.schemas.latents``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gaia.common.crop import to_model_pixels
from gaia.common.weights import file_sha256
from gaia.schemas.clip_sample import Skip, clip_array, source_meta
from gaia.schemas.instruction import INSTRUCTION_MEMBER
from gaia.schemas.latents import LATENT_SCHEMA_VERSION, read_latent_sample, reference_frame
from gaia.schemas.shards import N_LANDMARKS, SPEECH_ROWS_PER_FRAME, dump_npy


@dataclass(frozen=True)
class VaeIdentity:
    """Which VAE made the latents: recorded in ``encode.json``, every sample and the stats."""

    checkpoint: str  # file name of the checkpoint
    step: int
    sha256: str
    config: str  # the VAE config's name, e.g. vae-base
    latent_shape: tuple[int, int, int]  # (C, h, w) of the latent the s2m model learns
    # "motion" (of landmarks), or "frame" for a VAE without disentanglement (table 6)
    latent: str = "motion"

    def provenance(self) -> dict:
        return {"checkpoint": self.checkpoint, "step": self.step, "sha256": self.sha256,
                "config": self.config, "latent": self.latent}



def vae_identity(vae: str | Path) -> tuple[Path, VaeIdentity]:
    """The checkpoint file of ``vae`` (a file or a run folder's latest) and its identity.

    Read memory-mapped: the driver needs the step and the config, not the weights.
    """
    from gaia.training.checkpoint import resolve_checkpoint, safe_load
    from gaia.training.vae.config import build_vae_config

    checkpoint = resolve_checkpoint(vae)
    state = safe_load(checkpoint, "a VAE checkpoint of `gaia train vae`",
                      "pass --vae a VAE run or checkpoint", mmap=True)
    task = state.get("task") if isinstance(state, dict) else None
    if not isinstance(task, dict) or "model" not in task or "config" not in task:
        raise ValueError(f"{checkpoint} is not a VAE checkpoint of `gaia train vae` (it has no "
                         "task.model and task.config): pass --vae a VAE run or checkpoint")
    config = build_vae_config(task["config"])
    return checkpoint, VaeIdentity(checkpoint.name, int(state.get("step", 0)),
                                   file_sha256(checkpoint), config.name,
                                   tuple(config.s2m_latent_shape), config.latent_kind)


def encode_landmarks(vae, landmarks: np.ndarray, crop_size: float, batch_frames: int
                     ) -> np.ndarray:
    """Landmarks ``(frames, 68, 2)`` in pixels of the ``crop_size`` crop -> motion latents
    ``(frames, D)`` float32: posterior means of the rendered landmarks (``vae``: a
    ``LoadedVae``), ``batch_frames`` frames at a time."""
    import torch

    # As the training loader maps them through its resize: pixel centres stay centres.
    points = to_model_pixels(landmarks.astype(np.float32), crop_size, vae.config.image_size)
    latents = []
    for start in range(0, len(points), batch_frames):
        batch = torch.from_numpy(np.ascontiguousarray(points[start:start + batch_frames]))
        latents.append(vae.motion_latents(batch).flatten(1).float().cpu().numpy())
    return np.concatenate(latents).astype(np.float32, copy=False)


def encode_frames(vae, mp4: bytes, frames: int, batch_frames: int) -> np.ndarray:
    """The whole-frame latents ``(frames, D)`` float32 of a clip's mp4, decoded at the VAE's
    size as the training loader decodes it, ``batch_frames`` at a time (a VAE without
    disentanglement; ``vae``: a ``LoadedVae``). ``Skip`` when the mp4 does not decode whole."""
    from gaia.training.data.clip_decode import SampleError, frame_batches

    try:
        return np.concatenate([
            vae.s2m_latents(images, None).cpu().numpy()
            for images in frame_batches(mp4, frames, vae.config.image_size, batch_frames)
        ]).astype(np.float32, copy=False)
    except SampleError as err:
        raise Skip("failed", f"mp4: {err}") from err


def latent_sample(vae, identity: VaeIdentity, sample: dict, batch_frames: int,
                  source_shard: str = "", instruction=None) -> tuple[dict[str, bytes], dict]:
    """One source sample (WebDataset dict of member bytes) -> its latent members and the arrays
    its statistics need (``motion``, ``pose``, ``speech``, ``meta``). Raises ``Skip``.

    ``instruction`` (an ``InstructionCondition``, for ``--text-encoder``): the condition is the
    sample's instruction, not its speech (``latents.instruction``; appendix E)."""
    members, meta = source_meta(sample, needs_speech=instruction is None)
    frames = meta["frames"]
    landmarks = clip_array(members, "landmarks.npy", np.float32, (frames, N_LANDMARKS, 2))
    pose = clip_array(members, "pose.npy", np.float32, (frames, 3))
    text = None
    if instruction is not None:
        features = instruction.provenance
        speech, text = instruction.rows(members, frames, float(meta["fps"]))
    else:
        if INSTRUCTION_MEMBER in members:
            raise Skip("failed", "an instruction clip (instruct preset): its condition is its "
                                 "instruction; encode it with --text-encoder DIR")
        features = meta["provenance"]["speech_features"]
        speech = clip_array(members, "speech.npy", np.float16,
                            (SPEECH_ROWS_PER_FRAME * frames, None))
    if isinstance(features.get("dim"), int) and speech.shape[1] != features["dim"]:
        raise Skip("failed", f"speech.npy has {speech.shape[1]} features, its provenance says "
                             f"{features['dim']}")
    if not np.isfinite(landmarks).all():
        raise Skip("failed", "landmarks.npy holds non-finite values")
    if vae.config.disentangle:
        motion = encode_landmarks(vae, landmarks, float(meta["crop_size"]), batch_frames)
    else:  # table 6's VAE without disentanglement: the latents of the frames themselves
        if "mp4" not in members:
            raise Skip("failed", "missing member mp4")
        motion = encode_frames(vae, members["mp4"], frames, batch_frames)
    reference = reference_frame(pose)
    latent_json = {
        **{name: meta[name] for name in ("key", "frames", "fps", "split", "identity",
                                         "source_video")},
        "latent_schema_version": LATENT_SCHEMA_VERSION, "reference_frame": reference,
        "latent": identity.latent,
        "latent_shape": list(identity.latent_shape), "vae": identity.provenance(),
        "speech_features": features, "source_shard": source_shard,
        "start_s": meta.get("start_s"), "end_s": meta.get("end_s"),
        "provenance": meta["provenance"],
    }
    if text is not None:
        latent_json["instruction"] = text
    out = {
        "motion.npy": dump_npy(motion), "reference.npy": dump_npy(motion[reference]),
        "speech.npy": dump_npy(speech), "pose.npy": dump_npy(pose),
        "json": json.dumps(latent_json, sort_keys=True).encode("utf-8"),
    }
    try:
        read_latent_sample(out)  # what the trainer will check, checked before it is written
    except ValueError as err:
        raise Skip("failed", f"latent sample invalid: {err}") from err
    return out, {"motion": motion, "pose": pose, "speech": speech, "meta": latent_json}
