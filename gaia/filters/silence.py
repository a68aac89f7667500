"""The silence filter (paper, appendix A.1): keep frames where someone speaks.

Speech probability comes from silero VAD per frame. Pauses between words are short, so a frame
counts as speech when the highest probability within ``hold_s`` on either side reaches
``min_speech_prob``: words of one sentence stay one segment. Frames of a video without audio
are dropped with ``no_audio`` (the ``vae`` preset turns this filter off).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaia.filters.base import KEPT, Measures, Verdict, code, column


@dataclass(frozen=True)
class SilenceThresholds:
    """min_speech_prob: VAD probability that counts as speech. hold_s: seconds a detection
    of speech covers on each side (bridges pauses between words)."""

    enabled: bool = True
    min_speech_prob: float = 0.5
    hold_s: float = 0.3

    def __post_init__(self) -> None:
        if not 0 <= self.min_speech_prob <= 1:
            raise ValueError("silence.min_speech_prob must be in [0, 1]")
        if self.hold_s < 0:
            raise ValueError("silence.hold_s must not be negative")


def silence_filter(measures: Measures, thresholds: SilenceThresholds) -> Verdict:
    prob = column(measures, "speech_prob")
    times = column(measures, "time_s")
    n = len(prob)
    if not thresholds.enabled:
        return Verdict.keep_all(n)
    speaking = np.nan_to_num(prob, nan=0.0) >= thresholds.min_speech_prob
    reasons = np.full(n, KEPT, np.uint8)
    reasons[~_hold(speaking, times, thresholds.hold_s)] = code("silence")
    reasons[np.isnan(prob)] = code("no_audio")
    return Verdict(reasons)


def _hold(speaking: np.ndarray, times: np.ndarray, hold_s: float) -> np.ndarray:
    """True for frames within ``hold_s`` seconds (in frames at the mean rate) of speech.

    Works on runs and the mean frame interval rather than a search per frame: linear in the
    frame count, which matters when tune streams a corpus; exact for constant frame rates.
    """
    n = len(speaking)
    if n < 2 or not speaking.any() or hold_s == 0:
        return speaking
    step = (float(times[-1]) - float(times[0])) / (n - 1)
    reach = int(np.floor(hold_s / step + 1e-6)) if step > 0 else 0
    if reach == 0:
        return speaking
    # Widen every run of speech by ``reach`` frames each side: +1 at each widened start,
    # -1 after each widened end, and a running sum marks the covered frames.
    edges = np.diff(speaking.astype(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts = np.maximum(np.flatnonzero(edges == 1) - reach, 0)
    stops = np.minimum(np.flatnonzero(edges == -1) + reach, n)
    delta = np.bincount(starts, minlength=n + 1) - np.bincount(stops, minlength=n + 1)
    return np.cumsum(delta[:n]) > 0
