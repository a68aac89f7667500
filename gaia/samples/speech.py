"""Real synthesized speech from the ``espeakng-loader`` wheel, through ctypes (docs/test-media.md).

The wheel ships ``libespeak-ng`` and its voice data, so speech needs nothing but pip. eSpeak NG
keeps its state in process globals, and that state carries from one text to the next: the same
sentence comes out a few samples longer or shorter, and different in every sample, depending on
what was spoken before in the process (even after ``espeak_Terminate`` and a new
``espeak_Initialize``). Test media must not depend on test order, so every text is spoken by a
fresh child process (``python -m gaia.samples.speech``, about 50 ms), which initialises the
library in synchronous mode (``espeak_Synth`` returns only after every sample went through our
callback) and writes the samples to its standard output. Speech comes out at the library's own rate (22,050 Hz, int16) and is
resampled with a polyphase filter to the rate asked for.
"""

from __future__ import annotations

import ctypes
import math
import subprocess
import sys
from functools import lru_cache

import numpy as np

from gaia.schemas.shards import AUDIO_RATE

# Constants from espeak-ng's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_END_PAUSE = 0x1000
_PARAM_RATE = 1
_EE_OK = 0

# int callback(short *wav, int numsamples, espeak_EVENT *events): 0 goes on, 1 aborts.
_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)

# Plain sentences for ``speech_of_duration``: varied length and phonemes, nothing odd to read.
SENTENCES: tuple[str, ...] = (
    "Good morning, and thank you all for coming today.",
    "The weather was clear, so we walked along the river to the old bridge.",
    "I would like to tell you a little about how this project started.",
    "Please open the window, it is getting warm in here.",
    "We measured every sample twice and wrote the numbers down carefully.",
    "My brother bought a small boat last summer and painted it bright red.",
    "The train leaves at half past seven, so we should not be late.",
    "Learning a new language takes patience, practice, and a good teacher.",
    "She picked up the phone and said that the meeting had been moved.",
    "After dinner we usually read for an hour before going to bed.",
)


class SpeechError(RuntimeError):
    """eSpeak NG is missing or failed."""


class _Espeak:
    """The process-wide eSpeak NG library, initialised on first use."""

    def __init__(self) -> None:
        self._lib: ctypes.CDLL | None = None
        self.rate = 0
        self._chunks: list[np.ndarray] = []
        self._callback = _SynthCallback(self._collect)  # kept alive as long as the library

    def _collect(self, wav, n_samples: int, _events) -> int:
        if wav and n_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n_samples,)).copy())
        return 0

    def _load(self) -> ctypes.CDLL:
        try:
            import espeakng_loader
        except ImportError as error:
            raise SpeechError(
                "speech comes from the 'espeakng-loader' wheel, which is not installed: "
                "pip install 'espeakng-loader>=0.2.4,<0.3' (or pip install 'gaia-avatar[media]')"
            ) from error
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
        ]  # fmt: skip
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.argtypes = []
        lib.espeak_Synchronize.restype = ctypes.c_int

        data_path = espeakng_loader.get_data_path().encode()
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 500, data_path, _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise SpeechError(f"espeak_Initialize failed ({rate}) with data at {data_path!r}")
        lib.espeak_SetSynthCallback(self._callback)
        status = lib.espeak_SetVoiceByName(b"en")
        if status != _EE_OK:
            raise SpeechError(f"espeak_SetVoiceByName('en') failed ({status})")
        self.rate = rate
        return lib

    def synth(self, text: str, words_per_minute: int) -> np.ndarray:
        """int16 samples at ``self.rate`` (one process, one caller: the child)."""
        if self._lib is None:
            self._lib = self._load()
        lib = self._lib
        lib.espeak_SetParameter(_PARAM_RATE, int(words_per_minute), 0)
        encoded = text.encode("utf-8") + b"\0"
        buffer = ctypes.create_string_buffer(encoded, len(encoded))
        self._chunks = []
        try:
            status = lib.espeak_Synth(
                buffer, len(encoded), 0, _POS_CHARACTER, 0, _CHARS_UTF8 | _END_PAUSE, None, None
            )
            if status != _EE_OK:
                raise SpeechError(f"espeak_Synth failed ({status}) on {text!r}")
            lib.espeak_Synchronize()
            chunks = self._chunks
        finally:
            self._chunks = []
        return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)


_ESPEAK = _Espeak()


