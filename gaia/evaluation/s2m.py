"""Evaluating a trained speech-to-motion model on clips of latent shards (paper, section 5:
speech-to-motion results; appendix: evaluation details).

For every clip (up to ``clips``) the s2m model samples motion latents from the clip's own
speech, reference latent and head pose (``pose="data"``) or the pose its predictor reads from
the speech (``"predicted"``); the clip's real motion is the target. Measured per clip, then
summarised over clips (``evaluation.s2m_metrics.summarise``: mean, std, n):

- ``pose_error_*``: the pose predictor's track against the clip's real pose, in degrees.
- ``motion_mse``: mean squared error of sampled against real motion latents, both standardised
  with the checkpoint's statistics (a model that learned nothing but the data's mean scores
  ``motion_mse_mean_baseline``, the mean square of the real standardised latents).
- With the source video shards (``videos``): every sampled latent is decoded to a frame with
  the appearance of the clip's reference frame (as ``gaia generate`` decodes them), the
  detector (``landmark_fn``) reads the face on each, and the landmark track gives ``msi``
  (MSI, after StableFace) and ``lip_sync`` (mouth opening against the clip's audio). The
  clip's stored landmarks give ``msi_real`` and ``lip_sync_real``: what a real video scores.
  A clip whose decoded frames show a face in fewer than half of them gets no frame metrics
  (``frame_metrics_skipped``): a track made mostly of gaps measures the detector, not motion.

With the frames decoded, ``sync_c`` / ``sync_d`` (SyncNet, ``evaluation.lip_sync``; the user's
weights) and ``fid`` (decoded frames against the clips' real frames; the user's Inception
weights) complete table 3's columns, and the same SyncNet on the clips' real frames, their
stored landmarks and audio gives ``sync_c_real`` / ``sync_d_real`` (the real video's Sync-D of
tables 3 and 8); without their weights they are null, with a note naming the file. The
protocol (appendix B.3): the clip's first frame is the reference and the pose is
the model's own prediction from the speech (``pose="predicted"``; the real pose is an option).
"""

from __future__ import annotations

import io
import json
import math
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import webdataset as wds
from torch import nn

from gaia.common.crop import to_model_pixels
from gaia.evaluation.fid import FrechetScore
from gaia.evaluation.keypoints import LandmarkFn, describe_detector
from gaia.evaluation.lip_sync import sync_scores
from gaia.evaluation.run_facts import run_facts
from gaia.evaluation.s2m_metrics import (
    POSE_AXES,
    lip_sync_proxy,
    pose_error,
    summarise,
)
from gaia.evaluation.stability import stableface_msi
from gaia.generation.generate import check_vae, speech_differences
from gaia.inference.s2m import LoadedS2m
from gaia.inference.vae import LoadedVae
from gaia.schemas.shards import AUDIO_RATE, FRAME_SIZE
from gaia.training.data.clip_decode import SampleError, decode_frames
from gaia.training.data.latent_windows import WindowStreamConfig, decode_latent_sample
from gaia.training.data.shard_stream import expand_shards
from gaia.training.s2m.sampler_config import SamplerConfig

POSES = ("data", "predicted")
FRAME_BATCH = 16  # frames decoded by the VAE at a time
MIN_FACE_FRACTION = 0.5
SOURCE_MEMBERS = ("mp4", "flac", "landmarks.npy", "json")
STRIP_CLIPS = 8  # clips shown in the report
STRIP_FRAMES = 6


def enough_faces(found: int, frames: int) -> bool:
    """Whether a face was found in at least half of a clip's frames (frame metrics kept)."""
    return frames > 0 and found >= MIN_FACE_FRACTION * frames


def clip_seed(seed: int, key: str) -> int:
    """The noise seed of one clip: fixed by ``seed`` and the clip's key, so a clip draws the same
    motion whichever clips come before it, and different clips draw different noise."""
    state = np.random.SeedSequence([seed, zlib.crc32(key.encode("utf-8"))]).generate_state(2)
    return int(state[0]) << 32 | int(state[1])


def latent_clips(spec: str, split: str | None, limit: int | None) -> tuple[list[dict], int]:
    """Up to ``limit`` clips of ``split`` from latent shards, in shard order (the same clips
    every run), and the count of samples that could not be read (skipped)."""
    config = WindowStreamConfig(shards=spec, split=split)
    clips: list[dict] = []
    unreadable = 0
    for url in expand_shards(spec):
        for sample in wds.tarfile_to_samples()([{"url": url}]):
            try:
                clip = decode_latent_sample(sample, config)
            except SampleError:
                unreadable += 1
                continue
            if clip is not None:
                clips.append(clip)
            if limit is not None and len(clips) >= limit:
                return clips, unreadable
    return clips, unreadable


