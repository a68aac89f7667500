"""``gaia eval s2m --landmarks``: the landmark model measured as the s2m model is (paper,
table 6, "w. landmark prediction": the diffusion model synthesises the landmark coordinates
instead of the motion latents).

The landmark model (``gaia train landmarks``) learns from clip shards, so it is evaluated on
them, with no latent shards: for every clip (up to ``clips``, of ``split``) it samples the 68
landmarks of every frame from the clip's speech, the first frame's landmarks as the reference
(appendix B.3) and the real or predicted head pose, exactly as ``evaluation.s2m`` samples
motion latents. Then, as ``gaia generate --landmarks`` does, the points are drawn in pixels of
the VAE's image, rendered, motion-encoded by the VAE and decoded with the appearance of the
clip's first frame; those frames go through the same scoring as the s2m model's
(``evaluation.s2m``: MSI, lip sync, Sync-C/D, FID), so the two rows of table 6 are measured
alike. ``motion_mse`` and its baseline are here in standardised landmark units, and
``landmark_error_px`` is the mean distance of a sampled point from the real one, in pixels of
the VAE's image.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import webdataset as wds
from torch import nn

from gaia.evaluation.fid import FrechetScore
from gaia.evaluation.keypoints import LandmarkFn

# The s2m evaluation's per-clip scoring and summary, shared so both rows are measured alike.
from gaia.evaluation.s2m import (
    POSES,
    SOURCE_MEMBERS,
    _FrameScoring,
    _Scores,
    clip_counts,
    clip_seed,
    evaluation_result,
    summarise_metrics,
)
from gaia.evaluation.s2m_metrics import pose_error
from gaia.generation.generate import check_vae, speech_differences
from gaia.inference.s2m import LoadedS2m
from gaia.inference.vae import LoadedVae
from gaia.schemas.clip_sample import Skip
from gaia.training.data.shard_stream import expand_shards
from gaia.training.landmarks.data import image_pixels, is_landmark_stats, landmark_sample
from gaia.training.s2m.sampler_config import SamplerConfig

ENCODE_BATCH = 64  # landmark frames rendered and motion-encoded at a time


def landmark_clips(spec: str, split: str | None, limit: int | None
                   ) -> tuple[list[tuple[dict, dict[str, bytes]]], int]:
    """Up to ``limit`` clips of ``split`` from clip shards, in shard order (the same clips
    every run): each as the landmark model reads it (``landmark_sample``) with the members the
    frame metrics read (``SOURCE_MEMBERS``); and the count of samples that could not be used
    (no audio, bad arrays)."""
    clips: list[tuple[dict, dict[str, bytes]]] = []
    unusable = 0
    for url in expand_shards(spec):
        for sample in wds.tarfile_to_samples()([{"url": url}]):
            try:
                clip = landmark_sample(sample)
            except (Skip, KeyError):
                unusable += 1
                continue
            if split is not None and clip["meta"]["split"] != split:
                continue
            clips.append((clip, {name: sample[name] for name in SOURCE_MEMBERS
                                 if name in sample}))
            if limit is not None and len(clips) >= limit:
                return clips, unusable
    return clips, unusable


def motion_latents_of(vae: LoadedVae, units: torch.Tensor) -> torch.Tensor:
    """Landmark units ``(T, 136)`` -> the VAE's motion latents ``(T, D)`` of the rendered
    points, as ``gaia generate --landmarks`` makes them."""
    track = image_pixels(units.cpu().numpy(), vae.config.image_size)
    return torch.cat([vae.motion_latents(torch.from_numpy(track[i:i + ENCODE_BATCH]))
                      .flatten(1).float() for i in range(0, len(track), ENCODE_BATCH)])


def evaluate_landmark_model(vae: str | Path, landmarks: str | Path, shards: str,
                            split: str | None = "val", clips: int | None = 20,
                            sampler: SamplerConfig | None = None, seed: int = 0,
                            pose: str = "predicted", landmark_fn: LandmarkFn | None = None,
                            syncnet: nn.Module | None = None,
                            fid_network: nn.Module | None = None,
                            notes: list[str] | None = None, device: str | None = None) -> dict:
    """Metrics of the landmark checkpoint ``landmarks`` decoded through the VAE ``vae`` (files
    or run folders) on ``clips`` clips of ``split`` (None: all) of the clip shards ``shards``
    (module docstring); the other arguments and the result as ``evaluate_s2m``'s, with
    ``provenance.motion`` ``landmarks`` and the metric ``landmark_error_px``."""
    if pose not in POSES:
        raise ValueError(f"pose must be one of {POSES}, not {pose!r}")
    if clips is not None and clips < 1:
        raise ValueError(f"clips must be at least 1 (or None for all), got {clips}")
    sampler = sampler or SamplerConfig(steps=25)
    loaded_vae = LoadedVae.load(vae, device)
    model = LoadedS2m.load(landmarks, loaded_vae.device)
    if not is_landmark_stats(model.stats):
        raise ValueError(f"{model.checkpoint} is a motion-latent model: evaluate it with --s2m "
                         "and its latent shards (--latents)")
    vae_sha = check_vae(loaded_vae, model)  # refuses a VAE without a motion encoder
    chosen, unusable = landmark_clips(shards, split, clips)
    if not chosen:
        raise ValueError(f"no clips with speech of split {split!r} in {shards}: check --videos "
                         "and --split (a corpus extracted with val_fraction 0 has no 'val' "
                         "clips; use --split all)")
    size = loaded_vae.config.image_size
    scores, skipped = _Scores(), Counter()
    framing = _FrameScoring(loaded_vae, tuple(loaded_vae.config.motion_latent_shape),
                            landmark_fn, syncnet,
                            FrechetScore(fid_network, loaded_vae.device) if fid_network else None)
    frames = without_video = 0
    for clip, source in chosen:
        differ = speech_differences(model.stats.speech_features,
                                    clip["meta"]["provenance"]["speech_features"])
        if differ:
            raise ValueError(f"the speech features of clip {clip['key']} differ from the "
                             f"landmark model's in {differ}: give clips of the same extractor")
        speech = torch.from_numpy(clip["speech"].astype(np.float32))
        real_units = torch.from_numpy(clip["motion"])
        reference = real_units[0].clone()  # the clip's first frame (appendix B.3)
        real_pose = clip["pose"].astype(np.float32)
        predicted = model.predict_pose(speech, reference).cpu().numpy()
        for axis, value in pose_error(predicted, real_pose).items():
            scores.add(f"pose_error_{axis}", value)
        generator = torch.Generator(device=model.device)
        generator.manual_seed(clip_seed(seed, clip["key"]))
        driving = real_pose if pose == "data" else predicted
        units = model.sample_motion(speech, reference, torch.from_numpy(driving), sampler,
                                    generator).cpu()
        real = model.stats.normalize("motion", real_units)
        scores.add("motion_mse", (model.stats.normalize("motion", units) - real).pow(2).mean())
        scores.add("motion_mse_mean_baseline", real.pow(2).mean())
        points = (units - real_units).reshape(len(units), -1, 2) * size
        scores.add("landmark_error_px", points.norm(dim=-1).mean())
        frames += len(units)
        if not all(name in source for name in SOURCE_MEMBERS):
            without_video += 1
            continue
        framing.score(scores, skipped, clip, source, motion_latents_of(loaded_vae, units))

    metrics, notes, frame_skipped = summarise_metrics(
        scores, skipped, framing, notes, True, landmark_fn, syncnet, fid_network,
        without_video)
    metrics["landmark_error_px"] = scores.summary("landmark_error_px")
    if unusable:
        notes.append(f"{unusable} clip samples could not be used (no audio, or bad arrays) and "
                     "were skipped")
    return evaluation_result(
        model, loaded_vae, vae_sha, landmark_fn, metrics, notes, framing,
        counts=clip_counts(len(chosen), frames, scores, frame_skipped, without_video,
                           clip_samples_unusable=unusable),
        inputs={"motion": "landmarks", "latents": None, "videos": shards, "split": split,
                "pose": pose, "sampler": asdict(sampler), "seed": seed, "image_size": size})
