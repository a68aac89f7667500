"""The diffusion formulation of the speech-to-motion model, apart from any network (k-diffusion's
practice; docs/models.md).

Paper, section 4.2: a variance-preserving SDE (Song et al. 2021) over motion-latent sequences,
with the network predicting the clean sequence x0. Here: the noise schedule, the training loss
(masked, for variable-length windows) and two samplers that work with any x0-predictor:

- ``ode``: deterministic (DDIM with eta = 0, a discretisation of the probability-flow ODE);
- ``sde``: stochastic (DDIM with eta = 1, ancestral), the noise scaled by a temperature.

Time runs from ``eps`` (data) to 1 (noise); ``x_t = alpha(t) x0 + sigma(t) noise`` with
``alpha(t)^2 + sigma(t)^2 = 1``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from gaia.training.s2m.sampler_config import SamplerConfig

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t, t) -> predicted x0


@dataclass(frozen=True)
class VPSchedule:
    """Linear beta(t) from ``beta_min`` to ``beta_max`` over t in [eps, 1] (Song et al.'s VP)."""

    beta_min: float = 0.1
    beta_max: float = 20.0
    eps: float = 1e-3

    def log_alpha(self, t: torch.Tensor) -> torch.Tensor:
        """log of the mean coefficient: -1/2 of the integral of beta from 0 to t."""
        return -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        return torch.exp(self.log_alpha(t))

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(-torch.expm1(2 * self.log_alpha(t)))

    def log_snr(self, t: torch.Tensor) -> torch.Tensor:
        """log(alpha / sigma): falls from large (data) to very negative (noise)."""
        return self.log_alpha(t) - torch.log(self.sigma(t))

    def time_at(self, log_snr: torch.Tensor) -> torch.Tensor:
        """The inverse of ``log_snr`` (a quadratic in t for the linear beta schedule)."""
        log_alpha = 0.5 * torch.nn.functional.logsigmoid(2 * log_snr)
        spread = self.beta_max - self.beta_min
        root = torch.sqrt(0.25 * self.beta_min**2 - spread * log_alpha)
        return (root - 0.5 * self.beta_min) / (0.5 * spread)

    def sampling_times(self, steps: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """``steps + 1`` times from 1 down to ``eps``, evenly spaced in log-SNR: the signal
        forms over a small range of t, where even steps in t would be far too coarse."""
        ends = torch.tensor([1.0, self.eps], dtype=torch.float64)
        grid = torch.linspace(*self.log_snr(ends).tolist(), steps + 1, dtype=torch.float64)
        times = self.time_at(grid)
        times[0], times[-1] = 1.0, self.eps
        return times.to(device=device, dtype=torch.float32)

    def sample_times(self, batch: int, generator: torch.Generator | None = None,
                     device: torch.device | str = "cpu") -> torch.Tensor:
        """Training times, uniform in [eps, 1]."""
        u = torch.rand(batch, generator=generator, device=device)
        return self.eps + (1 - self.eps) * u

    def noised(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``x_t`` for a batch of sequences ``x0`` (B, ...) at times ``t`` (B,)."""
        shape = (-1,) + (1,) * (x0.dim() - 1)
        return self.alpha(t).view(shape) * x0 + self.sigma(t).view(shape) * noise


def x0_loss(predicted: torch.Tensor, x0: torch.Tensor, mask: torch.Tensor | None = None
            ) -> torch.Tensor:
    """Mean squared error of the predicted clean sequence over valid frames.

    ``predicted``, ``x0``: (B, T, D); ``mask``: (B, T), True where the frame is part of the
    window (windows of 125-250 frames are padded to one length in a batch).
    """
    error = (predicted.float() - x0.float()) ** 2
    if mask is None:
        return error.mean()
    weights = mask.to(error.dtype).unsqueeze(-1).expand_as(error)
    return (error * weights).sum() / weights.sum().clamp_min(1.0)


@torch.no_grad()
def sample(denoiser: Denoiser, shape: tuple[int, ...], schedule: VPSchedule,
           config: SamplerConfig, generator: torch.Generator | None = None,
           device: torch.device | str = "cpu", known: torch.Tensor | None = None,
           known_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Draw sequences of ``shape`` by integrating from t = 1 down to ``eps``.

    ``known`` holds values that are fixed: after every step they are replaced by the known
    values noised to the step's time (in-painting by replacement, as in RePaint), so the rest
    is drawn consistent with them. Without ``known_mask``, ``known`` (B, K, ...) fixes the first
    K frames (the frames a long-speech window shares with the one before); with it, ``known``
    has ``shape`` and ``known_mask`` (bool, broadcastable to ``shape``) says which values hold
    (landmark points held through a whole track, paper section 5.4). The result's held values
    are the model's own last prediction there (near ``known``, not equal): callers put in
    what they hold.
    """
    eta = 0.0 if config.kind == "ode" else 1.0
    x = config.temperature * torch.randn(shape, generator=generator, device=device)
    times = schedule.sampling_times(config.steps, device=device)
    if known is not None and known_mask is None:
        prefix = known
        known = torch.zeros(shape, device=device, dtype=prefix.dtype)
        known[:, :prefix.shape[1]] = prefix
        known_mask = torch.zeros(shape, device=device, dtype=torch.bool)
        known_mask[:, :prefix.shape[1]] = True
    if known is not None:
        known_mask = known_mask.to(device=device, dtype=torch.bool).expand(shape)

    def held(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if known is None:
            return x
        noise = torch.randn(shape, generator=generator, device=device)
        return torch.where(known_mask, schedule.noised(known, t.expand(shape[0]), noise), x)

    x = held(x, times[0])
    for t_now, t_next in zip(times[:-1], times[1:], strict=True):
        t_batch = t_now.expand(shape[0])
        x0 = denoiser(x, t_batch)
        a_t, s_t = schedule.alpha(t_now), schedule.sigma(t_now)
        a_s, s_s = schedule.alpha(t_next), schedule.sigma(t_next)
        noise_estimate = (x - a_t * x0) / s_t
        # DDIM: the share of fresh noise; 0 for the ODE, the ancestral amount for eta = 1.
        fresh = eta * torch.sqrt(((s_s**2) / (s_t**2)) * (1 - (a_t**2) / (a_s**2))).clamp_min(0)
        kept = torch.sqrt((s_s**2 - fresh**2).clamp_min(0))
        x = a_s * x0 + kept * noise_estimate
        if eta > 0:
            x = x + fresh * config.temperature * torch.randn(
                shape, generator=generator, device=device)
        x = held(x, t_next)
    return denoiser(x, times[-1].expand(shape[0]))
