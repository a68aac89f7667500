"""The two-encoder VAE, its landmark renderer, LPIPS, discriminator and losses (paper, 4.1).

Quick CPU tests on vae-tiny; the paper's sizes are only counted (on the meta device).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from gaia.common.weights import MissingWeightsError
from gaia.training.vae.build import count_parameters
from gaia.training.vae.config import VaeConfig, load_vae_config
from gaia.training.vae.discriminator import PatchDiscriminator
from gaia.training.vae.landmark_render import NUM_PARTS, render_landmarks
from gaia.training.vae.loss import VaeLoss
from gaia.training.vae.model import DiagonalGaussian, Posteriors, TwoEncoderVAE
from gaia.training.vae.perceptual import (
    LPIPS,
    VGG16Features,
    _unit_length,
    load_perceptual,
    lpips_linear_weights_path,
    perceptual_provenance,
)

PAPER_PARAMETERS = {"vae-small": 80e6, "vae-base": 700e6, "vae-large": 1.7e9}


def face_points(batch: int = 1, seed: int = 0, jitter: float = 2.0) -> torch.Tensor:
    """A plausible 68-point face in a 256 x 256 crop (an ellipse jaw, brows, eyes, nose,
    lips at the iBUG indices), plus per-sample jitter in pixels."""
    t = torch.linspace(math.pi * 0.95, math.pi * 0.05, 17)
    jaw = torch.stack([128 - 80 * torch.cos(t), 120 + 95 * torch.sin(t)], 1)
    brows = torch.cat([torch.stack([torch.linspace(x0, x0 + 50, 5), torch.full((5,), 85.0)], 1)
                       for x0 in (70.0, 136.0)])
    nose = torch.cat([torch.stack([torch.full((4,), 128.0), torch.linspace(100, 150, 4)], 1),
                      torch.stack([torch.linspace(108, 148, 5), torch.full((5,), 160.0)], 1)])
    eye = torch.stack([torch.cos(torch.arange(6) * math.pi / 3) * 14,
                       torch.sin(torch.arange(6) * math.pi / 3) * 5], 1)
    eyes = torch.cat([eye + torch.tensor([95.0, 110.0]), eye + torch.tensor([161.0, 110.0])])
    outer = torch.stack([torch.cos(torch.arange(12) * math.pi / 6) * 36,
                         torch.sin(torch.arange(12) * math.pi / 6) * 14], 1)
    inner = torch.stack([torch.cos(torch.arange(8) * math.pi / 4) * 24,
                         torch.sin(torch.arange(8) * math.pi / 4) * 6], 1)
    lips = torch.cat([outer, inner]) + torch.tensor([128.0, 190.0])
    face = torch.cat([jaw, brows, nose, eyes, lips])
    assert face.shape == (68, 2)
    noise = torch.randn(batch, 68, 2, generator=torch.Generator().manual_seed(seed))
    return face[None] + jitter * noise


# ---------------------------------------------------------------------------- config and sizes


def test_presets_load_and_unknown_keys_are_named(tmp_path):
    tiny = load_vae_config("vae-tiny")
    assert tiny.name == "vae-tiny" and tiny.image_size == 64
    assert load_vae_config("vae-small").lr == pytest.approx(4.5e-6)
    bad = tmp_path / "bad.yaml"
    bad.write_text("channels: 32\nchanels_typo: 3\n")
    with pytest.raises(ValueError, match="chanels_typo"):
        load_vae_config(bad)
    with pytest.raises(ValueError, match="num_res_blocks"):
        load_vae_config("vae-tiny", num_res_blocks="two")
    with pytest.raises(ValueError, match="no VAE config"):
        load_vae_config("vae-nope")
    assert load_vae_config("vae-tiny", channel_multipliers=[1, 2, 2, 2]).channel_multipliers \
        == (1, 2, 2, 2)


@pytest.mark.parametrize("name", sorted(PAPER_PARAMETERS))
def test_parameter_counts_near_the_paper(name, capsys):
    counts = count_parameters(load_vae_config(name))  # on the meta device: nothing allocated
    paper = PAPER_PARAMETERS[name]
    ratio = counts["total"] / paper
    parts = ", ".join(f"{k} {v / 1e6:.1f}M" for k, v in counts.items())
    with capsys.disabled():
        print(f"\n{name}: {counts['total'] / 1e6:.1f}M parameters, paper {paper / 1e6:.0f}M "
              f"(ratio {ratio:.2f}); {parts}")
    assert counts["total"] == sum(counts[k] for k in ("appearance_encoder", "motion_encoder",
                                                      "decoder"))
    assert 0.5 <= ratio <= 2.0
    config = load_vae_config(name)
    with torch.device("meta"):  # shapes at the paper's 256 x 256, still nothing allocated
        model = TwoEncoderVAE(config)
        reconstruction, posteriors = model(torch.empty(1, 3, 256, 256),
                                           torch.empty(1, config.landmark_channels, 256, 256))
    assert reconstruction.shape == (1, 3, 256, 256)
    assert posteriors.appearance.mean.shape == (1, 4, 32, 32)
    assert posteriors.motion.mean.shape == (1, 4, 16, 16)


def test_tiny_shapes_and_posteriors():
    config = load_vae_config("vae-tiny")
    torch.manual_seed(0)
    model = TwoEncoderVAE(config)
    frame = torch.rand(2, 3, 64, 64) * 2 - 1
    landmarks = render_landmarks(face_points(2), 64, line_width=config.landmark_line_width)
    assert landmarks.shape == (2, config.landmark_channels, 64, 64)
    reconstruction, posteriors = model(frame, landmarks)
    assert reconstruction.shape == frame.shape
    assert posteriors.appearance.mean.shape == (2, *config.appearance_latent_shape) \
        == (2, 4, 8, 8)
    assert posteriors.motion.mean.shape == (2, *config.motion_latent_shape) == (2, 4, 4, 4)
    # sample=False decodes the means: deterministic
    again, _ = model(frame, landmarks, sample=False)
    assert torch.equal(again, model(frame, landmarks, sample=False)[0])
    decoded = model.decode(posteriors.appearance.mode(), posteriors.motion.mode())
    assert torch.allclose(decoded, again, atol=1e-5)
    assert model.last_layer_weight is model.decoder.conv_out.weight


def test_gradient_checkpointing_changes_nothing_but_memory():
    grads = []
    for checkpointing in (False, True):
        config = load_vae_config("vae-tiny", image_size=32, gradient_checkpointing=checkpointing)
        torch.manual_seed(0)
        model = TwoEncoderVAE(config)
        frame = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
        landmarks = render_landmarks(face_points(1), 32, line_width=1.0)
        reconstruction, _ = model(frame, landmarks, sample=False)
        reconstruction.square().mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert torch.allclose(grads[0], grads[1], rtol=1e-4, atol=1e-7)


def test_discriminator_patch_grid():
    with torch.device("meta"):
        disc = PatchDiscriminator(layers=3)
        assert disc(torch.empty(1, 3, 256, 256)).shape == (1, 1, 30, 30)
        spectral = PatchDiscriminator(layers=3, norm="none", spectral_norm=True)
        assert spectral(torch.empty(1, 3, 256, 256)).shape == (1, 1, 30, 30)
    tiny = PatchDiscriminator.from_config(load_vae_config("vae-tiny"))
    assert tiny(torch.zeros(2, 3, 64, 64)).shape[:2] == (2, 1)


# ---------------------------------------------------------------------------- landmark renderer


def test_renderer_lights_the_landmarks_and_nothing_far():
    points = face_points(3)
    image = render_landmarks(points, 64, source_size=256, line_width=1.0)
    assert image.shape == (3, NUM_PARTS, 64, 64)
    assert image.min() == -1.0 and image.max() <= 1.0
    # landmark 8 (chin, jaw channel 0) at 256-px (x, y) lands at (x / 4, y / 4) at 64 px
    # (the pixel holding it: its centre is within 0.71 px, so at least 29% covered)
    x, y = (points[1, 8] / 4).floor().long().tolist()
    assert image[1, 0, y, x] > -0.5 and image[1, 0, y - 1:y + 2, x - 1:x + 2].max() > 0.5
    assert image[1, 0, 2, 2] == -1.0 and image[1, :, 0:3, :].max() == -1.0  # the far top
    # a lip landmark lights the outer-lips channel, not the jaw's
    lx, ly = (points[1, 51] / 4).floor().long().tolist()
    assert image[1, 4, ly, lx] > -0.5 and image[1, 4, ly - 1:ly + 2, lx - 1:lx + 2].max() > 0.5
    assert image[1, 0, ly - 1:ly + 2, lx - 1:lx + 2].max() == -1.0
    merged = render_landmarks(points, 64, line_width=1.0, channels=1)
    assert torch.equal(merged[:, 0], image.amax(dim=1))


def test_renderer_is_deterministic_and_batch_independent():
    points = face_points(4, seed=3)
    batch = render_landmarks(points, 128, line_width=2.0)
    assert torch.equal(batch, render_landmarks(points, 128, line_width=2.0))
    for i in range(4):
        assert torch.equal(batch[i], render_landmarks(points[i:i + 1], 128, line_width=2.0)[0])
    # a far-off sample in the batch changes nothing for the others
    wide = torch.cat([points[:1], points[1:2] * 3 - 200])
    assert torch.equal(render_landmarks(wide, 128, line_width=2.0)[0], batch[0])
    # a missing landmark removes its two segments only, without NaNs
    holed = points[:1].clone()
    holed[0, 8] = float("nan")
    drawn = render_landmarks(holed, 128, line_width=2.0)
    assert torch.isfinite(drawn).all() and torch.equal(drawn[:, 1:], batch[:1, 1:])


# ---------------------------------------------------------------------------- LPIPS


@pytest.fixture(scope="module")
def random_vgg_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("vgg") / "vgg16-random.pth"
    torch.save(VGG16Features().torchvision_state_dict(), path)
    return path


def test_lpips_loads_a_torchvision_file_and_measures(random_vgg_file):
    lpips = load_perceptual("lpips", random_vgg_file)
    assert isinstance(lpips, LPIPS)
    assert not any(p.requires_grad for p in lpips.parameters())
    assert lpips_linear_weights_path().parts[-3:] == ("weights", "v0.1", "vgg.pth")
    provenance = perceptual_provenance(lpips)
    assert provenance["vgg16"]["path"] == str(random_vgg_file)
    assert len(provenance["vgg16"]["sha256"]) == 64 == len(provenance["lpips_linear"]["sha256"])
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    assert torch.equal(lpips(x, x), torch.zeros(2))
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(2))
    small, large = lpips(x, x + 0.05 * noise), lpips(x, x + 0.5 * noise)
    assert small.shape == (2,) and (small > 0).all() and (large > small).all()
    assert perceptual_provenance(load_perceptual("none", None)) == {"kind": "none"}
    # gradients stay finite through a location where every feature is zero (after a ReLU)
    zeros = torch.zeros(1, 8, 2, 2, requires_grad=True)
    _unit_length(zeros).sum().backward()
    assert torch.isfinite(zeros.grad).all()


def test_lpips_missing_or_wrong_file_is_named(tmp_path):
    missing = tmp_path / "vgg16-397923af.pth"
    with pytest.raises(MissingWeightsError, match="vgg16-397923af.pth") as caught:
        LPIPS(missing)
    assert str(missing) in str(caught.value)
    wrong = tmp_path / "not-vgg.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, wrong)
    with pytest.raises(MissingWeightsError, match="not-vgg.pth"):
        LPIPS(wrong)
    pickled = tmp_path / "pickled-model.pth"  # a whole module pickled, not a state dict
    torch.save(torch.nn.Linear(1, 1), pickled)
    with pytest.raises(ValueError, match="pickled-model.pth is not a VGG16 state dict") as caught:
        LPIPS(pickled)
    assert "weights_only" not in str(caught.value)


# ---------------------------------------------------------------------------- losses


def gaussian(shape, mean=0.0, logvar=0.0) -> DiagonalGaussian:
    return DiagonalGaussian(torch.full(shape, mean), torch.full(shape, logvar))


def test_l1_and_kl_terms():
    config = load_vae_config("vae-tiny", kl_weight=1e-3)
    loss = VaeLoss(config, None)
    target = torch.rand(2, 3, 8, 8) * 2 - 1
    prior = Posteriors(gaussian((2, 4, 2, 2)), gaussian((2, 4, 1, 1)))
    value, logs = loss.generator_loss(target, target.clone(), prior, None,
                                      torch.zeros(1, requires_grad=True), step=0)
    assert float(logs["l1"]) == 0.0 and float(value) == 0.0  # exact recon, prior posterior
    assert float(logs["kl_appearance"]) == 0.0 and float(logs["kl_motion"]) == 0.0
    shifted = Posteriors(gaussian((2, 4, 2, 2), mean=1.0), gaussian((2, 4, 1, 1), logvar=1.0))
    value, logs = loss.generator_loss(target, target + 0.5, shifted, None,
                                      torch.zeros(1, requires_grad=True), step=0)
    assert float(logs["l1"]) == pytest.approx(0.5)
    assert float(logs["kl_appearance"]) == pytest.approx(0.5 * 16)  # 0.5 * mean^2 per element
    assert float(logs["kl_motion"]) == pytest.approx(0.5 * (math.e - 2) * 4)
    expected = 0.5 * 3 * 64 + 1e-3 * (8 + 0.5 * (math.e - 2) * 4)  # summed per sample
    assert float(value) == pytest.approx(expected, rel=1e-5)


SMALL = 32  # vae-tiny on 32 x 32 frames (latents 2 x 2 and 4 x 4): the loss tests' size


def _gan_setup(disc_start: int, batch: int = 2):
    config = load_vae_config("vae-tiny", disc_start=disc_start, image_size=SMALL)
    torch.manual_seed(0)
    model, disc = TwoEncoderVAE(config), PatchDiscriminator.from_config(config)
    frame = torch.rand(batch, 3, SMALL, SMALL) * 2 - 1
    landmarks = render_landmarks(face_points(batch), SMALL, line_width=1.0)
    reconstruction, posteriors = model(frame, landmarks)
    return config, model, disc, frame, landmarks, reconstruction, posteriors


def test_adaptive_weight_and_disc_loss_follow_disc_start():
    config, model, disc, frame, landmarks, rec, post = _gan_setup(disc_start=10)
    loss = VaeLoss(config, None)
    _, before = loss.generator_loss(frame, rec, post, disc(rec), model.last_layer_weight, step=9)
    assert float(before["adaptive_weight"]) == 0.0 and float(before["gan_loss"]) == 0.0
    total, after = loss.generator_loss(frame, rec, post, disc(rec), model.last_layer_weight, 10)
    weight = float(after["adaptive_weight"])
    assert math.isfinite(weight) and 0.0 < weight <= 1e4 * config.disc_weight
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    d_before, _ = loss.discriminator_loss(disc(frame), disc(rec.detach()), step=9)
    d_after, logs = loss.discriminator_loss(disc(frame), disc(rec.detach()), step=10)
    assert float(d_before.detach()) == 0.0 and float(d_after.detach()) > 0.0
    assert float(logs["disc_loss"]) == float(d_after.detach())
    with torch.no_grad():  # evaluation: no gradient, so no adaptive weight, but no error
        rec2, post2 = model(frame, landmarks)
        _, logs = loss.generator_loss(frame, rec2, post2, disc(rec2), model.last_layer_weight, 10)
    assert float(logs["adaptive_weight"]) == 0.0


def test_losses_under_bf16_autocast(random_vgg_file):
    config, model, disc, frame, landmarks, _, _ = _gan_setup(disc_start=0, batch=1)
    loss = VaeLoss(config, LPIPS(random_vgg_file))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        rec, post = model(frame, landmarks)
        total, logs = loss.generator_loss(frame, rec, post, disc(rec), model.last_layer_weight,
                                          step=0)
        d_loss, _ = loss.discriminator_loss(disc(frame), disc(rec.detach()), step=0)
    assert rec.dtype == torch.bfloat16 and total.dtype == torch.float32
    assert all(math.isfinite(float(v)) for v in logs.values())
    assert float(logs["adaptive_weight"]) > 0.0 and float(logs["lpips"]) > 0.0
    (total + d_loss).backward()
    assert torch.isfinite(model.last_layer_weight.grad).all()


def test_tiny_vae_overfits_a_fixed_batch():
    config = load_vae_config("vae-tiny", image_size=SMALL)
    torch.manual_seed(0)
    model = TwoEncoderVAE(config)
    loss = VaeLoss(config, None)
    g = torch.Generator().manual_seed(0)
    # smooth random frames: learnable in a few steps, unlike pixel noise
    low = torch.rand(2, 3, 4, 4, generator=g) * 2 - 1
    frame = torch.nn.functional.interpolate(low, size=SMALL, mode="bilinear",
                                            align_corners=False)
    landmarks = render_landmarks(face_points(2, seed=1), SMALL, line_width=1.0)
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3, betas=config.betas)

    def l1() -> float:
        with torch.no_grad():
            return float((model(frame, landmarks, sample=False)[0] - frame).abs().mean())

    start = l1()
    for step in range(30):
        rec, post = model(frame, landmarks, generator=torch.Generator().manual_seed(step))
        total, _ = loss.generator_loss(frame, rec, post, None, model.last_layer_weight, step)
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
    end = l1()
    assert end < 0.5 * start, (start, end)  # about 0.3 in practice


def test_config_is_frozen_and_checked():
    config = VaeConfig()
    with pytest.raises(AttributeError):
        config.channels = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match="one level more"):
        VaeConfig(motion_channel_multipliers=(1, 2, 2, 4))
    with pytest.raises(ValueError, match="norm_groups"):
        VaeConfig(channels=20)
    assert VaeConfig().to_dict()["channel_multipliers"] == [1, 2, 2, 4]
