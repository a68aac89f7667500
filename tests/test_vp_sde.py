"""The VP-SDE schedule, the masked x0 loss and both samplers, with exact denoisers."""

from __future__ import annotations

import pytest
import torch

from gaia.training.s2m.vp_sde import SamplerConfig, VPSchedule, sample, x0_loss

SCHEDULE = VPSchedule()


def test_sampling_times_invert_the_log_snr():
    t = torch.tensor([0.05, 0.3, 0.7, 0.95], dtype=torch.float64)
    assert torch.allclose(SCHEDULE.time_at(SCHEDULE.log_snr(t)), t, atol=1e-9)
    times = SCHEDULE.sampling_times(20)
    assert times[0] == 1.0 and times[-1] == pytest.approx(SCHEDULE.eps)
    assert torch.all(times[1:] < times[:-1])
    gaps = torch.diff(SCHEDULE.log_snr(times.double()))
    assert torch.allclose(gaps, gaps.mean().expand_as(gaps), rtol=1e-4)


def test_schedule_preserves_variance_and_spans_data_to_noise():
    t = torch.linspace(SCHEDULE.eps, 1, 50)
    alpha, sigma = SCHEDULE.alpha(t), SCHEDULE.sigma(t)
    assert torch.allclose(alpha**2 + sigma**2, torch.ones_like(t), atol=1e-6)
    assert alpha[0] > 0.999 and alpha[-1] < 0.01
    assert torch.all(alpha[1:] < alpha[:-1])


def test_masked_loss_ignores_padding():
    x0 = torch.zeros(2, 5, 3)
    predicted = torch.zeros(2, 5, 3)
    predicted[:, 3:] = 100.0  # padded frames, wildly wrong
    mask = torch.tensor([[1, 1, 1, 0, 0]] * 2, dtype=torch.bool)
    assert x0_loss(predicted, x0, mask) == 0
    assert x0_loss(predicted, x0) > 0


def gaussian_denoiser(mean: float, std: float):
    """E[x0 | x_t] for data N(mean, std^2): the best possible x0-predictor."""

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = SCHEDULE.alpha(t).view(-1, *([1] * (x.dim() - 1)))
        s = SCHEDULE.sigma(t).view_as(a)
        gain = std**2 * a / (a**2 * std**2 + s**2)
        return mean + gain * (x - a * mean)

    return denoise


@pytest.mark.parametrize("kind", ["ode", "sde"])
def test_samplers_recover_the_data_distribution(kind):
    generator = torch.Generator().manual_seed(0)
    drawn = sample(gaussian_denoiser(2.0, 0.5), (20000, 1), SCHEDULE,
                   SamplerConfig(kind=kind, steps=200), generator=generator)
    # First-order samplers: a few per cent of discretisation error at 200 steps.
    assert drawn.mean().item() == pytest.approx(2.0, abs=0.03)
    assert drawn.std().item() == pytest.approx(0.5, rel=0.05)
    # Fewer steps are further off, never closer: the error is the sampler's, not noise.
    coarse = sample(gaussian_denoiser(2.0, 0.5), (20000, 1), SCHEDULE,
                    SamplerConfig(kind=kind, steps=10), generator=generator)
    assert abs(coarse.std().item() - 0.5) > abs(drawn.std().item() - 0.5)


def test_temperature_narrows_and_seed_repeats():
    config = SamplerConfig(kind="sde", steps=30, temperature=0.5)
    first = sample(gaussian_denoiser(0.0, 1.0), (5000, 2), SCHEDULE, config,
                   generator=torch.Generator().manual_seed(3))
    again = sample(gaussian_denoiser(0.0, 1.0), (5000, 2), SCHEDULE, config,
                   generator=torch.Generator().manual_seed(3))
    assert torch.equal(first, again)
    assert first.std().item() < 0.7


def test_a_point_mass_is_reached_exactly():
    target = torch.full((4, 7, 3), 1.5)
    drawn = sample(lambda x, t: target, (4, 7, 3), SCHEDULE, SamplerConfig(steps=5),
                   generator=torch.Generator().manual_seed(0))
    assert torch.allclose(drawn, target)


def test_bad_sampler_settings_are_refused():
    with pytest.raises(ValueError, match="ode' or 'sde"):
        SamplerConfig(kind="euler")
    with pytest.raises(ValueError, match="steps"):
        SamplerConfig(steps=0)
