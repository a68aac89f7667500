"""Video-driven evaluation of a trained two-encoder VAE by the paper's protocol (appendix B.2;
the layout of its table 2): the test videos are whole clips of the held-out split, and
``evaluation.protocols`` fixes which frames meet which.

- Self-reconstruction: each video's first frame gives the appearance, every other frame's
  landmarks the motion; each output is compared with the real frame it reconstructs. L1 and
  PSNR on [0, 1] images, LPIPS (AlexNet or VGG, when given), AKD (one detector on the real
  frame and on the output; FOMM's mean absolute coordinate difference, pooled over all scored
  frames as FOMM's pose-evaluation pools them, and the mean Euclidean distance beside it as
  ``akd_euclidean``; ``evaluation.keypoints``), MSI (StableFace, on the detector's track of the outputs; ``msi_real``
  the same on the real frames) and FID (outputs against the real frames, with Inception weights).
- Cross-reenactment: 5 rounds x 100 frames; each test video's frames drive the appearance of a
  random frame of another test video. No ground truth: AKD against the driving real frames,
  MSI of the outputs, FID against the real frames.

Decoding uses posterior means (the same numbers every run). A metric whose weights are missing
is None, with a note that names the file. ``max_frames`` caps the frames of each video (the
paper uses all; a capped run says so in ``protocol``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import webdataset as wds
from torch import Tensor, nn

from gaia.evaluation.fid import FrechetScore
from gaia.evaluation.keypoints import KeypointScore, LandmarkFn, describe_detector
from gaia.evaluation.protocols import (
    CrossDrive,
    EvalVideo,
    SelfPair,
    cross_reenactment,
    read_plan,
    self_reconstruction,
    write_plan,
)
from gaia.evaluation.run_facts import run_facts
from gaia.evaluation.s2m_metrics import summarise
from gaia.evaluation.stability import stableface_msi
from gaia.inference.vae import LoadedVae, to_uint8
from gaia.schemas.shards import FPS
from gaia.training.data.clip_decode import SampleError, decode_sample
from gaia.training.data.shard_stream import ClipStreamConfig, expand_shards

__all__ = ["VaeEvalOptions", "evaluate_vae", "format_metrics", "psnr"]


@dataclass(frozen=True)
class VaeEvalOptions:
    """What is evaluated: the split, the cross-reenactment plan's shape and seed, a cap on
    frames per video (None: all, as the paper), the decode batch and the report's strips."""

    split: str | None = "val"
    rounds: int = 5
    frames_per_round: int = 100
    seed: int = 0
    max_frames: int | None = None
    batch_size: int = 16
    strip_frames: int = 6

    def __post_init__(self) -> None:
        if self.max_frames is not None and self.max_frames < 2:
            raise ValueError("max_frames must be at least 2 (an appearance and a driving frame)")
        if min(self.rounds, self.frames_per_round, self.batch_size) < 1:
            raise ValueError("rounds, frames_per_round and batch_size must be at least 1")


@dataclass
class TestVideo:
    key: str
    frames: np.ndarray  # uint8 (n, S, S, 3)
    landmarks: np.ndarray  # float32 (n, 68, 2), pixels of the S image (curation's tracker)
    fps: float


def psnr(reconstruction: Tensor, target: Tensor) -> Tensor:
    """Per-image PSNR in dB of [-1, 1] images, measured on [0, 1] (peak 1): (B,)."""
    mse = ((reconstruction.float() - target.float()) / 2).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1 / mse.clamp_min(1e-10))


def load_test_videos(shards: str, split: str | None, size: int, max_frames: int | None
                     ) -> tuple[list[TestVideo], Counter]:
    """Whole clips of ``split`` (up to ``max_frames`` frames from the first), sorted by key,
    and the samples that could not be read, by reason."""
    # A window of every frame starts at frame 0; the cap is applied after decoding.
    config = ClipStreamConfig(shards=str(shards), image_size=size, split=split,
                              max_frames=10**9, frame_sampling="window")
    videos, skipped = [], Counter()
    rng = np.random.default_rng(0)
    for url in expand_shards(str(shards)):
        for sample in wds.tarfile_to_samples()([{"url": url}]):
            try:
                clip = decode_sample(sample, config, rng)
            except SampleError as err:
                skipped[err.reason] += 1
                continue
            if clip is not None:
                keep = slice(0, max_frames)
                videos.append(TestVideo(clip["key"], clip["frames"][keep],
                                        clip["landmarks"][keep],
                                        float(clip["meta"].get("fps", FPS))))
    return sorted(videos, key=lambda v: v.key), skipped


