"""A weightless audio-visual sync measure: mouth opening against the speech envelope.

GAIA appendix A.1 drops clips where "lip movements and speech are not aligned". SyncNet
(Chung & Zisserman 2016) learns that match; this module measures the same thing without
weights, from what the measure stage already has: the per-frame inner-lip opening
(``geometry.mouth_open``) and the audio. Speech loudness and mouth opening rise and fall
together syllable by syllable (about 4-6 Hz), so within a window of a couple of seconds their
normalised cross-correlation peaks at the lag between them.

Conventions (shared with ``pipeline.speech.syncnet``):
- ``offset_frames`` > 0 means the audio is late: the mouth moves first and the sound follows
  that many frames later (correct it by moving the audio earlier by ``offset / fps`` s).
- ``confidence`` is SyncNet's: the peak correlation minus the median over all lags tried. A
  still mouth under speech or a mouth against silence gives a flat curve (confidence near 0);
  ``SYNCED_CONFIDENCE`` separates them (figures measured with ``gaia.samples.talking``).
Pure numpy (the filters' rule: no torch, no cv2).
"""

from __future__ import annotations

import numpy as np

from gaia.schemas.shards import FPS  # mouth motion is per 1/FPS s, as every motion metric

SYNCED_CONFIDENCE = 0.55  # peak - median correlation: synced windows >= 0.59 (p10), still <= 0.37 (p90)
# Lag agreement (``lag_agreement``), in frames at 25 fps: real faces that are not the speaker
# (laughing, crying, a hand over the mouth, a man talking unheard words; benchmarks/
# visible_speaker.py) find chance peaks whose lag wanders from window to window (p10-p90 -7..11
# frames), while a mouth moved by its own speech keeps one lag (0 on every lip-synced case).
AGREE_WINDOW_S = 3.0  # the window the lags are compared over
AGREE_TOLERANCE = 2.0  # a frame agrees when its lag is within this of the window's median
AGREE_MIN_CONFIDENCE = 0.3  # ... and its peak stands out at least this much (synced p10: 0.47)
AGREE_MAX_LAG = 6.0  # a median lag past LatentSync's bound (0.24 s) agrees with nothing
LOG_FLOOR = 1e-5  # RMS floor (-100 dB) so silence has a finite log energy


def speech_envelope(audio: np.ndarray, rate: int, times_s: np.ndarray, fps: float) -> np.ndarray:
    """Log RMS energy of ``audio`` (sample 0 at time 0) in one frame-long window per frame.

    The window of frame ``i`` is ``[times_s[i], times_s[i] + 1/fps)``: the sound heard while the
    frame is shown. Frames past the end of the audio get the floor, ``log(LOG_FLOOR)``.
    """
    audio = np.asarray(audio, np.float64).reshape(-1)
    times = np.asarray(times_s, np.float64)
    start = np.clip(np.round(times * rate).astype(np.int64), 0, audio.size)
    stop = np.clip(np.round((times + 1.0 / fps) * rate).astype(np.int64), 0, audio.size)
    energy = np.concatenate([[0.0], np.cumsum(audio**2)])
    count = np.maximum(stop - start, 1)
    rms = np.sqrt((energy[stop] - energy[start]) / count)
    rms[stop <= start] = 0.0
    return np.log(np.maximum(rms, LOG_FLOOR)).astype(np.float32)


def _fill_nan(values: np.ndarray) -> np.ndarray:
    """NaNs replaced by linear interpolation between valid neighbours (edges: nearest)."""
    values = np.asarray(values, np.float64)
    valid = np.isfinite(values)
    if valid.all() or not valid.any():
        return np.where(valid, values, 0.0)
    index = np.arange(values.size)
    return np.interp(index, index[valid], values[valid])


