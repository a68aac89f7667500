"""Speech features for the s2m model's speech encoder (paper, section 4; docs/shards.md, docs/weights.md).

``KEY.speech.npy`` holds float16 features at 50 Hz, two per video frame: row ``2 i`` and
``2 i + 1`` belong to video frame ``i``. Two extractors share that layout:

- ``logmel``: an 80-band log-mel spectrogram, no weights (NumPy only). Frame ``k`` is the
  25 ms Hann window that starts at sample ``320 k`` (20 ms hop at 16 kHz).
- ``wav2vec2``: the last hidden state of a local wav2vec 2.0 model (``transformers``), the
  paper's speech features. Its frame ``k`` sees samples ``[320 k, 320 k + 400)`` too, so both
  extractors are aligned the same way. The waveform is normalised to zero mean and unit
  variance when the model's ``preprocessor_config.json`` says ``do_normalize`` (transformers'
  ``Wav2Vec2FeatureExtractor``, whose default, with no such file, is to normalise), and left
  as it is when it says false: a model hears its input as it was fine-tuned on it.

wav2vec 2.0's transformer attends over the whole input, so a frame's features depend on how
much audio is around it. Curation extracts each clip on its own and generation a whole
utterance, so audio longer than ``CONTEXT_S`` is extracted in overlapping windows of
``CONTEXT_S`` (``context_windows``), each normalised and run on its own like a clip, and each
50 Hz frame is taken from the window it is most inside: a frame sees at most ``CONTEXT_S`` of
audio at curation and at generation alike, and a clip up to ``CONTEXT_S`` long (every clip of
the vae preset) comes out exactly as one pass over it does. Both settings are in the
provenance (``normalize``, ``context_s``).

Row ``j`` of the output (time ``j / (2 fps)``) takes the 50 Hz frame nearest that time; past
the end of the audio the last frame repeats, and extra frames are dropped, so the output has
exactly ``2 * num_frames`` rows at any frame rate (at 25 fps, row ``j`` is frame ``j``).

wav2vec 2.0 is read from a local directory only (docs/weights.md), never downloaded. A
directory holding a file named ``UNTRAINED`` is a random-initialised model for tests: refused
unless ``allow_untrained=True``, and ``untrained: true`` in its provenance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from gaia.common.weights import (
    MissingWeightsError,
    check_untrained,
    stored_elements,
    version_of,
    weights_sha256,
)
from gaia.pipeline.media.loudness import as_mono
from gaia.schemas.shards import AUDIO_RATE, FPS, SPEECH_ROWS_PER_FRAME

RATE_HZ = 50
HOP = AUDIO_RATE // RATE_HZ  # 320 samples
WINDOW = 400  # samples: 25 ms, also wav2vec 2.0's receptive field
FLOAT16_MAX = float(np.finfo(np.float16).max)
WAV2VEC2_EXAMPLE = "facebook/wav2vec2-base-960h"
PREPROCESSOR_FILE = "preprocessor_config.json"
# Audio seen by one wav2vec 2.0 pass: the clip length curation cut before clips could be longer
# (an s2m clip is up to 30 s), so features of older shards are what these windows give.
CONTEXT_S = 10.0
# Shared by neighbouring windows; a frame is taken from a window only when it has at least
# half of it (2 s) of audio on both sides, about wav2vec2-base's convolutional positional
# embedding (128 frames, 2.56 s) and more.
CONTEXT_OVERLAP_S = 4.0


class SpeechFeatureExtractor(Protocol):
    provenance: dict

    def __call__(self, audio_16k: np.ndarray, num_frames: int, fps: float = FPS
                 ) -> np.ndarray: ...


def per_video_frame(features: np.ndarray, num_frames: int, fps: float) -> np.ndarray:
    """``(2 * num_frames, D)`` float16 rows picked from 50 Hz ``features`` (module docstring)."""
    if num_frames < 0 or fps <= 0:
        raise ValueError(f"need num_frames >= 0 and fps > 0, got {num_frames}, {fps}")
    if len(features) == 0:
        raise ValueError("no feature frames: the audio is empty")
    rows = np.arange(SPEECH_ROWS_PER_FRAME * int(num_frames))
    nearest = np.floor(rows * (RATE_HZ / (SPEECH_ROWS_PER_FRAME * fps)) + 0.5).astype(np.int64)
    picked = features[np.minimum(nearest, len(features) - 1)]
    return np.clip(picked, -FLOAT16_MAX, FLOAT16_MAX).astype(np.float16)


@dataclass(frozen=True)
class LogMelSettings:
    """Log-mel analysis at 16 kHz: Slaney mel scale (linear under 1 kHz, logarithmic above),
    area-normalised triangles, natural log of the mel power plus ``floor``."""

    n_mels: int = 80
    n_fft: int = 512
    f_min: float = 0.0
    f_max: float = 8000.0
    floor: float = 1e-6


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: 200/3 Hz per mel up to 1 kHz, then logarithmic."""
    hz = np.asarray(hz, np.float64)
    linear = hz / (200.0 / 3.0)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-9) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz < 1000.0, linear, log_part)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, np.float64)
    return np.where(mel < 15.0, mel * (200.0 / 3.0),
                    1000.0 * np.exp((mel - 15.0) * (np.log(6.4) / 27.0)))


