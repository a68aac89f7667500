"""Loudness normalisation of a clip's audio (docs/shards.md: ``KEY.flac`` is normalised).

Every clip is brought to the same integrated loudness, so the speech encoder sees one level
whatever the source's recording gain. Loudness is ITU-R BS.1770-4 integrated loudness (K-weighted,
400 ms blocks, absolute gate at -70 LUFS, relative gate at -10 LU), measured with ``pyloudnorm``.

Two guards keep normalisation from doing harm:

- Silence stays silence. Audio whose integrated loudness is under ``gate_lufs`` (no block above
  BS.1770's absolute gate, or only a faint noise floor) is returned unchanged, never amplified
  into audible noise. So is audio shorter than one 400 ms gating block, which has no loudness.
- No clipping. After the gain, a peak limiter keeps every sample within ``peak`` (0.99): the
  gain is lowered only around the samples that would pass it, with smooth 5 ms transitions.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from gaia.schemas.shards import AUDIO_RATE

TARGET_LUFS = -23.0  # EBU R 128 programme loudness
GATE_LUFS = -60.0  # quieter clips are silence or a noise floor: left unchanged
PEAK = 0.99  # largest absolute sample value after normalisation
BLOCK_S = 0.4  # BS.1770 gating block
LIMITER_S = 0.005  # half-width of the limiter's gain transitions


@lru_cache(maxsize=8)
def _meter(sample_rate: int):
    import pyloudnorm

    return pyloudnorm.Meter(sample_rate, block_size=BLOCK_S)


def as_mono(audio: np.ndarray) -> np.ndarray:
    """``audio`` as float32 mono samples; a clear error for anything else."""
    signal = np.asarray(audio, dtype=np.float32)
    if signal.ndim != 1:
        raise ValueError(f"expected mono audio of shape (samples,), got {signal.shape}")
    if not np.isfinite(signal).all():
        raise ValueError("audio holds NaN or infinite samples")
    return signal


def measure_loudness(audio: np.ndarray, sample_rate: int = AUDIO_RATE) -> float:
    """BS.1770-4 integrated loudness in LUFS; ``-inf`` for silence or audio under 400 ms."""
    signal = as_mono(audio)
    if signal.size < BLOCK_S * sample_rate + 1:
        return float("-inf")
    return float(_meter(int(sample_rate)).integrated_loudness(signal.astype(np.float64)))


def limit_peaks(audio: np.ndarray, sample_rate: int = AUDIO_RATE, peak: float = PEAK) -> np.ndarray:
    """``audio`` with every sample within ``±peak``, lowering the gain only where needed.

    The needed gain per sample (``min(1, peak / |x|)``) is spread by a minimum filter of
    half-width ``w`` and then smoothed by a moving average of the same width: each smoothed
    value averages gains that are all at most the one its own sample needs, so the result never
    exceeds ``peak``, and the gain ramps over about ``w`` samples instead of jumping.
    """
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    signal = as_mono(audio)
    magnitude = np.abs(signal)
    if signal.size == 0 or magnitude.max() <= peak:
        return signal.copy()
    needed = np.minimum(1.0, peak / np.maximum(magnitude, 1e-12))
    half = max(1, int(round(LIMITER_S * sample_rate)))
    spread = minimum_filter1d(needed, size=4 * half + 1, mode="nearest")
    gain = uniform_filter1d(spread, size=2 * half + 1, mode="nearest")
    limited = signal * np.minimum(gain, needed)  # the minimum only absorbs rounding
    return np.clip(limited, -peak, peak).astype(np.float32)


def normalize_loudness(
    audio: np.ndarray,
    sample_rate: int = AUDIO_RATE,
    target_lufs: float = TARGET_LUFS,
    *,
    gate_lufs: float = GATE_LUFS,
    peak: float = PEAK,
) -> np.ndarray:
    """``audio`` (float32 mono) scaled to ``target_lufs``, then peak-limited to ``±peak``.

    Audio quieter than ``gate_lufs`` or shorter than 400 ms comes back unchanged (as float32).
    The limiter can leave very peaky audio slightly under the target; it never clips.
    """
    signal = as_mono(audio)
    loudness = measure_loudness(signal, sample_rate)
    if not np.isfinite(loudness) or loudness < gate_lufs:
        return signal.copy()
    gain = 10.0 ** ((target_lufs - loudness) / 20.0)
    return limit_peaks(signal * np.float32(gain), sample_rate, peak)
