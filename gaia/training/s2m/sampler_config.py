"""How the speech-to-motion sampler runs (paper, section 4.2, inference): ODE or SDE, steps,
temperature. Apart from ``vp_sde`` (which needs torch) so the CLIs can show its defaults.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SamplerConfig:
    """kind: ``ode`` or ``sde``. steps: denoiser calls. temperature: scale of the initial and
    injected noise (1 = the model's distribution; lower = more conservative motion).
    overlap: share of ``window_max`` that a window of long speech shares with the one before;
    those frames are in-painted from the earlier window's result, so motion continues across
    windows instead of starting from fresh noise (0: independent windows)."""

    kind: str = "ode"
    steps: int = 50
    temperature: float = 1.0
    overlap: float = 0.25

    def __post_init__(self) -> None:
        if self.kind not in ("ode", "sde"):
            raise ValueError(f"sampler kind must be 'ode' or 'sde', not {self.kind!r}")
        if self.steps < 1:
            raise ValueError("sampler steps must be at least 1")
        if self.temperature < 0:
            raise ValueError("sampler temperature must not be negative")
        if not 0 <= self.overlap < 1:
            raise ValueError(f"sampler overlap must be in [0, 1), not {self.overlap}")