def mouth_motion(mouth_open: np.ndarray, fps: float) -> np.ndarray:
    """|d mouth_open| per 1/25 s, smoothed over 3 frames; NaN where the face is missing.

    Gaps are bridged by interpolation before differencing (a one-frame miss does not make a
    jump), and the result is NaN again wherever ``mouth_open`` was.
    """
    opening = np.asarray(mouth_open, np.float64)
    if opening.size == 0:
        return np.zeros(0, np.float32)
    step = np.abs(np.diff(_fill_nan(opening), prepend=np.nan)) * (fps / FPS)
    step[0] = step[1] if step.size > 1 else 0.0
    smooth = np.convolve(np.pad(step, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    smooth[~np.isfinite(opening)] = np.nan
    return smooth.astype(np.float32)


def _zscore(windows: np.ndarray) -> np.ndarray:
    """Each row minus its mean over its standard deviation (0 where the row is flat)."""
    centred = windows - np.nanmean(windows, axis=-1, keepdims=True)
    spread = np.nanstd(windows, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(spread > 1e-6, centred / spread, 0.0)


def sync_lags(mouth_open: np.ndarray, envelope: np.ndarray, fps: float, window_s: float = 2.0,
              max_lag_s: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: the lag (frames) and confidence of mouth opening vs speech envelope.

    For frame ``t`` the window is ``window_s`` of frames centred on it; for each lag ``k`` in
    ``-K..K`` (``K = round(max_lag_s * fps)``) the correlation is between the mouth over the
    window and the envelope over the window moved ``k`` frames later. ``offset`` is the best
    ``k`` (positive: audio late), ``confidence`` the best correlation minus the median over
    the lags. NaN for both where over half the window has no face or where the speech is
    flat (silence).
    """
    mouth = np.asarray(mouth_open, np.float64)
    env = np.asarray(envelope, np.float64)
    n = min(mouth.size, env.size)
    mouth, env = mouth[:n], env[:n]
    lags = np.arange(-int(round(max_lag_s * fps)), int(round(max_lag_s * fps)) + 1)
    half = max(2, int(round(window_s * fps / 2)))
    offsets = np.full(n, np.nan, np.float32)
    confidence = np.full(n, np.nan, np.float32)
    if n == 0:
        return offsets, confidence
    face = np.isfinite(mouth)
    filled = _fill_nan(mouth)
    pad = lags.max() + half
    env_padded = np.pad(env, pad, mode="edge")
    mouth_padded = np.pad(filled, half, mode="edge")
    face_padded = np.pad(face, half, constant_values=False)
    span = 2 * half + 1
    window_index = np.arange(span)
    for t in range(n):
        if face_padded[t:t + span].mean() < 0.5:
            continue
        m = _zscore(mouth_padded[t:t + span][None])[0]
        if not m.any():
            continue
        starts = t + pad - half + lags  # envelope window for each lag, in padded indices
        e = _zscore(env_padded[starts[:, None] + window_index[None]])
        if not e.any():
            continue
        corr = e @ m / span
        best = int(np.argmax(corr))
        offsets[t] = lags[best]
        confidence[t] = corr[best] - np.median(corr)
    return offsets, confidence


def lag_agreement(offsets: np.ndarray, confidence: np.ndarray, fps: float,
                  window_s: float = AGREE_WINDOW_S) -> np.ndarray:
    """Per frame, in [0, 1]: the share of the ``window_s`` window around it whose lag agrees.

    A frame of the window agrees when its lag (``sync_lags``) is within ``AGREE_TOLERANCE``
    frames (at 25 fps) of the window's median lag and its confidence reaches
    ``AGREE_MIN_CONFIDENCE``; frames without a lag (no face, silence) never agree. A window
    whose median lag is past ``AGREE_MAX_LAG`` scores 0. The share is over the window's frames
    (fewer at the video's ends), so a face seen on half of them scores at most 0.5. Chance correlations peak somewhere new in
    every window; a mouth that makes the speech keeps its lag, so this tells a speaker from a
    face that merely moves (the silence filter's visible-speaker rule).
    """
    lag = np.asarray(offsets, np.float64) * (FPS / fps)  # in frames at 25 fps
    conf = np.asarray(confidence, np.float64)
    n = lag.size
    out = np.zeros(n, np.float32)
    if n == 0:
        return out
    half = max(1, int(round(window_s * fps / 2)))
    padded = np.pad(lag, half, constant_values=np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)  # (n, w) view
    seen = np.isfinite(windows).any(axis=1)
    median = np.full(n, np.nan)
    if seen.any():
        median[seen] = np.nanmedian(windows[seen], axis=1)
    sure = np.pad(np.nan_to_num(conf, nan=-np.inf) >= AGREE_MIN_CONFIDENCE, half)
    sure_windows = np.lib.stride_tricks.sliding_window_view(sure, 2 * half + 1)
    with np.errstate(invalid="ignore"):
        agrees = (np.abs(windows - median[:, None]) <= AGREE_TOLERANCE) & sure_windows
    index = np.arange(n)
    inside = np.minimum(index + half, n - 1) - np.maximum(index - half, 0) + 1
    out[:] = agrees.sum(axis=1) / inside  # at the video's edges: over its own frames only
    out[~(np.abs(median) <= AGREE_MAX_LAG)] = 0.0  # NaN medians (nothing seen) too
    return out


def clip_offset_frames(offsets: np.ndarray, confidence: np.ndarray,
                       min_confidence: float = SYNCED_CONFIDENCE) -> float:
    """Median offset over the frames whose confidence passes ``min_confidence`` (NaN if none)."""
    offsets = np.asarray(offsets, np.float64)
    confidence = np.asarray(confidence, np.float64)
    keep = np.isfinite(offsets) & np.isfinite(confidence) & (confidence >= min_confidence)
    return float(np.median(offsets[keep])) if keep.any() else float("nan")
