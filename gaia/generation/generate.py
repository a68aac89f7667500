"""``gaia generate``: a portrait and speech become a talking video (paper, sections 4.1-4.2).

1. The portrait's face is cut as curation cuts clips (``reenact.portrait_face``); the VAE
   encodes its appearance, and its rendered landmarks give the reference motion latent.
2. The speech is read (any format PyAV decodes, 16 kHz mono), denoised by the denoiser the
   training features were made with (``speech_denoiser``: the same model, or refused with what
   to pass), loudness-normalised as extract does, and turned into features by the extractor
   recorded in the s2m checkpoint: a different extractor (or other weights) is refused,
   since the model would read noise.
3. The head-pose track is predicted from the speech (``predicted``), held fixed
   (``fixed:PITCH,YAW,ROLL``) or measured from a video (``from:VIDEO``).
4. The s2m model samples the motion latents (``inference.s2m``), the VAE decodes one frame
   per latent with the portrait's appearance, and the input audio is muxed in: the video lasts
   as long as the speech, at 25 fps.

With a landmark model (``--landmarks``, ``gaia train landmarks``; paper, section 5.4) step 4
samples the 68 landmarks of every frame instead, holding the points of a control track fixed
(``--control``, ``generation.control``), and the VAE's motion encoder turns each frame's
rendered landmarks into its motion latent before decoding. ``OUT.landmarks.npy`` keeps the
track and ``OUT.portrait_landmarks.npy`` the portrait's points (a starting point for edits).

With a VAE trained without disentanglement (``disentangle: false``, table 6) the s2m model's
latents are whole-frame latents: the reference is the portrait's own latent, and each sampled
latent is decoded alone (``inference.vae``); the checkpoints say so, no flag is needed.

Beside ``OUT.mp4``, ``OUT.json`` records the pose track used, the seed, the sampler and the
checkpoints with their provenance, so a result can be reproduced and audited.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from gaia.common.crop import CropConfig
from gaia.common.weights import file_sha256
from gaia.generation.control import control_points, coordinate_mask, read_control
from gaia.generation.pose_track import video_pose_track
from gaia.generation.reenact import portrait_face
from gaia.inference.s2m import LoadedS2m
from gaia.inference.vae import LoadedVae
from gaia.pipeline.media.decode import audio_blocks
from gaia.pipeline.media.loudness import normalize_loudness
from gaia.pipeline.media.video_writer import write_video
from gaia.pipeline.speech.features import load_speech_features
from gaia.schemas.atomic import atomic_path, write_text_atomic
from gaia.schemas.shards import AUDIO_RATE, FPS
from gaia.training.landmarks.data import image_pixels, is_landmark_stats, landmark_units
from gaia.training.s2m.sampler_config import SamplerConfig

# What must agree between the extractor at hand and the one the model was trained with; the
# input settings only where both record them (older provenances predate them).
SPEECH_KEYS = ("name", "dim", "rate_hz", "sha256")
SPEECH_SETTINGS = ("normalize", "context_s")


@dataclass(frozen=True)
class GenerateConfig:
    """pose: ``predicted``, ``fixed:P,Y,R`` or ``from:VIDEO``. sampler: ODE/SDE, steps,
    temperature. seed: the noise. speech_weights: local wav2vec 2.0 folder when the model was
    trained on wav2vec2 features. batch_size: frames decoded by the VAE at a time."""

    pose: str = "predicted"
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    seed: int = 0
    speech_weights: str | None = None
    crop: CropConfig = field(default_factory=CropConfig)
    batch_size: int = 16
    device: str | None = None
    control: Path | None = None  # a landmark track to hold (generation.control)
    denoise_weights: str | None = None  # the denoiser of the training features, when any
    trust_pickled_weights: bool = False  # for a demucs .th denoiser
    control_points: str = "mouth"


class SpeechFeaturesMismatch(ValueError):
    """The speech-feature extractor at hand is not the one the s2m model learned on."""


def read_speech(path: Path) -> np.ndarray:
    """The first audio track of ``path`` as float32 mono at 16 kHz; ValueError when it cannot
    be read or holds no audio."""
    try:
        blocks = list(audio_blocks(str(path)))
    except Exception as err:  # noqa: BLE001 - PyAV raises many kinds for unreadable files
        raise ValueError(f"cannot read the speech {path}: {type(err).__name__}: {err}. Give "
                         "an audio file (wav, flac, mp3, m4a) or a video with sound") from err
    audio = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    if audio.size < AUDIO_RATE // FPS:
        raise ValueError(f"no audio in {path}: give a file with at least one frame of speech")
    return audio


def speech_differences(trained: dict, here: dict) -> list[str]:
    """The ``SPEECH_KEYS`` (and ``SPEECH_SETTINGS``) in which two provenances disagree."""
    return [key for key in SPEECH_KEYS if str(here.get(key)) != str(trained.get(key))] + [
        key for key in SPEECH_SETTINGS if key in trained and key in here
        and here[key] != trained[key]]


def speech_extractor(trained: dict, weights: str | None):
    """The extractor named by a checkpoint's speech-feature provenance; refused when the one at
    hand differs in name, size, rate or weights."""
    name = trained.get("name")
    if name not in ("logmel", "wav2vec2"):
        raise SpeechFeaturesMismatch(f"the s2m checkpoint names speech features "
                                     f"{name!r}, which this version cannot compute")
    extractor = load_speech_features(name, weights)
    here = extractor.provenance
    differ = speech_differences(trained, here)
    if differ:
        shown = ", ".join(f"{k}: trained {trained.get(k)!r}, here {here.get(k)!r}"
                          for k in differ)
        raise SpeechFeaturesMismatch(f"speech features differ from the ones the s2m "
                                     f"model was trained with ({shown}); give the same "
                                     "extractor and weights (--wav2vec2)")
    return extractor


def speech_denoiser(trained: dict, config: GenerateConfig):
    """The denoiser the training features were made with (``trained["denoise"]``, which
    extract records), loaded from ``config.denoise_weights`` and checked to be the same model;
    SpeechFeaturesMismatch saying what to pass when it cannot be."""
    from gaia.pipeline.speech.denoise import IdentityDenoiser, load_denoiser

    used = trained.get("denoise") or {"name": "none"}  # older provenances: raw audio
    name = used.get("name")
    if name == "none":
        if config.denoise_weights is not None:
            raise SpeechFeaturesMismatch("the model's speech features were made from audio "
                                         "that was not denoised: drop --denoise-weights")
        return IdentityDenoiser()
    if config.denoise_weights is None:
        raise SpeechFeaturesMismatch(
            f"the model's speech features were made from audio denoised by {name} (weights "
            f"{used.get('weights')}, sha256 {str(used.get('sha256'))[:12]}...): pass "
            "--denoise-weights PATH to that model file, so the speech is denoised the same way")
    denoiser = load_denoiser(name, config.denoise_weights,
                             allow_untrained=bool(used.get("untrained")), device=config.device
                             or ("cuda" if torch.cuda.is_available() else "cpu"),
                             trust_pickle=config.trust_pickled_weights)
    if denoiser.provenance.get("sha256") != used.get("sha256"):
        raise SpeechFeaturesMismatch(
            f"--denoise-weights {config.denoise_weights} is not the {name} model the training "
            f"features were made with (sha256 {str(denoiser.provenance.get('sha256'))[:12]}... "
            f"here, {str(used.get('sha256'))[:12]}... there, file {used.get('weights')})")
    return denoiser


def pose_track(spec: str, frames: int, s2m: LoadedS2m, speech: torch.Tensor,
               reference: torch.Tensor) -> np.ndarray:
    """The ``(frames, 3)`` head pose in degrees that ``spec`` asks for."""
    from gaia.generation.pose_track import parse_pose

    kind, value = parse_pose(spec)
    if kind == "fixed":
        return np.repeat(np.asarray(value, np.float32)[None], frames, axis=0)
    if kind == "from":
        return video_pose_track(Path(value), frames, float(FPS))
    return s2m.predict_pose(speech, reference).cpu().numpy().astype(np.float32)


def check_vae(vae: LoadedVae, s2m: LoadedS2m) -> str:
    """The VAE checkpoint's sha256; ValueError when the s2m model learned the motion
    latents of another VAE (its latents would mean nothing to this decoder)."""
    digest = file_sha256(vae.checkpoint)
    if is_landmark_stats(s2m.stats):
        if not vae.disentangled:
            raise ValueError(f"a landmark model drives the VAE's motion encoder, and "
                             f"{vae.checkpoint} has none (disentangle: false): give a VAE "
                             "that disentangles appearance and motion")
        return digest  # landmarks are the VAE's input, not its latents: any VAE renders them
    trained = s2m.stats.vae.get("sha256")
    if trained and trained != digest:
        raise ValueError(f"the s2m model was trained on motion latents of VAE "
                         f"{s2m.stats.vae.get('checkpoint')} (sha256 {trained[:12]}...), "
                         f"but --vae is {vae.checkpoint} (sha256 {digest[:12]}...): give the "
                         "VAE that `gaia encode-latents` used")
    shape = tuple(vae.config.s2m_latent_shape)
    if shape != tuple(s2m.stats.latent_shape):
        raise ValueError(f"the VAE's {vae.config.latent_kind} latent is {shape}, the s2m "
                         f"model's {tuple(s2m.stats.latent_shape)}: give the matching VAE")
    return digest


def load_motion_model(s2m_path: Path | None, landmarks_path: Path | None,
                      config: GenerateConfig, device: torch.device) -> LoadedS2m:
    """The motion-latent (``--s2m``) or landmark (``--landmarks``) model; ValueError when
    neither or both are given, or a checkpoint is not of the kind its flag says."""
    if (s2m_path is None) == (landmarks_path is None):
        raise ValueError("give one motion model: --s2m (motion latents) or --landmarks "
                         "(landmarks, for --control)")
    if config.control is not None and landmarks_path is None:
        raise ValueError("--control holds landmarks: it needs a landmark model (--landmarks "
                         "RUN of `gaia train landmarks`) instead of --s2m")
    model = LoadedS2m.load(landmarks_path or s2m_path, device)
    if is_landmark_stats(model.stats) != (landmarks_path is not None):
        kind, flag = ("landmark", "--landmarks") if landmarks_path is None else (
            "motion-latent", "--s2m")
        raise ValueError(f"{model.checkpoint} is a {kind} model: pass it as {flag}")
    return model


def write_array(path: Path, array: np.ndarray) -> None:
    """``path`` written whole or not at all (a plain .npy, no pickle)."""
    with atomic_path(path) as partial, open(partial, "wb") as handle:
        np.save(handle, array, allow_pickle=False)


def model_record(model: LoadedS2m | LoadedVae) -> dict:
    """A loaded checkpoint as a video's record names it: file, step and config."""
    return {"checkpoint": str(model.checkpoint), "step": model.step,
            "config": model.config.name}


