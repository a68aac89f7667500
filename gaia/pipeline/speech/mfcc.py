"""The MFCC stack SyncNet's audio stream was trained on (Chung & Zisserman 2016, section 3.1:
13 MFCCs at 100 Hz, 20 of them per 0.2 s window), computed as syncnet_python computes it.

syncnet_python calls ``python_speech_features.mfcc(audio, 16000)`` with every default on the
16-bit integer samples ffmpeg wrote: 25 ms frames every 10 ms (no window function, the last
frame zero-padded), pre-emphasis 0.97, the power spectrum of a 512-point FFT divided by 512,
26 triangular mel filters over 0-8000 Hz whose edges are FFT bins
``floor(513 * mel2hz(m) / 16000)``, log, an orthonormal DCT-II keeping 13 coefficients, a sine
lifter of 22, and c0 replaced by the log of the frame's total power. This module is our own
vectorised code for exactly that (tests/test_syncnet.py checks it against the package on real
speech); it depends on numpy only.
"""

from __future__ import annotations

import numpy as np

from gaia.schemas.shards import AUDIO_RATE

N_MFCC = 13
N_FILTERS = 26
N_FFT = 512
FRAME = 400  # 25 ms at 16 kHz
STEP = 160  # 10 ms: 100 MFCC frames per second, 4 per video frame at 25 fps
PREEMPHASIS = 0.97
LIFTER = 22
EPS = np.finfo(np.float64).eps  # python_speech_features' floor for zero energies


def to_int16_scale(audio: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] as the 16-bit integers ffmpeg's ``pcm_s16le`` would hold
    (times 32768, rounded, clipped), in float64: syncnet_python's MFCCs are on that scale."""
    samples = np.round(np.asarray(audio, np.float64).reshape(-1) * 32768.0)
    return np.clip(samples, -32768.0, 32767.0)


def mel_filters(n_filters: int = N_FILTERS, n_fft: int = N_FFT,
                rate: int = AUDIO_RATE) -> np.ndarray:
    """``(n_filters, n_fft // 2 + 1)`` triangles on python_speech_features' integer FFT bins."""
    top = 2595.0 * np.log10(1.0 + (rate / 2) / 700.0)
    mels = np.linspace(0.0, top, n_filters + 2)
    edges = np.floor((n_fft + 1) * 700.0 * (10.0 ** (mels / 2595.0) - 1.0) / rate)
    bins = np.arange(n_fft // 2 + 1, dtype=np.float64)[None]
    low, mid, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    # Rising side on [low, mid), falling side on [mid, high); a zero-width side stays empty.
    rise = np.where((bins >= low) & (bins < mid), (bins - low) / np.maximum(mid - low, 1), 0.0)
    fall = np.where((bins >= mid) & (bins < high), (high - bins) / np.maximum(high - mid, 1), 0.0)
    return rise + fall


def _dct_ortho(n: int, keep: int) -> np.ndarray:
    """``(keep, n)`` orthonormal DCT-II matrix (scipy's ``dct(type=2, norm='ortho')``)."""
    k = np.arange(keep)[:, None]
    matrix = np.cos(np.pi * k * (2 * np.arange(n)[None] + 1) / (2 * n)) * np.sqrt(2.0 / n)
    matrix[0] /= np.sqrt(2.0)
    return matrix


def syncnet_mfcc(audio_16k: np.ndarray) -> np.ndarray:
    """``(13, frames)`` float64 MFCCs of float audio in [-1, 1] at 16 kHz, as syncnet_python
    feeds them to SyncNet (``python_speech_features.mfcc`` on 16-bit samples, transposed).

    ``frames`` is 1 for audio of at most 400 samples, else ``1 + ceil((len - 400) / 160)``.
    """
    signal = to_int16_scale(audio_16k)
    if signal.size == 0:
        signal = np.zeros(1)
    emphasised = np.concatenate([signal[:1], signal[1:] - PREEMPHASIS * signal[:-1]])
    count = 1 if emphasised.size <= FRAME else 1 + -(-(emphasised.size - FRAME) // STEP)
    padded = np.zeros((count - 1) * STEP + FRAME)
    padded[: emphasised.size] = emphasised
    frames = np.lib.stride_tricks.sliding_window_view(padded, FRAME)[::STEP]
    power = np.abs(np.fft.rfft(frames, N_FFT)) ** 2 / N_FFT
    energy = power.sum(axis=1)
    energy = np.where(energy == 0, EPS, energy)
    bands = power @ mel_filters().T
    bands = np.where(bands == 0, EPS, bands)
    cepstra = np.log(bands) @ _dct_ortho(N_FILTERS, N_MFCC).T
    cepstra *= 1.0 + (LIFTER / 2.0) * np.sin(np.pi * np.arange(N_MFCC) / LIFTER)
    cepstra[:, 0] = np.log(energy)
    return cepstra.T
