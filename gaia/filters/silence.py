"""The silence filter (paper, appendix A.1): keep frames where someone speaks.

Speech probability comes from silero VAD per frame. Pauses between words are short, so a frame
counts as speech when the highest probability within ``hold_s`` on either side reaches
``min_speech_prob``: words of one sentence stay one segment. Frames of a video without audio
are dropped with ``no_audio`` (the ``vae`` preset turns this filter off).

The visible speaker: speech from an off-screen interviewer over a listening face is the case
the paper drops as "lip movements and speech are not aligned". So where there is speech, a
frame is kept only if the visible mouth makes it: its mouth moves (``mouth_motion`` averaged
over ``window_s``, at least ``min_mouth_motion`` per 1/25 s; a hand over the mouth is no
motion) **and** its lip-sync lag holds (``sync_agreement``, ``filters.av_sync.lag_agreement``:
the share of the 3 s around it whose mouth-vs-speech lag agrees, at least
``min_sync_agreement``); else it is dropped as ``not_speaking``.

Measured on real media (``benchmarks/visible_speaker.py``, ``samples.speaker_cases``): real
faces that are not the speaker under a real conversation (a woman laughing and crying with a
hand over her mouth, a selfie smile, a man talking unheard words) keep 0.0 s by this rule; the
rule before it (motion OR a sync confidence of 0.55) kept 0.6, 0.1 and 3.0 s of them, since a
talking or laughing mouth moves and chance correlations peak high on some windows. Mouths moved
by the speech they carry keep 91-100 % of their speech (before: 39-100 %). With SyncNet
weights, the ``lip_sync`` filter adds SyncNet's own test.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaia.filters.base import KEPT, Measures, Verdict, code, column
from gaia.filters.spec import FilterSpec, Grid, Slider, ThresholdKey


@dataclass(frozen=True)
class SilenceThresholds:
    """min_speech_prob: VAD probability that counts as speech. hold_s: seconds a detection
    of speech covers on each side (bridges pauses between words). visible_speaker: drop
    speech the visible mouth does not go with (``not_speaking``); min_mouth_motion,
    min_sync_agreement, window_s: its rule (module docstring)."""

    enabled: bool = True
    min_speech_prob: float = 0.5
    hold_s: float = 0.3
    visible_speaker: bool = True
    min_mouth_motion: float = 0.01
    min_sync_agreement: float = 0.5
    window_s: float = 3.0

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
    held = _hold(speaking, times, thresholds.hold_s)
    reasons[~held] = code("silence")
    if thresholds.visible_speaker:
        reasons[held & ~_mouth_goes_with_speech(measures, thresholds)] = code("not_speaking")
    reasons[np.isnan(prob)] = code("no_audio")
    return Verdict(reasons)


def _mouth_goes_with_speech(measures: Measures, thresholds: SilenceThresholds) -> np.ndarray:
    """Per frame: the mouth moves enough over the window, and in step with the speech.

    A frame without a face (NaN measures) counts as going with it: the face rule decides it.
    """
    motion = column(measures, "mouth_motion")
    agreement = column(measures, "sync_agreement")
    times = column(measures, "time_s")
    n = len(motion)
    if n == 0:
        return np.ones(0, bool)
    step = (float(times[-1]) - float(times[0])) / (n - 1) if n > 1 else 0.04
    half = max(1, int(round(thresholds.window_s / max(step, 1e-6) / 2)))
    valid = np.isfinite(motion)
    # Window mean over the frames with a face: running sums of values and counts.
    sums = np.concatenate([[0.0], np.cumsum(np.where(valid, motion, 0.0))])
    counts = np.concatenate([[0], np.cumsum(valid)])
    lo = np.clip(np.arange(n) - half, 0, n)
    hi = np.clip(np.arange(n) + half + 1, 0, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_motion = (sums[hi] - sums[lo]) / (counts[hi] - counts[lo])
    moving = mean_motion >= thresholds.min_mouth_motion
    synced = np.nan_to_num(agreement, nan=0.0) >= thresholds.min_sync_agreement
    return (moving & synced) | ~valid


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


SPEC = FilterSpec(
    name="silence", thresholds=SilenceThresholds, run=silence_filter,
    reasons=("no_audio", "silence", "not_speaking"), fused="silence", title="silence",
    rule="no speech within `hold_s` (VAD < `min_speech_prob`), or no audio; speech the "
         "visible mouth does not make (`visible_speaker`: mean `mouth_motion` over "
         "`window_s` < `min_mouth_motion`, or `sync_agreement` < `min_sync_agreement`)",
    keys=(ThresholdKey("min_speech_prob", "speech_prob", "<", "speech probability",
                       Slider(0.0, 1.0, 0.01), Grid(1e-4)),
          # Averaged over a tunable window before it is compared: stored exact.
          ThresholdKey("min_mouth_motion", "mouth_motion", "<", "mouth motion (per 1/25 s)",
                       Slider(0.0, 0.1, 0.001)),
          ThresholdKey("min_sync_agreement", "sync_agreement", "<", "lip-sync lag agreement",
                       Slider(0.0, 1.0, 0.01), Grid(1e-4))),
)
