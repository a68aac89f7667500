"""``gaia generate --text``: a portrait follows a textual instruction (paper, appendix E).

1. The portrait's face is cut as curation cuts clips; the VAE gives its appearance latent and
   its motion latent (the reference), as ``gaia generate`` does with speech.
2. The instruction goes through the text encoder the model was trained with (its provenance is
   in the checkpoint: another encoder, or other weights, is refused, naming what to pass), and
   becomes the model's condition rows for ``--seconds`` of video, the clip starting at the
   instruction (``gaia.text.instruction_rows``, offset 0; the rows pass through float16 as the
   training rows did).
3. The head-pose track is predicted from the instruction by the model's pose predictor (a
   "turn your head" instruction is mostly pose), or fixed, or taken from a video.
4. The instruct model samples the motion latents and the VAE decodes them: a silent 25 fps
   video, and beside it ``OUT.json`` with the instruction, seed, sampler, pose track and the
   checkpoints' and text encoder's provenance.

``InstructedGenerator`` loads the models and the text encoder once and checks them against
each other; ``generate_instructed`` (one video to a file) is a thin wrapper over it, and
``gaia eval instruct`` makes its portrait x instruction grid with it in memory.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from gaia.generation.generate import (
    GenerateConfig,
    check_vae,
    model_record,
    pose_track,
    vae_record,
    write_frames,
)
from gaia.generation.reenact import portrait_face
from gaia.inference.s2m import LoadedS2m, run_task
from gaia.inference.vae import LoadedVae
from gaia.schemas.atomic import write_text_atomic
from gaia.schemas.instruction import text_problem
from gaia.schemas.shards import FPS
from gaia.text.instruction_rows import CONDITION_NAME, InstructionRows, instruction_provenance
from gaia.training.instruct.options import INSTRUCT_TASK

MAX_SECONDS = 60.0
# What must agree between the text encoder at hand and the model's (``instruction_rows``).
ENCODER_KEYS = ("name", "dim", "sha256", "tokenizer_sha256", "max_tokens")


class TextEncoderMismatch(ValueError):
    """The text encoder at hand is not the one the instruct model learned on."""


def clean_instruction(text: str) -> str:
    """The instruction with whitespace collapsed, as curation stores cue texts; ValueError
    when nothing is left or it breaks the instruction spec (``schemas.instruction``)."""
    cleaned = " ".join(str(text).split())
    problem = text_problem(cleaned)
    if problem:
        raise ValueError(f"--text {problem}: give a short instruction, e.g. \"turn your head "
                         "to the left\"")
    return cleaned


def load_instruct_model(path: Path, device: torch.device) -> LoadedS2m:
    """An instruct checkpoint (``gaia train instruct``); ValueError naming the flag when the
    checkpoint is a speech or landmark model."""
    model = LoadedS2m.load(path, device)
    name = (model.stats.speech_features or {}).get("name")
    if name != CONDITION_NAME or run_task(model.checkpoint) not in (None, INSTRUCT_TASK):
        raise ValueError(f"{model.checkpoint} is not a text-instructed model (its condition is "
                         f"{name!r}): pass a `gaia train instruct` run as --instruct, and "
                         "speech models as --s2m with --audio")
    return model


def text_condition(trained: dict, folder: str | None, device: torch.device):
    """The text encoder the model's condition names (``trained``, the checkpoint's
    ``speech_features``), loaded from ``folder`` and checked against it."""
    from gaia.text.clip_text import load_text_encoder

    used = trained.get("encoder") or {}
    if folder is None:
        raise TextEncoderMismatch(
            f"the model was trained on instructions encoded by {used.get('folder')} "
            f"(sha256 {str(used.get('sha256'))[:12]}...): pass --text-encoder DIR with that "
            "text encoder")
    encoder = load_text_encoder(folder, str(device),
                                allow_untrained=bool(used.get("untrained")))
    here = encoder.provenance
    differ = [key for key in ENCODER_KEYS if str(here.get(key)) != str(used.get(key))]
    if differ:
        shown = ", ".join(f"{key}: trained {str(used.get(key))[:16]!r}, here "
                          f"{str(here.get(key))[:16]!r}" for key in differ)
        raise TextEncoderMismatch(f"--text-encoder {folder} is not the text encoder the model "
                                  f"was trained with ({shown}); give the same folder")
    return encoder


def instructed_frames(seconds: float) -> int:
    """The frame count of ``seconds`` of instructed video at 25 fps; ValueError outside
    (0, ``MAX_SECONDS``]."""
    if not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"--seconds {seconds}: give a length from 1/{FPS} to {MAX_SECONDS:g}")
    return max(1, int(round(seconds * FPS)))


@dataclass(frozen=True)
class Portrait:
    """A portrait ready for the models: its face cut as curation cuts clips, the VAE's
    appearance latent of it and its motion latent (the sampler's reference)."""

    path: Path
    image: np.ndarray
    appearance_latent: torch.Tensor | None
    reference: torch.Tensor


@dataclass(frozen=True)
class Instructed:
    """One instructed video in memory: uint8 ``(T, S, S, 3)`` RGB frames and its record (what
    ``OUT.json`` holds, without the video's path)."""

    frames: np.ndarray
    record: dict


class InstructedGenerator:
    """The VAE, the instruct model and its text encoder loaded once (and checked against each
    other), for many portrait x instruction videos: ``gaia generate --text`` makes one,
    ``gaia eval instruct`` (``evaluation.instruct.protocol``) a grid of them in memory."""

    def __init__(self, vae_path: Path, instruct_path: Path, config: GenerateConfig | None = None,
                 text_encoder: str | None = None,
                 progress: Callable[[str], None] = print) -> None:
        self.config = config or GenerateConfig()
        self.progress = progress
        self.vae = LoadedVae.load(vae_path, self.config.device)
        self.model = load_instruct_model(Path(instruct_path), self.vae.device)
        self.vae_sha = check_vae(self.vae, self.model)
        self.encoder = text_condition(self.model.stats.speech_features, text_encoder,
                                      self.vae.device)
        self._rows = InstructionRows(self.encoder)

    @property
    def provenance(self) -> dict:
        """The checkpoints and the text condition, as each video's record names them."""
        return {
            "vae": vae_record(self.vae, self.vae_sha), "instruct": model_record(self.model),
            "text_condition": instruction_provenance(self.encoder.provenance),
        }

    def describe(self) -> str:
        return (f"VAE {self.vae.config.name} (step {self.vae.step}), instruct model "
                f"{self.model.config.name} (step {self.model.step}) on {self.vae.device}")

    def portrait(self, image: Path) -> Portrait:
        """``image``'s face cut and encoded (``reenact.portrait_face``); ValueError when it has
        no face or several."""
        size = self.vae.config.image_size
        appearance, landmarks = portrait_face(Path(image), self.config.crop, size)
        return Portrait(Path(image), appearance, self.vae.appearance_of(appearance),
                        self.vae.s2m_latents(appearance[None], landmarks[None])[0])

    def _text_rows(self, text: str, frames: int) -> torch.Tensor:
        # The clip starts at the instruction (offset 0), float16 as the training rows were.
        return torch.from_numpy(self._rows(text, frames, float(FPS)).astype(np.float32))

    def motion(self, portrait: Portrait, text: str, frames: int
               ) -> tuple[torch.Tensor, np.ndarray]:
        """Sampled motion latents ``(T, D)`` and the pose track ``(T, 3)`` degrees of
        ``portrait`` following ``text`` (cleaned) for ``frames`` frames, with the config's
        seed: the same inputs give the same motion."""
        condition = self._text_rows(text, frames)
        pose = pose_track(self.config.pose, frames, self.model, condition, portrait.reference)
        generator = torch.Generator(device=self.vae.device)
        generator.manual_seed(self.config.seed)
        motion = self.model.sample_motion(condition, portrait.reference, torch.from_numpy(pose),
                                          self.config.sampler, generator,
                                          progress=self.progress)
        return motion, pose

    def record(self, portrait: Portrait, text: str, frames: int, pose: np.ndarray) -> dict:
        return {"portrait": str(portrait.path), "instruction": text, "frames": frames,
                "fps": FPS, "duration_s": frames / FPS, "seed": self.config.seed,
                "sampler": asdict(self.config.sampler), "pose_spec": self.config.pose,
                "pose_track": np.round(pose, 4).tolist(), **self.provenance}

    def frames(self, portrait: Portrait, text: str, seconds: float) -> Instructed:
        """The decoded video in memory (bounded by ``MAX_SECONDS``)."""
        text = clean_instruction(text)
        count = instructed_frames(seconds)
        motion, pose = self.motion(portrait, text, count)
        latents = motion.reshape(count, *self.vae.config.s2m_latent_shape)
        decoded = list(self.vae.frame_batches(portrait.appearance_latent, latents,
                                              self.config.batch_size))
        return Instructed(np.concatenate(decoded), self.record(portrait, text, count, pose))

    def write(self, image: Path, text: str, seconds: float, out: Path) -> dict:
        """Write the instructed video ``out`` and ``out`` with ``.json`` (module docstring);
        returns that record."""
        text = clean_instruction(text)
        count = instructed_frames(seconds)
        self.progress(f"[generate] {self.describe()}: {text!r}, {count} frames")
        portrait = self.portrait(Path(image))
        motion, pose = self.motion(portrait, text, count)
        write_frames(self.vae, portrait.appearance_latent, motion, Path(out),
                     self.config.batch_size, self.progress)
        record = {"video": str(out), **self.record(portrait, text, count, pose)}
        write_text_atomic(Path(out).with_suffix(".json"), json.dumps(record, indent=1))
        self.progress(f"[generate] wrote {out} ({count} frames, {count / FPS:.2f} s, silent)")
        return record


def generate_instructed(image: Path, text: str, seconds: float, vae_path: Path,
                        instruct_path: Path, out: Path, config: GenerateConfig | None = None,
                        text_encoder: str | None = None,
                        progress: Callable[[str], None] = print) -> dict:
    """Write the instructed video ``out`` and ``out`` with ``.json`` (module docstring);
    returns that record. One video: ``InstructedGenerator`` loads the models for many."""
    clean_instruction(text)  # a bad instruction or length is refused before any model loads
    instructed_frames(seconds)
    generator = InstructedGenerator(vae_path, instruct_path, config, text_encoder, progress)
    return generator.write(image, text, seconds, out)