def source_clips(spec: str, keys: set[str]) -> dict[str, dict[str, bytes]]:
    """The members a frame metric needs (``SOURCE_MEMBERS``) of the source samples ``keys``;
    samples lacking one are left out (their clips are counted as without video)."""
    found: dict[str, dict[str, bytes]] = {}
    for url in expand_shards(spec):
        for sample in wds.tarfile_to_samples()([{"url": url}]):
            key = sample.get("__key__")
            if key in keys and all(name in sample for name in SOURCE_MEMBERS):
                found[key] = {name: sample[name] for name in SOURCE_MEMBERS}
            if len(found) == len(keys):
                return found
    return found


def _check_latents(clip: dict, vae_sha: str, s2m: LoadedS2m) -> None:
    """Refuse latents of another VAE or speech features the model did not learn on."""
    meta = clip["meta"]
    made_by = meta["vae"].get("sha256")
    if made_by and made_by != vae_sha:
        raise ValueError(f"the latents of clip {clip['key']} were made by VAE "
                         f"{meta['vae'].get('checkpoint')} (sha256 {made_by[:12]}...), not "
                         "--vae: give the latents that `gaia encode-latents` made with this VAE")
    differ = speech_differences(s2m.stats.speech_features, meta["speech_features"])
    if differ:
        raise ValueError(f"the speech features of clip {clip['key']} differ from the s2m "
                         f"model's in {differ}: give latents made from the same extractor")


def _frame_metrics(track: np.ndarray, audio: np.ndarray, fps: float
                   ) -> tuple[float, dict] | str:
    """(MSI, lip-sync) of a landmark track, or why they cannot be read from it."""
    try:
        return stableface_msi(track), lip_sync_proxy(track, audio, fps)
    except ValueError as err:
        return str(err)


def _read_audio(flac: bytes) -> np.ndarray:
    import soundfile

    audio, rate = soundfile.read(io.BytesIO(flac), dtype="float32", always_2d=True)
    if rate != AUDIO_RATE:
        raise ValueError(f"a source flac is {rate} Hz, the shard spec says {AUDIO_RATE}: give "
                         "the video shards the latents were encoded from")
    return audio.mean(axis=1)


@torch.no_grad()
def _decoded_track(vae: LoadedVae, reference_image: np.ndarray, motion: torch.Tensor,
                   shape: tuple[int, ...], landmark_fn: LandmarkFn
                   ) -> tuple[np.ndarray, np.ndarray, int]:
    """Frames decoded from ``motion`` with the reference frame's appearance (uint8), the
    detector's landmarks on each (``(T, 68, 2)``, NaN where it found no face), and the faces
    found."""
    appearance = vae.appearance_of(reference_image)
    latents = motion.reshape(len(motion), *shape)
    track = np.full((len(motion), 68, 2), np.nan)
    found = 0
    frames = np.concatenate(list(vae.frame_batches(appearance, latents, FRAME_BATCH)))
    for n, image in enumerate(frames):
        points = landmark_fn(image)
        if points is not None:
            track[n] = points
            found += 1
    return frames, track, found


class _Scores:
    """Per-clip values of every metric, summarised at the end."""

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = {}

    def add(self, name: str, value: float) -> None:
        self.values.setdefault(name, []).append(float(value))

    def summary(self, name: str) -> dict:
        # NaN is not JSON: a metric with no finite value has a null mean and std.
        out = summarise(self.values.get(name, []))
        return {k: (None if isinstance(v, float) and math.isnan(v) else v)
                for k, v in out.items()}