def vae_record(vae: LoadedVae, sha256: str) -> dict:
    """``model_record`` of the VAE, with its sha256 and whether it disentangles."""
    return {**model_record(vae), "sha256": sha256, "disentangle": vae.config.disentangle}


def write_frames(vae: LoadedVae, appearance_latent: torch.Tensor | None, motion: torch.Tensor,
                 out: Path, batch_size: int, progress: Callable[[str], None],
                 audio: np.ndarray | None = None) -> None:
    """Decode the raw motion latents ``(T, D)`` with the portrait's appearance, ``batch_size``
    frames at a time, into the 25 fps ``out`` (with ``audio`` at 16 kHz muxed in, if any)."""
    frames = len(motion)
    latents = motion.reshape(frames, *vae.config.s2m_latent_shape)

    def decoded():
        done = 0
        for batch in vae.frame_batches(appearance_latent, latents, batch_size):
            yield from batch
            done += len(batch)
            progress(f"[generate] decoded {done}/{frames} frames")

    write_video(out, decoded(), FPS, audio=audio, audio_rate=AUDIO_RATE)


def generate(image: Path, speech: Path, vae_path: Path, s2m_path: Path | None, out: Path,
             config: GenerateConfig | None = None,
             progress: Callable[[str], None] = print, landmarks_path: Path | None = None
             ) -> dict:
    """Write the talking video ``out`` and ``out`` with ``.json`` (module docstring); returns
    that record. ``landmarks_path`` instead of ``s2m_path``: a landmark model draws
    the landmarks (``config.control`` holds some of them)."""
    config = config or GenerateConfig()
    vae = LoadedVae.load(vae_path, config.device)
    motion_model = load_motion_model(s2m_path, landmarks_path, config, vae.device)
    by_landmarks = landmarks_path is not None
    vae_sha = check_vae(vae, motion_model)
    extractor = speech_extractor(motion_model.stats.speech_features, config.speech_weights)
    denoiser = speech_denoiser(motion_model.stats.speech_features, config)
    progress(f"[generate] VAE {vae.config.name} (step {vae.step}), "
             f"{'landmark' if by_landmarks else 's2m'} model {motion_model.config.name} "
             f"(step {motion_model.step}) on {vae.device}")

    size = vae.config.image_size
    appearance, landmarks = portrait_face(Path(image), config.crop, size)
    audio = read_speech(Path(speech))
    frames = max(1, int(round(len(audio) / AUDIO_RATE * FPS)))
    features = extractor(normalize_loudness(denoiser(audio)), frames, float(FPS))
    progress(f"[generate] portrait cropped to {size} px; speech {len(audio) / AUDIO_RATE:.2f} s "
             f"-> {frames} frames")

    appearance_latent = vae.appearance_of(appearance)
    if by_landmarks:
        reference = torch.from_numpy(landmark_units(landmarks[None], size)[0])
    else:  # the portrait's motion latent, or its whole-frame latent (disentangle: false)
        reference = vae.s2m_latents(appearance[None], landmarks[None])[0]
    speech_rows = torch.from_numpy(features.astype(np.float32))
    pose = pose_track(config.pose, frames, motion_model, speech_rows, reference)
    generator = torch.Generator(device=vae.device)
    generator.manual_seed(config.seed)
    held, control = {}, None
    if config.control is not None:
        points = control_points(config.control_points)
        control = read_control(Path(config.control), frames, size)
        held = {"control": torch.from_numpy(landmark_units(control, size)),
                "control_mask": torch.from_numpy(coordinate_mask(points))}
        progress(f"[generate] holding {len(points)} landmarks ({config.control_points}) to "
                 f"{config.control}")
    motion = motion_model.sample_motion(speech_rows, reference, torch.from_numpy(pose),
                                        config.sampler, generator, progress=progress, **held)
    if by_landmarks:
        track = image_pixels(motion.cpu().numpy(), size)
        if control is not None:  # exact in pixels: the user's numbers, not a round trip
            track[:, points] = control[:, points]
        write_array(Path(out).with_suffix(".landmarks.npy"), track)
        motion = torch.cat([vae.motion_latents(torch.from_numpy(track[i:i + config.batch_size]))
                            .flatten(1).float() for i in range(0, frames, config.batch_size)])
    write_array(Path(out).with_suffix(".portrait_landmarks.npy"), landmarks.astype(np.float32))
    write_frames(vae, appearance_latent, motion, out, config.batch_size, progress, audio)
    record = {
        "video": str(out), "portrait": str(image), "speech": str(speech), "frames": frames,
        "fps": FPS, "duration_s": len(audio) / AUDIO_RATE, "seed": config.seed,
        "sampler": asdict(config.sampler), "pose_spec": config.pose,
        "pose_track": np.round(pose, 4).tolist(),
        "vae": vae_record(vae, vae_sha),
        ("landmarks" if by_landmarks else "s2m"): model_record(motion_model),
        "control": None if config.control is None else {
            "file": str(config.control), "points": config.control_points},
        "speech_features": extractor.provenance, "denoise": denoiser.provenance,
    }
    write_text_atomic(Path(out).with_suffix(".json"), json.dumps(record, indent=1))
    progress(f"[generate] wrote {out} ({frames} frames, {len(audio) / AUDIO_RATE:.2f} s, with "
             "the input speech)")
    return record