class _Detections:
    """The detector's landmarks on each real frame, found once and kept (both protocols read
    the same real frames)."""

    def __init__(self, detector: LandmarkFn | None, videos: dict[str, TestVideo]) -> None:
        self.detector, self.videos, self.found = detector, videos, {}

    def real(self, key: str, index: int) -> np.ndarray | None:
        if (key, index) not in self.found:
            self.found[key, index] = self.detector(self.videos[key].frames[index])
        return self.found[key, index]


def _track(points: list[np.ndarray | None]) -> np.ndarray:
    track = np.full((len(points), 68, 2), np.nan)
    for n, found in enumerate(points):
        if found is not None:
            track[n] = found
    return track


def _msi(points: list[np.ndarray | None]) -> float:
    try:
        return stableface_msi(_track(points))
    except ValueError:
        return math.nan


@dataclass
class _Section:
    """Per-video values of one protocol, summarised at the end."""

    per_video: list[dict] = field(default_factory=list)
    frames: int = 0

    def summary(self, names: tuple[str, ...]) -> dict:
        out = {}
        for name in names:
            values = [v[name] for v in self.per_video if v.get(name) is not None]
            if name in POOLED:  # a mean over frames, not over videos (FOMM's AKD)
                frames = [v["akd_frames"] for v in self.per_video if v.get(name) is not None]
                out[name] = (float(np.average(values, weights=frames))
                             if sum(frames) else None)
                continue
            stats = summarise(values)
            out[name] = None if not stats["n"] else stats["mean"]
        return out


def _batches(count: int, size: int) -> Iterator[slice]:
    for start in range(0, count, size):
        yield slice(start, min(count, start + size))