@dataclass
class _FrameScoring:
    """What scores decoded frames: the VAE, the detector, SyncNet and FID when given, and what
    the report shows (per-clip values, frame strips)."""

    vae: LoadedVae
    shape: tuple[int, ...]
    landmark_fn: LandmarkFn | None
    syncnet: nn.Module | None = None
    fid: FrechetScore | None = None
    per_clip: list[dict] = field(default_factory=list)
    strips: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def score(self, scores: _Scores, skipped: Counter, clip: dict, source: dict[str, bytes],
              motion: torch.Tensor) -> None:
        """MSI and lip sync of one clip's stored landmarks and, with a detector, MSI, lip sync,
        Sync-C/D and FID of its frames decoded from ``motion``; what cannot be read is counted
        in ``skipped`` by reason."""
        fps, size = float(clip["meta"]["fps"]), self.vae.config.image_size
        meta = json.loads(source["json"].decode("utf-8"))
        crop_size = float(meta.get("crop_size", FRAME_SIZE[0]))  # as encode-latents maps them
        audio = _read_audio(source["flac"])
        stored = np.load(io.BytesIO(source["landmarks.npy"]), allow_pickle=False)
        real_track = to_model_pixels(stored.astype(np.float32), crop_size, size)
        row: dict = {"key": clip["key"], "frames": len(motion),
                     "mouth_real": _mouth_opening(real_track[: len(motion)])}
        self.per_clip.append(row)
        reading = _frame_metrics(real_track, audio, fps)
        if isinstance(reading, str):
            skipped[f"real landmarks: {reading}"] += 1
        else:
            scores.add("msi_real", reading[0])
            scores.add("lip_sync_real", reading[1]["correlation"])
            row["msi_real"] = reading[0]
        if self.landmark_fn is None:
            return
        count = min(len(motion), len(real_track))
        shown = np.unique(np.linspace(0, count - 1, STRIP_FRAMES).round().astype(int))
        # Every real frame only for FID and Sync-D; else the reference and the strip frames.
        every = self.fid is not None or self.syncnet is not None
        wanted = np.arange(count) if every else np.union1d([0], shown)
        real_frames = dict(zip(wanted.tolist(),
                               decode_frames(source["mp4"], wanted, size)[0], strict=True))
        if self.syncnet is not None:  # the real video's Sync-D (captions of tables 3 and 8)
            real = sync_scores(self.syncnet, np.stack(list(real_frames.values())),
                               real_track[:count], audio, fps)
            if isinstance(real, str):
                skipped[f"real frames' Sync-C/D: {real}"] += 1
            else:
                for name in ("sync_c", "sync_d"):
                    scores.add(f"{name}_real", real[name])
                    row[f"{name}_real"] = real[name]
        # The clip's first frame is the reference (appendix B.3), as for the motion latents.
        frames, track, found = _decoded_track(self.vae, real_frames[0], motion, self.shape,
                                              self.landmark_fn)
        row["mouth_generated"] = _mouth_opening(track)
        if len(self.strips) < STRIP_CLIPS:
            self.strips[clip["key"]] = {"reference": real_frames[0],
                                        "real": np.stack([real_frames[i] for i in shown]),
                                        "generated": frames[shown]}
        if self.fid is not None:
            self.fid.add(np.stack(list(real_frames.values())), real=True)
            self.fid.add(frames, real=False)
        scores.add("face_found_fraction", found / len(motion))
        if not enough_faces(found, len(motion)):
            skipped[f"a face in fewer than {MIN_FACE_FRACTION:.0%} of the decoded frames"] += 1
            return
        reading = _frame_metrics(track, audio, fps)
        if isinstance(reading, str):
            skipped[f"decoded frames: {reading}"] += 1
            return
        scores.add("msi", reading[0])
        scores.add("lip_sync", reading[1]["correlation"])
        scores.add("lip_sync_lag_frames", reading[1]["lag_frames"])
        row.update(msi=reading[0], lip_sync=reading[1]["correlation"])
        if self.syncnet is not None:
            sync = sync_scores(self.syncnet, frames, track, audio, fps)
            if isinstance(sync, str):
                skipped[f"Sync-C/D: {sync}"] += 1
                return
            for name in ("sync_c", "sync_d", "sync_offset_frames"):
                scores.add(name, sync[name])
            row.update(sync)


def _mouth_opening(track: np.ndarray) -> list[float | None]:
    """Inner-lip opening (62 to 66) per frame in pixels, None without a face."""
    opening = np.linalg.norm(track[:, 66] - track[:, 62], axis=-1)
    return [float(v) if np.isfinite(v) else None for v in opening]


