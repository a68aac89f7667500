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
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from gaia.generation.generate import GenerateConfig, check_vae, pose_track, write_frames
from gaia.generation.reenact import portrait_face
from gaia.inference.s2m import LoadedS2m, run_task
from gaia.inference.vae import LoadedVae
from gaia.schemas.atomic import write_text_atomic
from gaia.schemas.instruction import text_problem
from gaia.schemas.shards import FPS
from gaia.text.instruction_rows import CONDITION_NAME, instruction_provenance, instruction_rows
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


def generate_instructed(image: Path, text: str, seconds: float, vae_path: Path,
                        instruct_path: Path, out: Path, config: GenerateConfig | None = None,
                        text_encoder: str | None = None,
                        progress: Callable[[str], None] = print) -> dict:
    """Write the instructed video ``out`` and ``out`` with ``.json`` (module docstring);
    returns that record."""
    config = config or GenerateConfig()
    text = clean_instruction(text)
    if not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"--seconds {seconds}: give a length from 1/{FPS} to {MAX_SECONDS:g}")
    vae = LoadedVae.load(vae_path, config.device)
    model = load_instruct_model(Path(instruct_path), vae.device)
    vae_sha = check_vae(vae, model)
    encoder = text_condition(model.stats.speech_features, text_encoder, vae.device)
    frames = max(1, int(round(seconds * FPS)))
    progress(f"[generate] VAE {vae.config.name} (step {vae.step}), instruct model "
             f"{model.config.name} (step {model.step}) on {vae.device}: {text!r}, "
             f"{frames} frames")

    size = vae.config.image_size
    appearance, landmarks = portrait_face(Path(image), config.crop, size)
    appearance_latent = vae.appearance_of(appearance)
    reference = vae.s2m_latents(appearance[None], landmarks[None])[0]
    rows = instruction_rows(encoder([text])[0], frames, float(FPS)).astype(np.float16)
    condition = torch.from_numpy(rows.astype(np.float32))
    pose = pose_track(config.pose, frames, model, condition, reference)
    generator = torch.Generator(device=vae.device)
    generator.manual_seed(config.seed)
    motion = model.sample_motion(condition, reference, torch.from_numpy(pose), config.sampler,
                                 generator, progress=progress)
    write_frames(vae, appearance_latent, motion, Path(out), config.batch_size, progress)
    record = {
        "video": str(out), "portrait": str(image), "instruction": text, "frames": frames,
        "fps": FPS, "duration_s": frames / FPS, "seed": config.seed,
        "sampler": asdict(config.sampler), "pose_spec": config.pose,
        "pose_track": np.round(pose, 4).tolist(),
        "vae": {"checkpoint": str(vae.checkpoint), "step": vae.step, "sha256": vae_sha,
                "config": vae.config.name, "disentangle": vae.config.disentangle},
        "instruct": {"checkpoint": str(model.checkpoint), "step": model.step,
                     "config": model.config.name},
        "text_condition": instruction_provenance(encoder.provenance),
    }
    write_text_atomic(Path(out).with_suffix(".json"), json.dumps(record, indent=1))
    progress(f"[generate] wrote {out} ({frames} frames, {frames / FPS:.2f} s, silent)")
    return record
