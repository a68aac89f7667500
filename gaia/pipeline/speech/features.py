"""Speech features for the diffusion model's speech encoder (paper, section 4; DESIGN.md 5-7).

``KEY.speech.npy`` holds float16 features at 50 Hz, two per video frame: row ``2 i`` and
``2 i + 1`` belong to video frame ``i``. Two extractors share that layout:

- ``logmel``: an 80-band log-mel spectrogram, no weights (NumPy only). Frame ``k`` is the
  25 ms Hann window that starts at sample ``320 k`` (20 ms hop at 16 kHz).
- ``wav2vec2``: the last hidden state of a local wav2vec 2.0 model (``transformers``), the
  paper's speech features. Its frame ``k`` sees samples ``[320 k, 320 k + 400)`` too, so both
  extractors are aligned the same way. The clip is normalised to zero mean and unit variance,
  as wav2vec 2.0 was trained.

Row ``j`` of the output (time ``j / (2 fps)``) takes the 50 Hz frame nearest that time; past
the end of the audio the last frame repeats, and extra frames are dropped, so the output has
exactly ``2 * num_frames`` rows at any frame rate (at 25 fps, row ``j`` is frame ``j``).

wav2vec 2.0 is read from a local directory only (DESIGN.md section 7), never downloaded. A
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
    version_of,
    weights_sha256,
)
from gaia.pipeline.media.loudness import as_mono
from gaia.schemas.shards import AUDIO_RATE

RATE_HZ = 50
HOP = AUDIO_RATE // RATE_HZ  # 320 samples
WINDOW = 400  # samples: 25 ms, also wav2vec 2.0's receptive field
FLOAT16_MAX = float(np.finfo(np.float16).max)
WAV2VEC2_EXAMPLE = "facebook/wav2vec2-base-960h"


class SpeechFeatureExtractor(Protocol):
    provenance: dict

    def __call__(self, audio_16k: np.ndarray, num_frames: int, fps: float = 25.0
                 ) -> np.ndarray: ...


def per_video_frame(features: np.ndarray, num_frames: int, fps: float) -> np.ndarray:
    """``(2 * num_frames, D)`` float16 rows picked from 50 Hz ``features`` (module docstring)."""
    if num_frames < 0 or fps <= 0:
        raise ValueError(f"need num_frames >= 0 and fps > 0, got {num_frames}, {fps}")
    if len(features) == 0:
        raise ValueError("no feature frames: the audio is empty")
    rows = np.arange(2 * int(num_frames))
    nearest = np.floor(rows * (RATE_HZ / (2.0 * fps)) + 0.5).astype(np.int64)
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

    def __call__(self, audio_16k: np.ndarray, num_frames: int, fps: float = 25.0) -> np.ndarray:
        return per_video_frame(self.frames(audio_16k), num_frames, fps)


def _missing_wav2vec2(what: str) -> MissingWeightsError:
    return MissingWeightsError(
        f"wav2vec2 speech features need a local model directory ({what}), and this job never "
        "downloads. The directory must hold config.json and the weights (model.safetensors, "
        "or pytorch_model.bin, or their shards with the index file). On a machine with network "
        f"access run: transformers.Wav2Vec2Model.from_pretrained('{WAV2VEC2_EXAMPLE}')"
        ".save_pretrained(DIR), copy DIR to this machine and pass it as the features "
        "directory. Or use the logmel features, which need no weights."
    )


def _weight_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.suffix == ".safetensors" or (p.suffix == ".bin" and "model" in p.name))


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
        }

    def frames(self, audio_16k: np.ndarray) -> np.ndarray:
        """``(frames, hidden_size)`` float32 hidden states at 50 Hz."""
        import torch

        signal = _non_empty(as_mono(audio_16k)).astype(np.float64)
        signal = (signal - signal.mean()) / np.sqrt(signal.var() + 1e-7)
        if signal.size < WINDOW:  # shorter than one frame's receptive field
            signal = np.pad(signal, (0, WINDOW - signal.size))
        batch = torch.from_numpy(signal.astype(np.float32))[None].to(self.device)
        with torch.inference_mode():
            hidden = self._model(batch).last_hidden_state[0]
        return hidden.float().cpu().numpy()

    def __call__(self, audio_16k: np.ndarray, num_frames: int, fps: float = 25.0) -> np.ndarray:
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
