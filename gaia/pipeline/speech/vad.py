"""Speech activity per video frame, from silero VAD (paper, appendix A.1: the silence filter).

The silero model ships inside the ``silero-vad`` wheel (docs/weights.md), so this runs
offline. It scores 512-sample windows (32 ms at 16 kHz); each video frame gets the probability
interpolated at its own time, so any frame rate, VFR included, lines up with the audio.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from gaia.schemas.shards import AUDIO_RATE

WINDOW = 512  # samples per VAD decision at 16 kHz


class SpeechDetector:
    """silero VAD (TorchScript build from the wheel), one thread."""

    def __init__(self) -> None:
        import importlib.resources

        import torch

        weights = importlib.resources.files("silero_vad.data").joinpath("silero_vad.jit")
        self._model = torch.jit.load(str(weights), map_location="cpu").eval()

    def window_probs(self, blocks: Iterable[np.ndarray]) -> np.ndarray:
        """Speech probability per 512-sample window of the concatenated ``blocks``."""
        import torch

        probs: list[np.ndarray] = []
        carry = np.zeros(0, np.float32)
        with torch.inference_mode():
            for block in blocks:
                audio = np.concatenate([carry, block])
                usable = len(audio) // WINDOW * WINDOW
                carry = audio[usable:]
                if usable:
                    # audio_forward scores a whole block in one call (state resets per block,
                    # which costs nothing measurable at 30 s blocks).
                    out = self._model.audio_forward(torch.from_numpy(audio[:usable])[None],
                                                    AUDIO_RATE)
                    probs.append(out[0].numpy())
        return np.concatenate(probs).astype(np.float32) if probs else np.zeros(0, np.float32)


def probs_at(window_probs: np.ndarray, times_s: np.ndarray) -> np.ndarray:
    """Window probabilities interpolated at ``times_s``; NaN past the end of the audio."""
    if len(window_probs) == 0:
        return np.full(len(times_s), np.nan, np.float32)
    centres = (np.arange(len(window_probs)) + 0.5) * WINDOW / AUDIO_RATE
    out = np.interp(times_s, centres, window_probs).astype(np.float32)
    out[times_s > centres[-1] + WINDOW / AUDIO_RATE] = np.nan
    return out