def _resample(signal: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Polyphase resampling (scipy when installed; else a windowed-sinc filter and interp)."""
    if rate_in == rate_out or signal.size == 0:
        return signal.astype(np.float32)
    common = math.gcd(rate_in, rate_out)
    try:
        from scipy.signal import resample_poly
    except ImportError:
        resample_poly = None
    if resample_poly is not None:
        return resample_poly(signal, rate_out // common, rate_in // common).astype(np.float32)
    # Fallback: low-pass below the lower Nyquist rate, then linear interpolation.
    cutoff = 0.9 * min(rate_in, rate_out) / 2 / rate_in
    taps = np.arange(-64, 65)
    kernel = 2 * cutoff * np.sinc(2 * cutoff * taps) * np.hamming(taps.size)
    filtered = np.convolve(signal, kernel / kernel.sum(), mode="same")
    n_out = int(round(signal.size * rate_out / rate_in))
    positions = np.arange(n_out) * (rate_in / rate_out)
    return np.interp(positions, np.arange(signal.size), filtered).astype(np.float32)


def _synth_isolated(text: str, words_per_minute: int) -> tuple[np.ndarray, int]:
    """int16 samples and their rate, spoken by a fresh process (see the module docstring)."""
    done = subprocess.run([sys.executable, "-m", "gaia.samples.speech", str(words_per_minute)],
                          input=text.encode("utf-8"), capture_output=True, timeout=120)
    if done.returncode != 0:
        raise SpeechError(done.stderr.decode("utf-8", "replace").strip().splitlines()[-1]
                          if done.stderr.strip() else f"speech child failed ({done.returncode})")
    rate = int.from_bytes(done.stdout[:4], "little")
    return np.frombuffer(done.stdout[4:], dtype="<i2").astype(np.int16), rate


def _child_main(words_per_minute: int) -> None:
    """``python -m gaia.samples.speech WPM``: text on stdin -> rate (uint32) + int16 samples."""
    text = sys.stdin.buffer.read().decode("utf-8")
    raw = _ESPEAK.synth(text, words_per_minute)
    sys.stdout.buffer.write(int(_ESPEAK.rate).to_bytes(4, "little"))
    sys.stdout.buffer.write(raw.astype("<i2").tobytes())


@lru_cache(maxsize=64)
def _synth_cached(text: str, sample_rate: int, words_per_minute: int) -> np.ndarray:
    raw, rate = _synth_isolated(text, words_per_minute)
    audio = _resample(raw.astype(np.float32) / 32768.0, rate, sample_rate)
    audio = np.clip(audio, -1.0, 1.0).astype(np.float32)
    audio.setflags(write=False)
    return audio


def synthesize_speech(
    text: str, sample_rate: int = AUDIO_RATE, words_per_minute: int = 150
) -> np.ndarray:
    """``text`` spoken by eSpeak NG's English voice: float32 mono in [-1, 1] at ``sample_rate``."""
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if not text.strip():
        return np.zeros(0, np.float32)
    return _synth_cached(text, int(sample_rate), int(words_per_minute)).copy()


def silence(seconds: float, sample_rate: int = AUDIO_RATE) -> np.ndarray:
    """``seconds`` of digital silence: float32 zeros."""
    return np.zeros(max(0, round(seconds * sample_rate)), np.float32)


def _trim_quiet(audio: np.ndarray, level: float = 0.01) -> np.ndarray:
    """``audio`` without its quiet start and end (eSpeak ends each text with ~0.4 s of pause)."""
    loud = np.flatnonzero(np.abs(audio) > level)
    return audio[loud[0] : loud[-1] + 1] if loud.size else audio[:0]


def speech_of_duration(seconds: float, sample_rate: int = AUDIO_RATE, seed: int = 0) -> np.ndarray:
    """Exactly ``round(seconds * sample_rate)`` samples of sentences with short pauses between.

    Sentences are drawn from ``SENTENCES`` in an order set by ``seed``, trimmed of eSpeak's
    trailing pause and joined by 0.15 to 0.3 s of silence (short enough that a VAD with a
    little hold hears one stretch of speech); the last one is cut where the duration ends,
    with a 10 ms fade so the cut does not click.
    """
    n_samples = max(0, round(seconds * sample_rate))
    rng = np.random.default_rng(seed)
    pieces: list[np.ndarray] = []
    total = 0
    order: list[int] = []
    while total < n_samples:
        if not order:
            order = list(rng.permutation(len(SENTENCES)))
        spoken = _trim_quiet(synthesize_speech(SENTENCES[order.pop()], sample_rate))
        pause = silence(float(rng.uniform(0.15, 0.3)), sample_rate)
        pieces += [spoken, pause]
        total += spoken.size + pause.size
    audio = np.concatenate(pieces)[:n_samples] if pieces else silence(0, sample_rate)
    fade = min(audio.size, round(0.01 * sample_rate))
    if fade:
        audio[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return audio.astype(np.float32, copy=False)


if __name__ == "__main__":
    try:
        _child_main(int(sys.argv[1]))
    except SpeechError as error:
        sys.exit(f"gaia.samples.speech: {error}")
