"""Speech-to-motion metrics on landmark tracks (paper, section 5: speech-to-motion results;
appendix: evaluation details).

GAIA scores generated motion by its stability (MSI, after StableFace, Ling et al. 2022), its
sync with the speech and its head pose. These are our landmark-only readings of them: tracks
are ``(T, 68, 2)`` image pixels in iBUG 68 order (0-based), one row per video frame at ``fps``;
audio is 16 kHz mono float. Pure NumPy, so ``gaia eval s2m`` needs neither torch nor OpenCV here.

- MSI lives in ``evaluation.stability`` (StableFace's own definition).
- ``lip_sync_proxy``: Pearson correlation between the mouth opening and the log speech
  envelope per frame, best over a few frames of lag. A proxy for SyncNet's confidence, which
  needs weights we do not ship; it says whether the mouth opens when the voice is loud.
- ``pose_error``: mean absolute error of pitch, yaw and roll, in degrees.
"""

from __future__ import annotations

import math

import numpy as np

from gaia.filters.geometry import mouth_open
from gaia.schemas.shards import AUDIO_RATE, FPS

# Envelope floor: -80 dB of full scale. Digital silence would otherwise be log(0) = -inf, and
# the quiet gaps between words would weigh more than the speech itself.
ENVELOPE_FLOOR = 1e-4
POSE_AXES = ("pitch", "yaw", "roll")


def _check_track(landmarks: np.ndarray) -> np.ndarray:
    points = np.asarray(landmarks, dtype=np.float64)
    if points.ndim != 3 or points.shape[1:] != (68, 2):
        raise ValueError(f"landmarks must be a (frames, 68, 2) iBUG track, got {points.shape}")
    return points


def speech_envelope(audio: np.ndarray, num_frames: int, fps: float = FPS,
                    rate: int = AUDIO_RATE) -> np.ndarray:
    """log10 RMS of the audio in each video frame's window, ``(num_frames,)``.

    Frame ``i`` covers samples ``[round(i * rate / fps), round((i + 1) * rate / fps))``, the
    span it is on screen; frames past the audio's end are NaN.
    """
    samples = np.asarray(audio, dtype=np.float64)
    if samples.ndim != 1:
        raise ValueError(f"audio must be mono 1-D samples, got shape {samples.shape}: "
                         "average the channels first")
    edges = np.round(np.arange(num_frames + 1) * (rate / fps)).astype(np.int64)
    envelope = np.full(num_frames, np.nan)
    # Cumulative sums give every window's energy in one pass.
    energy = np.concatenate([[0.0], np.cumsum(samples**2)])
    full = edges[1:] <= len(samples)
    starts, stops = edges[:-1][full], edges[1:][full]
    rms = np.sqrt((energy[stops] - energy[starts]) / np.maximum(stops - starts, 1))
    envelope[full] = np.log10(np.maximum(rms, ENVELOPE_FLOOR))
    return envelope


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation over the pairs where both are finite; NaN when either is flat."""
    keep = np.isfinite(x) & np.isfinite(y)
    if keep.sum() < 3:
        return math.nan
    x, y = x[keep] - x[keep].mean(), y[keep] - y[keep].mean()
    norm = math.sqrt(float(x @ x) * float(y @ y))
    return math.nan if norm <= 1e-12 else float(x @ y) / norm


def lagged_correlation(mouth: np.ndarray, envelope: np.ndarray, lag: int) -> float:
    """Correlation of ``mouth[t]`` with ``envelope[t - lag]``: ``lag > 0`` is a mouth that
    moves ``lag`` frames after the sound."""
    n = min(len(mouth), len(envelope))
    if lag >= 0:
        return _pearson(mouth[lag:n], envelope[: n - lag])
    return _pearson(mouth[: n + lag], envelope[-lag:n])


def lip_sync_proxy(landmarks: np.ndarray, audio_16k: np.ndarray, fps: float = FPS,
                   max_lag_frames: int = 2) -> dict:
    """Best correlation of mouth opening with the speech envelope over lags in
    ``[-max_lag_frames, max_lag_frames]``.

    Returns ``{"correlation", "lag_frames"}``; ``lag_frames > 0`` means the mouth follows the
    audio by that many frames (see ``lagged_correlation``), and ties go to the smaller lag.
    When no lag gives a correlation (a closed mouth or silent audio: a flat signal), the
    correlation is 0, the lag 0, and a ``"note"`` key says why.
    """
    points = _check_track(landmarks)
    if max_lag_frames < 0:
        raise ValueError(f"max_lag_frames must be 0 or more, got {max_lag_frames}")
    mouth = mouth_open(points).astype(np.float64)
    envelope = speech_envelope(audio_16k, len(points), fps)
    best, best_lag = math.nan, 0
    for lag in sorted(range(-max_lag_frames, max_lag_frames + 1), key=abs):
        value = lagged_correlation(mouth, envelope, lag)
        if math.isfinite(value) and not value <= best:
            best, best_lag = value, lag
    if not math.isfinite(best):
        return {"correlation": 0.0, "lag_frames": 0,
                "note": "no correlation: the mouth opening or the speech envelope is flat "
                        "(or fewer than 3 frames overlap)"}
    return {"correlation": best, "lag_frames": best_lag}


def pose_error(predicted: np.ndarray, target: np.ndarray) -> dict:
    """Mean absolute error in degrees of ``(T, 3)`` pitch, yaw, roll tracks.

    Differences are wrapped to [-180, 180) so 179 against -179 is 2 degrees, not 358. Rows
    where either side is NaN (no face) are left out. Keys: pitch, yaw, roll, overall (the mean
    of the three).
    """
    pred = np.asarray(predicted, dtype=np.float64)
    true = np.asarray(target, dtype=np.float64)
    if pred.shape != true.shape or pred.ndim != 2 or pred.shape[1] != 3:
        raise ValueError(f"predicted and target must both be (frames, 3) pitch/yaw/roll, got "
                         f"{pred.shape} and {true.shape}")
    keep = np.isfinite(pred).all(axis=1) & np.isfinite(true).all(axis=1)
    if not keep.any():
        raise ValueError("no frame has a finite pose on both sides")
    diff = np.abs((pred[keep] - true[keep] + 180.0) % 360.0 - 180.0)
    per_axis = diff.mean(axis=0)
    out = {axis: float(value) for axis, value in zip(POSE_AXES, per_axis, strict=True)}
    out["overall"] = float(per_axis.mean())
    return out


def summarise(values: list[float]) -> dict:
    """``{"mean", "std", "n"}`` of the finite values (NaN mean and std when there are none)."""
    finite = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    if not len(finite):
        return {"mean": math.nan, "std": math.nan, "n": 0}
    return {"mean": float(finite.mean()), "std": float(finite.std()), "n": int(len(finite))}