def mel_filterbank(settings: LogMelSettings) -> np.ndarray:
    """``(n_mels, n_fft // 2 + 1)`` triangular filters; raises if one covers no FFT bin."""
    bins_hz = np.fft.rfftfreq(settings.n_fft, 1.0 / AUDIO_RATE)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(settings.f_min), _hz_to_mel(settings.f_max),
                                   settings.n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins_hz - lower) / (centre - lower)
    falling = (upper - bins_hz) / (upper - centre)
    bank = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (upper - lower))
    if (bank.max(axis=1) <= 0).any():
        raise ValueError(f"{settings} leaves some mel bands without an FFT bin")
    return bank.astype(np.float32)


class LogMelExtractor:
    """``logmel``: 80 log-mel bands at 50 Hz, no weights."""

    def __init__(self, settings: LogMelSettings | None = None) -> None:
        self.settings = settings or LogMelSettings()
        self._bank = mel_filterbank(self.settings)
        n = np.arange(WINDOW)
        self._window = (0.5 - 0.5 * np.cos(2 * np.pi * n / WINDOW)).astype(np.float32)
        self.provenance = {"name": "logmel", "version": "", "weights": "none", "sha256": "",
                           "untrained": False, "dim": self.settings.n_mels, "rate_hz": RATE_HZ}

    def frames(self, audio_16k: np.ndarray) -> np.ndarray:
        """``(ceil(samples / 320), n_mels)`` float32 log-mel frames."""
        signal = _non_empty(as_mono(audio_16k))
        count = -(-signal.size // HOP)
        padded = np.zeros((count - 1) * HOP + WINDOW, np.float32)
        padded[: signal.size] = signal
        windows = np.lib.stride_tricks.sliding_window_view(padded, WINDOW)[::HOP]
        power = np.abs(np.fft.rfft(windows * self._window, n=self.settings.n_fft)) ** 2
        return np.log(power.astype(np.float32) @ self._bank.T + self.settings.floor)

    def __call__(self, audio_16k: np.ndarray, num_frames: int, fps: float = FPS) -> np.ndarray:
        return per_video_frame(self.frames(audio_16k), num_frames, fps)


def _missing_wav2vec2(what: str) -> MissingWeightsError:
    return MissingWeightsError(
        f"wav2vec2 speech features need a local model directory ({what}), and this job never "
        "downloads. The directory must hold config.json and the weights (model.safetensors, "
        "or pytorch_model.bin, or their shards with the index file). On a machine with network "
        f"access run: transformers.Wav2Vec2Model.from_pretrained('{WAV2VEC2_EXAMPLE}')"
        ".save_pretrained(DIR), copy DIR to this machine and pass it with --wav2vec2 DIR. "
        "Or use the logmel features, which need no weights."
    )


def context_windows(samples: int, window: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """The windows that ``samples`` of audio are extracted in: ``(start, stop)`` samples, each
    start a multiple of ``HOP`` (so a window's frame ``j`` is frame ``start / HOP + j`` of the
    whole), and the 50 Hz frames ``(first, last)`` (end excluded) each window gives; the
    frames cover ``[0, frames)`` once. One window when ``samples <= window``.

    Windows step by ``window - overlap``; the last one ends at the audio's end (so it is full
    length too); between two, the frames switch at the middle of what both hold."""
    if window % HOP or overlap % HOP or not 0 <= overlap < window:
        raise ValueError(f"window {window} and overlap {overlap} must be multiples of {HOP} "
                         "with 0 <= overlap < window")
    if samples <= window:
        return [(0, samples, 0, frame_count(samples))]
    last = -(-(samples - window) // HOP) * HOP
    starts = [*range(0, samples - window, window - overlap), last]
    stops = [min(start + window, samples) for start in starts]
    ends = [start // HOP + frame_count(stop - start) for start, stop in zip(starts, stops,
                                                                           strict=True)]
    cuts = [0, *((start // HOP + end) // 2 for start, end in zip(starts[1:], ends[:-1],
                                                                   strict=True)), ends[-1]]
    return [(start, stop, cuts[n], cuts[n + 1]) for n, (start, stop) in enumerate(zip(
        starts, stops, strict=True))]


def frame_count(samples: int) -> int:
    """50 Hz wav2vec 2.0 frames of ``samples`` of audio (one for less than ``WINDOW``)."""
    return (max(samples, WINDOW) - WINDOW) // HOP + 1


def read_preprocessor(folder: Path) -> tuple[bool, str]:
    """Whether the model at ``folder`` normalises its input (``do_normalize`` of its
    ``preprocessor_config.json``; transformers' default, True, without one), and where that
    was read. ValueError when the file asks for input this extractor does not give."""
    import json

    path = folder / PREPROCESSOR_FILE
    if not path.is_file():
        return True, "default (no preprocessor_config.json)"
    config = json.loads(path.read_text(encoding="utf-8"))
    if config.get("sampling_rate", AUDIO_RATE) != AUDIO_RATE or config.get(
            "feature_size", 1) != 1:
        raise ValueError(f"{path}: the model wants sampling_rate {config.get('sampling_rate')}"
                         f" and feature_size {config.get('feature_size')}; the speech features "
                         f"give {AUDIO_RATE} Hz mono")
    return bool(config.get("do_normalize", True)), PREPROCESSOR_FILE


def _weight_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.suffix == ".safetensors" or (p.suffix == ".bin" and "model" in p.name))


# The largest wav2vec 2.0 released (XLS-R 2B) has 2.2e9 parameters; a config asking for more
# is not a wav2vec 2.0 model anyone trained.
MAX_WAV2VEC2_PARAMETERS = 2_500_000_000
# A checkpoint may leave out a few small tensors (a CTC head's checkpoint has extra ones, and
# transformers initialises missing ones such as masked_spec_embed): 1 % of slack.
MISSING_SLACK = 0.01


def _load_bin(path: Path):
    """A ``.bin``'s tensors mapped, not read (and never unpickled beyond tensors)."""
    import torch

    return torch.load(path, map_location="cpu", mmap=True, weights_only=True)


def check_wav2vec2_size(folder: Path, files: list[Path]) -> None:
    """Refuse a ``config.json`` that asks for a bigger model than its weight files hold, or
    for one past ``MAX_WAV2VEC2_PARAMETERS``, before transformers allocates it: the model is
    built on torch's meta device (shapes only) and its parameters counted."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    config = Wav2Vec2Config.from_pretrained(str(folder), local_files_only=True)
    with torch.device("meta"):
        wanted = sum(p.numel() for p in Wav2Vec2Model(config).parameters())
    stored = stored_elements(files, _load_bin)
    if wanted > MAX_WAV2VEC2_PARAMETERS:
        raise ValueError(f"{folder}/config.json asks for a wav2vec 2.0 model of {wanted:,} "
                         f"parameters, past the largest released ({MAX_WAV2VEC2_PARAMETERS:,})"
                         "; not built")
    if wanted > stored * (1 + MISSING_SLACK):
        raise ValueError(f"{folder}/config.json describes a model of {wanted:,} parameters but "
                         f"its weights hold {stored:,} numbers: the config does not belong to "
                         "these weights; not built")


class Wav2Vec2Extractor:
    """``wav2vec2``: last hidden state of a local wav2vec 2.0 model, 50 Hz."""

    def __init__(self, weights_dir: str | None, allow_untrained: bool = False,
                 device: str = "cpu") -> None:
        if weights_dir is None:
            raise _missing_wav2vec2("no directory given")
        folder = Path(weights_dir).expanduser()
        if not folder.is_dir():
            raise _missing_wav2vec2(f"no directory at {folder}")
        if not (folder / "config.json").is_file():
            raise _missing_wav2vec2(f"{folder} has no config.json")
        files = _weight_files(folder)
        if not files:
            raise _missing_wav2vec2(f"{folder} has no model.safetensors or pytorch_model.bin")
        untrained = check_untrained(folder, "wav2vec2 model", allow_untrained)
        from transformers import Wav2Vec2Model

        self.device = device
        self.normalize, preprocessor = read_preprocessor(folder)
        check_wav2vec2_size(folder, files)
        model = Wav2Vec2Model.from_pretrained(str(folder), local_files_only=True)
        self._model = model.to(device).eval()
        strides = int(np.prod(model.config.conv_stride))
        if strides != HOP:
            raise ValueError(f"{folder}: the model's frame hop is {strides} samples, not {HOP}")
        self.provenance = {
            "name": "wav2vec2",
            "version": version_of("transformers"),
            "weights": folder.name + ": " + ", ".join(p.name for p in files),
            "sha256": weights_sha256(files),
            "untrained": untrained,
            "dim": int(model.config.hidden_size),
            "rate_hz": RATE_HZ,
            "normalize": self.normalize,
            "preprocessor": preprocessor,
            "context_s": CONTEXT_S,
            "context_overlap_s": CONTEXT_OVERLAP_S,
        }

    def frames(self, audio_16k: np.ndarray) -> np.ndarray:
        """``(frames, hidden_size)`` float32 hidden states at 50 Hz, in context windows
        (module docstring)."""
        signal = _non_empty(as_mono(audio_16k))
        windows = context_windows(signal.size, int(CONTEXT_S * AUDIO_RATE),
                                  int(CONTEXT_OVERLAP_S * AUDIO_RATE))
        parts = [self.pass_frames(signal[start:stop])[first - start // HOP:last - start // HOP]
                 for start, stop, first, last in windows]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def pass_frames(self, signal: np.ndarray) -> np.ndarray:
        """One pass of the model over ``signal`` (normalised first when the model's
        preprocessor says so): ``(frame_count, hidden_size)`` float32."""
        import torch

        signal = signal.astype(np.float64)
        if self.normalize:  # as Wav2Vec2FeatureExtractor: (x - mean) / sqrt(var + 1e-7)
            signal = (signal - signal.mean()) / np.sqrt(signal.var() + 1e-7)
        if signal.size < WINDOW:  # shorter than one frame's receptive field
            signal = np.pad(signal, (0, WINDOW - signal.size))
        batch = torch.from_numpy(signal.astype(np.float32))[None].to(self.device)
        with torch.inference_mode():
            hidden = self._model(batch).last_hidden_state[0]
        return hidden.float().cpu().numpy()

    def __call__(self, audio_16k: np.ndarray, num_frames: int, fps: float = FPS) -> np.ndarray:
        return per_video_frame(self.frames(audio_16k), num_frames, fps)


def load_speech_features(name: str, weights_dir: str | None = None,
                         allow_untrained: bool = False, *, device: str = "cpu"
                         ) -> SpeechFeatureExtractor:
    """The extractor called ``name``: ``logmel`` (no weights) or ``wav2vec2`` (``weights_dir``)."""
    if name == "logmel":
        return LogMelExtractor()
    if name == "wav2vec2":
        return Wav2Vec2Extractor(weights_dir, allow_untrained, device=device)
    raise ValueError(f"unknown speech features {name!r}: use 'logmel' or 'wav2vec2'")


def _non_empty(signal: np.ndarray) -> np.ndarray:
    if signal.size == 0:
        raise ValueError("speech features need at least one audio sample")
    return signal