def summarise_metrics(scores: _Scores, skipped: Counter, framing: _FrameScoring,
                      notes: list[str] | None, videos: bool, landmark_fn: LandmarkFn | None,
                      syncnet: nn.Module | None, fid_network: nn.Module | None,
                      without_video: int) -> tuple[dict, list[str], int]:
    """The metrics over clips once every clip is scored, the notes saying what is missing,
    and the count of clips whose frame metrics were skipped (shared by ``evaluate_s2m`` and
    the landmark model's ``evaluation.s2m_landmarks``)."""
    frame_names = ("msi", "lip_sync", "lip_sync_lag_frames", "face_found_fraction")
    notes = list(notes or [])
    metrics: dict = {name: scores.summary(name) for name in (
        "motion_mse", "motion_mse_mean_baseline", *(f"pose_error_{a}" for a in POSE_AXES),
        "pose_error_overall")}
    if videos:
        metrics.update({name: scores.summary(name) for name in ("msi_real", "lip_sync_real")})
    else:
        metrics.update(msi_real=None, lip_sync_real=None)
        notes.append("no frame metrics (msi, lip_sync and their real references): no source "
                     "video shards given (--videos)")
    if videos and landmark_fn is not None:
        metrics.update({name: scores.summary(name) for name in frame_names})
    else:
        metrics.update(dict.fromkeys(frame_names))
        if videos:
            notes.append("no msi or lip_sync of the decoded frames: no landmark detector given")
    decoded = bool(videos and landmark_fn is not None)
    sync_names = ("sync_c", "sync_d", "sync_offset_frames", "sync_c_real", "sync_d_real")
    if decoded and syncnet is not None:
        metrics.update({name: scores.summary(name) for name in sync_names})
    else:
        metrics.update(dict.fromkeys(sync_names))
        if syncnet is None and not any(note.startswith("Sync") for note in notes):
            notes.append("Sync-C, Sync-D: n/a, no SyncNet given (--syncnet-weights)")
    metrics["fid"] = framing.fid.compute() if decoded and framing.fid else None
    if fid_network is None and not any(note.startswith("FID") for note in notes):
        notes.append("FID: n/a, no Inception network given (--inception-weights)")
    frame_skipped = sum(n for reason, n in skipped.items() if not reason.startswith("real"))
    notes += [f"frame metrics skipped for {n} clips: {reason}" for reason, n in skipped.items()]
    if without_video:
        notes.append(f"{without_video} clips have no source sample with mp4, flac and landmarks "
                     "in the video shards: no frame metrics for them")
    return metrics, notes, frame_skipped


def evaluate_s2m(vae: str | Path, s2m: str | Path, latents: str,
                 videos: str | None = None, split: str | None = "val", clips: int | None = 20,
                 sampler: SamplerConfig | None = None, seed: int = 0, pose: str = "predicted",
                 landmark_fn: LandmarkFn | None = None, syncnet: nn.Module | None = None,
                 fid_network: nn.Module | None = None, notes: list[str] | None = None,
                 device: str | None = None) -> dict:
    """Metrics of the s2m checkpoint ``s2m`` (with the VAE ``vae`` it learned the
    latents of; files or run folders) on ``clips`` clips of ``split`` (None: all) from the
    latent shards ``latents`` (module docstring). ``videos``: the source video shards, for the
    frame metrics; ``landmark_fn``: the face detector they need (``reenact.CropLandmarks``).
    ``sampler`` defaults to the ODE with 25 steps; ``seed`` fixes the noise of every clip.
    ``syncnet`` and ``fid_network``: the loaded SyncNet and FID Inception, or None (n/a);
    ``notes``: what the caller knows is missing, carried into the result."""
    if pose not in POSES:
        raise ValueError(f"pose must be one of {POSES}, not {pose!r}")
    if clips is not None and clips < 1:
        raise ValueError(f"clips must be at least 1 (or None for all), got {clips}")
    sampler = sampler or SamplerConfig(steps=25)
    loaded_vae = LoadedVae.load(vae, device)
    model = LoadedS2m.load(s2m, loaded_vae.device)
    vae_sha = check_vae(loaded_vae, model)
    chosen, unreadable = latent_clips(latents, split, clips)
    if not chosen:
        raise ValueError(f"no clips of split {split!r} in {latents}: check --latents and "
                         "--split (a corpus extracted with val_fraction 0 has no 'val' clips; "
                         "use --split all)")
    sources = source_clips(videos, {c["key"] for c in chosen}) if videos else {}
    if videos and not sources:
        raise ValueError(f"none of the {len(chosen)} clips is in the video shards {videos}: "
                         "give the shards `gaia encode-latents` read (--videos)")
    shape = tuple(model.stats.latent_shape)
    scores, skipped = _Scores(), Counter()
    framing = _FrameScoring(loaded_vae, shape, landmark_fn, syncnet,
                            FrechetScore(fid_network, loaded_vae.device) if fid_network else None)
    frames = without_video = 0
    for clip in chosen:
        _check_latents(clip, vae_sha, model)
        key = clip["key"]
        speech = torch.from_numpy(clip["speech"].astype(np.float32))
        # The clip's first frame is the reference in evaluation (appendix B.3), as a user's
        # portrait is whatever frame they have, not the clip's most frontal one.
        reference = torch.from_numpy(clip["motion"][0].copy())
        real_pose = clip["pose"].astype(np.float32)
        predicted = model.predict_pose(speech, reference).cpu().numpy()
        for axis, value in pose_error(predicted, real_pose).items():
            scores.add(f"pose_error_{axis}", value)
        generator = torch.Generator(device=model.device)
        generator.manual_seed(clip_seed(seed, key))
        driving = real_pose if pose == "data" else predicted
        motion = model.sample_motion(speech, reference, torch.from_numpy(driving), sampler,
                                     generator)
        real = model.stats.normalize("motion", torch.from_numpy(clip["motion"]))
        sampled = model.stats.normalize("motion", motion.cpu())
        scores.add("motion_mse", (sampled - real).pow(2).mean())
        # The statistics' mean motion is 0 once standardised: its error is the real's square.
        scores.add("motion_mse_mean_baseline", real.pow(2).mean())
        frames += len(motion)
        if not videos:
            continue
        source = sources.get(key)
        if source is None:
            without_video += 1
            continue
        framing.score(scores, skipped, clip, source, motion)

    metrics, notes, frame_skipped = summarise_metrics(
        scores, skipped, framing, notes, bool(videos), landmark_fn, syncnet, fid_network,
        without_video)
    if unreadable:
        notes.append(f"{unreadable} latent samples could not be read and were skipped")
    return evaluation_result(
        model, loaded_vae, vae_sha, landmark_fn, metrics, notes, framing,
        counts=clip_counts(len(chosen), frames, scores, frame_skipped, without_video,
                           latent_samples_unreadable=unreadable),
        inputs={"latents": str(latents), "videos": videos, "split": split, "pose": pose,
                "sampler": asdict(sampler), "seed": seed,
                "image_size": loaded_vae.config.image_size})


