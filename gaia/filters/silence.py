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
    """True for frames within ``hold_s`` seconds of a speaking frame."""
    if not speaking.any() or hold_s == 0:
        return speaking
    spoken = times[speaking]
    # Distance to the nearest speaking frame, by binary search on the sorted speaking times.
    right = np.clip(np.searchsorted(spoken, times), 0, len(spoken) - 1)
    left = np.clip(right - 1, 0, len(spoken) - 1)
    nearest = np.minimum(np.abs(times - spoken[left]), np.abs(times - spoken[right]))
    return nearest <= hold_s + 1e-9