class _Run:
    """One evaluation's models, videos and accumulators."""

    def __init__(self, vae: LoadedVae, videos: list[TestVideo], options: VaeEvalOptions,
                 perceptual: nn.Module | None, detector: LandmarkFn | None,
                 fid_network: nn.Module | None) -> None:
        self.vae, self.options, self.perceptual = vae, options, perceptual
        self.videos = {v.key: v for v in videos}
        self.detections = _Detections(detector, self.videos) if detector else None
        self.fid = {name: FrechetScore(fid_network, vae.device) if fid_network else None
                    for name in ("self", "cross")}
        self.strips: dict[str, dict[str, np.ndarray]] = {}

    def _decode(self, appearance: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """uint8 frames decoded from one appearance frame and driving landmarks."""
        vae = self.vae
        latent = vae.appearance_of(appearance)
        out = []
        for part in _batches(len(landmarks), self.options.batch_size):
            driving = torch.from_numpy(np.ascontiguousarray(landmarks[part]))
            out.append(to_uint8(vae.decode(latent, driving)))
        return np.concatenate(out)

    def _strip_indices(self, count: int) -> np.ndarray:
        return np.unique(np.linspace(0, count - 1, min(count, self.options.strip_frames))
                         .round().astype(int))

    def self_reconstruction(self, pair: SelfPair) -> dict:
        video = self.videos[pair.key]
        driving = np.array(pair.driving)
        outputs = self._decode(video.frames[pair.appearance], video.landmarks[driving])
        real = torch.from_numpy(video.frames[driving]).permute(0, 3, 1, 2).float() / 127.5 - 1
        fake = torch.from_numpy(outputs).permute(0, 3, 1, 2).float() / 127.5 - 1
        row = {"key": pair.key, "frames": len(driving),
               "psnr": float(psnr(fake, real).mean()),
               "l1": float((fake - real).abs().mean())}
        row["psnr_per_frame"] = psnr(fake, real).tolist()
        if self.perceptual is not None:
            with torch.no_grad():
                values = torch.cat([self.perceptual(fake[s].to(self.vae.device),
                                                    real[s].to(self.vae.device)).flatten()
                                    for s in _batches(len(fake), self.options.batch_size)])
            row["lpips"] = float(values.mean())
        if self.detections is not None:
            row.update(self._keypoints(pair.key, driving, outputs))
        if self.fid["self"] is not None:
            self.fid["self"].add(video.frames[driving], real=True)
            self.fid["self"].add(outputs, real=False)
        shown = self._strip_indices(len(driving))
        self.strips[pair.key] = {"real": video.frames[driving[shown]],
                                 "reconstructed": outputs[shown],
                                 "frame_numbers": driving[shown]}
        return row

    def _keypoints(self, key: str, driving: np.ndarray, outputs: np.ndarray,
                   real_side: bool = True) -> dict:
        """AKD of outputs against the real driving frames and MSI of the outputs; with
        ``real_side`` also the real frames' MSI and both mouth openings (the report's landmark
        panel, drawn for self-reconstruction only)."""
        score = KeypointScore(self.detections.detector)
        real_points = [self.detections.real(key, int(i)) for i in driving]
        found = [score.add_detections(r, o) for r, o in zip(real_points, outputs, strict=True)]
        row = {**score.report(), "msi": _msi(found)}
        if real_side:
            row.update(msi_real=_msi(real_points), mouth_real=_mouth(real_points),
                       mouth_generated=_mouth(found))
        return row

    def cross_reenactment(self, drive: CrossDrive) -> dict:
        driver, source = self.videos[drive.driver], self.videos[drive.source]
        driving = np.arange(drive.start, drive.start + drive.length)
        outputs = self._decode(source.frames[drive.source_frame], driver.landmarks[driving])
        row = {"round": drive.round, "key": drive.driver, "source": drive.source,
               "source_frame": drive.source_frame, "frames": len(driving)}
        if self.detections is not None:
            row.update(self._keypoints(drive.driver, driving, outputs, real_side=False))
        if self.fid["cross"] is not None:
            self.fid["cross"].add(driver.frames[driving], real=True)
            self.fid["cross"].add(outputs, real=False)
        if drive.round == 0 and drive.driver in self.strips:
            shown = self._strip_indices(len(driving))
            self.strips[drive.driver]["reenacted"] = outputs[shown]
            self.strips[drive.driver]["reenacted_source"] = source.frames[drive.source_frame]
        return row


def _mouth(points: list[np.ndarray | None]) -> list[float | None]:
    """Inner-lip opening (62 to 66) per frame in pixels: the report's landmark track."""
    return [None if p is None else float(np.linalg.norm(p[66] - p[62])) for p in points]


def evaluation_plan(videos: list[TestVideo], options: VaeEvalOptions, plan: Path | None
                    ) -> tuple[list[SelfPair], list[CrossDrive]]:
    """The protocol plan: read from ``plan`` when it exists (refused when it names other
    videos), else built and, with a path, written there for the next run."""
    listed = [EvalVideo(v.key, len(v.frames)) for v in videos]
    if plan is not None and Path(plan).is_file():
        pairs, drives = read_plan(Path(plan), listed)
        wanted = {(p.key, len(p.driving) + 1) for p in pairs}
        if wanted != {(v.key, v.frames) for v in listed}:
            raise ValueError(f"the plan {plan} is for other test videos than these shards give "
                             "(keys or frame counts differ): pass another --plan path, or the "
                             "shards and --max-frames it was written for")
        return pairs, drives
    if plan is not None:
        write_plan(Path(plan), listed, options.seed, options.rounds, options.frames_per_round)
    return (self_reconstruction(listed),
            cross_reenactment(listed, options.rounds, options.frames_per_round, options.seed))


SELF_METRICS = ("l1", "psnr", "lpips", "akd", "akd_euclidean", "msi", "msi_real")
CROSS_METRICS = ("akd", "akd_euclidean", "msi")
POOLED = ("akd", "akd_euclidean")


def evaluate_vae(checkpoint: str | Path, shards: str, options: VaeEvalOptions | None = None,
                 perceptual: nn.Module | None = None, detector: LandmarkFn | None = None,
                 fid_network: nn.Module | None = None, plan: Path | None = None,
                 notes: list[str] | None = None, device: str | None = None,
                 progress: Callable[[str], None] = lambda _: None) -> dict:
    """Table-2 metrics of the VAE at ``checkpoint`` (a file or a run folder) on the test videos
    of ``shards`` (module docstring). ``perceptual``: an LPIPS module or None; ``detector``:
    the landmark detector for AKD and MSI, or None; ``fid_network``: FID's Inception or None;
    ``plan``: the protocol file (read when it exists, else written); ``notes``: what the caller
    already knows is missing (weights), carried into the result."""
    options = options or VaeEvalOptions()
    vae = LoadedVae.load(checkpoint, device)
    videos, skipped = load_test_videos(shards, options.split, vae.config.image_size,
                                       options.max_frames)
    if len(videos) < 2:
        raise ValueError(f"{len(videos)} test videos of split {options.split!r} in {shards}: "
                         "the protocols need 2 or more (cross-reenactment takes the appearance "
                         "of another video). Check --shards and --split (a corpus extracted "
                         "with val_fraction 0 has no 'val' clips: use --split all)")
    pairs, drives = evaluation_plan(videos, options, plan)
    if perceptual is not None:
        perceptual = perceptual.to(vae.device).eval()
    run = _Run(vae, videos, options, perceptual, detector, fid_network)
    own, cross = _Section(), _Section()
    for n, pair in enumerate(pairs, start=1):
        own.per_video.append(run.self_reconstruction(pair))
        own.frames += len(pair.driving)
        progress(f"self-reconstruction {n}/{len(pairs)}: {pair.key}")
    for n, drive in enumerate(drives, start=1):
        cross.per_video.append(run.cross_reenactment(drive))
        cross.frames += drive.length
        if n % len(videos) == 0:
            progress(f"cross-reenactment round {drive.round + 1}/{options.rounds}")
    notes = list(notes or [])
    if perceptual is None and not any(note.startswith("LPIPS") for note in notes):
        notes.append("LPIPS: n/a, no perceptual network given (--lpips alex|vgg with its "
                     "backbone weights)")
    if fid_network is None and not any(note.startswith("FID") for note in notes):
        notes.append("FID: n/a, no Inception network given (--inception-weights)")
    if detector is None:
        notes.append("AKD, MSI: n/a, no landmark detector given")
    self_metrics = {"videos": len(pairs), "frames": own.frames, **own.summary(SELF_METRICS)}
    cross_metrics = {"drives": len(drives), "frames": cross.frames,
                     **cross.summary(CROSS_METRICS)}
    for section, name in ((self_metrics, "self"), (cross_metrics, "cross")):
        score = run.fid[name]
        section.update(score.report() if score else {"fid": None})
    if detector is not None:
        self_metrics["akd_missed_generated"] = sum(v["akd_missed_generated"]
                                                   for v in own.per_video)
        self_metrics["akd_missed_real"] = sum(v["akd_missed_real"] for v in own.per_video)
    if skipped:
        notes += [f"{n} samples unreadable: {reason}" for reason, n in skipped.items()]
    return {
        "checkpoint": str(vae.checkpoint), "step": vae.step, "config": vae.config.name,
        "image_size": vae.config.image_size, "split": options.split,
        "protocol": {**asdict(options),
                     "frames": "all" if options.max_frames is None else
                     f"first {options.max_frames} of each video (the paper uses all)",
                     "plan": None if plan is None else str(plan)},
        "test_videos": [{"key": v.key, "frames": len(v.frames)} for v in videos],
        "detector": describe_detector(detector), "run": run_facts(vae.checkpoint, vae.model),
        "self_reconstruction": self_metrics, "cross_reenactment": cross_metrics,
        "per_video": {"self_reconstruction": own.per_video,
                      "cross_reenactment": cross.per_video},
        "notes": notes, "strips": run.strips,
    }


def format_metrics(metrics: dict) -> str:
    """The summary as aligned text lines for a terminal."""
    lines = [f"{'checkpoint':<20}{metrics['checkpoint']} (step {metrics['step']}, "
             f"{metrics['config']}, {metrics['image_size']} px)",
             f"{'data':<20}split {metrics['split'] or 'all'}, "
             f"{len(metrics['test_videos'])} test videos, frames: "
             f"{metrics['protocol']['frames']}"]
    for section in ("self_reconstruction", "cross_reenactment"):
        shown = ", ".join(f"{name} {_number(value)}"
                          for name, value in metrics[section].items())
        lines.append(f"{section.replace('_', '-'):<20}{shown}")
    if metrics.get("detector"):
        lines.append(f"{'landmarks':<20}{metrics['detector']}; akd: FOMM's mean "
                     "absolute coordinate difference, akd_euclidean: mean distance (pixels)")
    lines += [f"{'note':<20}{note}" for note in metrics["notes"]]
    return "\n".join(lines)


def _number(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}" if math.isfinite(value) else str(value)
    return str(value)