def clip_counts(clips: int, frames: int, scores, frame_skipped: int, without_video: int,
                **more: int) -> dict:
    """The ``counts`` both evaluations report (clips, frames, frame metrics), then ``more``."""
    return {"clips": clips, "frames": frames,
            "frame_metrics_clips": len(scores.values.get("msi", [])),
            "frame_metrics_skipped": frame_skipped, "clips_without_video": without_video,
            **more}


def evaluation_result(model, loaded_vae, vae_sha: str, landmark_fn, metrics: dict,
                      notes: list[str], framing: _FrameScoring, counts: dict,
                      inputs: dict) -> dict:
    """The evaluation's JSON (what the report and ``gaia eval ablation`` read): the model and
    VAE evaluated, the metrics, ``counts`` and the run's ``inputs`` in its provenance; shared by the s2m and the landmark model's evaluation."""
    return {
        "checkpoint": str(model.checkpoint), "step": model.step, "config": model.config.name,
        "detector": describe_detector(landmark_fn),
        "run": run_facts(model.checkpoint, model.model),
        "metrics": metrics,
        "counts": counts,
        "provenance": {
            "vae": {"checkpoint": str(loaded_vae.checkpoint), "step": loaded_vae.step,
                    "config": loaded_vae.config.name, "sha256": vae_sha},
            "s2m": {"checkpoint": str(model.checkpoint), "step": model.step,
                    "config": model.config.name},
            **inputs,
        },
        "notes": notes, "per_clip": framing.per_clip, "strips": framing.strips,
        "fid_frames": framing.fid.counts[False] if framing.fid else 0,
    }


def format_s2m_metrics(metrics: dict) -> str:
    """The metrics as aligned text lines for a terminal: ``mean +- std (n)`` or ``n/a``."""
    source, counts = metrics["provenance"], metrics["counts"]
    model = source["s2m"] if "s2m" in source else source["diffusion"]  # the name before s2m
    lines = [
        f"{'vae':<26}{source['vae']['checkpoint']} (step {source['vae']['step']})",
        f"{'s2m':<26}{model['checkpoint']} (step {model['step']}, {model['config']})",
        f"{'data':<26}split {source['split'] or 'all'}, {counts['clips']} clips, "
        f"{counts['frames']} frames; pose {source['pose']}",
        f"{'sampler':<26}{source['sampler']['kind']}, {source['sampler']['steps']} steps, "
        f"temperature {source['sampler']['temperature']}, seed {source['seed']}",
    ]
    for name, value in metrics["metrics"].items():
        shown = f"{value:.4f}" if isinstance(value, float) else _shown(value)
        lines.append(f"{name:<26}{shown}")
    lines.append(f"{'frame metrics':<26}{counts['frame_metrics_clips']} clips, "
                 f"{counts['frame_metrics_skipped']} skipped")
    lines += [f"{'note':<26}{note}" for note in metrics["notes"]]
    return "\n".join(lines)


def _shown(summary: dict | None) -> str:
    if summary is None or summary["mean"] is None:
        return "n/a (see notes)"
    return f"{summary['mean']:.4f} +- {summary['std']:.4f} (n={summary['n']})"

