"""The instruction condition of the text-instructed motion model (paper, appendix E).

Appendix E replaces the diffusion model's speech features with a CLIP text encoder's
representation of the instruction. The s2m Conformer reads its condition as a sequence at
50 Hz, two rows per 25 fps frame (``SpeechToMotion``'s ``speech``), added to every block
through a per-block linear, and its pose predictor reads the same rows. So an instruction
becomes rows too:

    row r = [ pooled text embedding (E) | time since the cue's end, as sinusoids (TIME_DIMS) ]

**Pooled, not tokens.** The embedding is the text encoder's pooled output (CLIP's end-of-text
state, the vector CLIP trained to meet images): one instruction is one act, not a sequence
aligned with frames as speech is, and the model's speech path is built for frame-aligned rows.
Token features would need the cross-attention condition (table 9's ``speech_condition:
attention``, whose rotary positions assume frame-rate keys) and more parameters than the small
instruction corpus (24K examples in the paper) supports.

**Why a clock.** A constant condition tells the model *what* to do but not *when*: the
convolutions and rotary self-attention see relative positions only, so a constant input gives
the same output at every frame but the edges, and a head turn is a movement in time. The
sinusoids of the time since the cue's end (periods from ``MIN_PERIOD_S`` to ``MAX_PERIOD_S``)
let the denoiser and the pose predictor place the action: start, move, hold. At training the
time is the clip's own offset from its cue (``instruction.json``); at generation the clip
starts at the cue, offset 0.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

ROWS_PER_FRAME = 2  # the s2m model's condition rate: 50 Hz rows for 25 fps frames
TIME_DIMS = 16  # 8 periods, a sine and a cosine each
MIN_PERIOD_S = 0.5
MAX_PERIOD_S = 16.0
CONDITION_NAME = "clip_text_instruction"  # speech_features["name"] of instruction rows


def time_features(seconds: np.ndarray) -> np.ndarray:
    """``(N,)`` seconds since the cue's end -> ``(N, TIME_DIMS)`` sines and cosines of
    log-spaced periods from ``MIN_PERIOD_S`` to ``MAX_PERIOD_S``."""
    periods = np.geomspace(MIN_PERIOD_S, MAX_PERIOD_S, TIME_DIMS // 2)
    angles = 2.0 * np.pi * np.asarray(seconds, np.float64)[:, None] / periods[None]
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


def instruction_rows(pooled: np.ndarray, frames: int, fps: float, offset_s: float = 0.0
                     ) -> np.ndarray:
    """The condition rows ``(2 * frames, E + TIME_DIMS)`` float32 of one instruction's
    pooled embedding ``(E,)`` for a clip of ``frames`` frames at ``fps`` that starts
    ``offset_s`` seconds after the cue's end (module docstring)."""
    pooled = np.asarray(pooled, np.float32)
    if pooled.ndim != 1 or not pooled.size or not np.isfinite(pooled).all():
        raise ValueError(f"pooled must be a finite (E,) vector, not shape {pooled.shape}")
    if frames < 1 or fps <= 0 or not np.isfinite(offset_s):
        raise ValueError(f"need frames >= 1, fps > 0 and a finite offset, got {frames}, "
                         f"{fps}, {offset_s}")
    rows = ROWS_PER_FRAME * frames
    seconds = offset_s + np.arange(rows) / (ROWS_PER_FRAME * fps)
    clock = time_features(seconds).astype(np.float32)
    return np.concatenate([np.broadcast_to(pooled, (rows, pooled.size)), clock], axis=1)


class InstructionRows:
    """The stored condition rows of instructions by one text encoder (``encoder``: texts ->
    ``(N, E)`` pooled embeddings), each text encoded once (a corpus repeats a few hundred
    instructions over thousands of clips). Rows are float16, as latent shards store them: the
    same call makes the training rows (encode-latents) and the generation rows, so both pass
    through the same rounding."""

    def __init__(self, encoder: Callable[[list[str]], np.ndarray]) -> None:
        self._encoder = encoder
        self._pooled: dict[str, np.ndarray] = {}

    def __call__(self, text: str, frames: int, fps: float, offset_s: float = 0.0
                 ) -> np.ndarray:
        """``instruction_rows`` of ``text``'s pooled embedding, as float16."""
        if text not in self._pooled:
            self._pooled[text] = self._encoder([text])[0]
        return instruction_rows(self._pooled[text], frames, fps, offset_s).astype(np.float16)


def instruction_provenance(encoder: dict) -> dict:
    """What instruction rows are, for ``speech_features`` in latent samples, statistics and
    checkpoints: the encoder's provenance (``encoder``) under ``encoder``, and the keys
    generation compares (``name``, ``dim``, ``rate_hz``, ``sha256``)."""
    return {"name": CONDITION_NAME, "dim": int(encoder["dim"]) + TIME_DIMS,
            "rate_hz": ROWS_PER_FRAME * 25, "sha256": encoder.get("sha256"),
            "pooled": "end_of_text", "time_dims": TIME_DIMS,
            "periods_s": [MIN_PERIOD_S, MAX_PERIOD_S], "untrained": bool(
                encoder.get("untrained")), "encoder": encoder}
