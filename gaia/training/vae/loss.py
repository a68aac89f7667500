"""The VAE's training losses (paper, section 4.1; latent-diffusion's LPIPSWithDiscriminator).

Generator (the VAE):  ``L1 + perceptual_weight * LPIPS + kl_weight * KL
+ adaptive_weight * gan_term``, where ``gan_term`` is ``-mean(logits_fake)`` (hinge) or
``softplus(-logits_fake)`` (vanilla, non-saturating), and the adaptive weight is
``disc_weight * |grad rec| / (|grad gan| + 1e-4)`` (clamped to [0, 1e4], no gradient), the
gradient norms taken at the decoder's last layer, so the GAN term pulls about as hard as the
reconstruction. Discriminator: ``0.5 * (mean(relu(1 - real)) + mean(relu(1 + fake)))`` for
hinge, the logistic loss for vanilla. Both GAN terms are zero before ``disc_start``.

Reductions as in latent-diffusion: the reconstruction term (L1 plus the LPIPS distance,
broadcast over pixels) and the KL (both latents, or the one of a VAE without disentanglement) are summed over a sample's elements and
averaged over the batch, so ``kl_weight = 1e-6`` means what it means there. The logs also give
the per-pixel L1. Everything that can overflow in bf16 (KL, gradient norms) is computed in
float32, so the loss runs under ``torch.autocast("cuda", torch.bfloat16)``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from gaia.training.vae.config import VaeConfig
from gaia.training.vae.frame_vae import FramePosterior
from gaia.training.vae.model import Posteriors
from gaia.training.vae.perceptual import LPIPS

MAX_ADAPTIVE_WEIGHT = 1.0e4


class VaeLoss(nn.Module):
    """``perceptual`` is the frozen LPIPS module or None (no perceptual term)."""

    def __init__(self, config: VaeConfig, perceptual: LPIPS | None) -> None:
        super().__init__()
        self.config = config
        self.perceptual = perceptual

    def gan_active(self, step: int) -> bool:
        return step >= self.config.disc_start

    def reconstruction_loss(self, target: Tensor, reconstruction: Tensor) -> tuple[Tensor, dict]:
        """Summed per sample, averaged over the batch (float32); logs per-pixel L1 and LPIPS."""
        l1 = (target.float() - reconstruction.float()).abs()
        per_sample = l1.flatten(1).sum(1)
        logs = {"l1": l1.mean().detach()}
        if self.perceptual is not None and self.config.perceptual_weight > 0:
            distance = self.perceptual(target, reconstruction)
            per_sample = per_sample + self.config.perceptual_weight * distance * l1[0].numel()
            logs["lpips"] = distance.mean().detach()
        return per_sample.mean(), logs

    def adaptive_weight(self, rec_loss: Tensor, gan_loss: Tensor, last_layer: Tensor) -> Tensor:
        """``disc_weight * |d rec / d W| / (|d gan / d W| + 1e-4)`` at ``last_layer`` in
        float32, detached; 0 when gradients are off (evaluation)."""
        if not (torch.is_grad_enabled() and last_layer.requires_grad and rec_loss.requires_grad
                and gan_loss.requires_grad):
            return torch.zeros((), device=rec_loss.device)
        rec_grad, = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)
        gan_grad, = torch.autograd.grad(gan_loss, last_layer, retain_graph=True)
        weight = rec_grad.float().norm() / (gan_grad.float().norm() + 1e-4)
        weight = weight.clamp(0.0, MAX_ADAPTIVE_WEIGHT).detach()
        return torch.nan_to_num(weight, nan=0.0) * self.config.disc_weight

    def generator_loss(self, target: Tensor, reconstruction: Tensor,
                       posteriors: Posteriors | FramePosterior,
                       logits_fake: Tensor | None, last_layer: Tensor, step: int
                       ) -> tuple[Tensor, dict[str, Tensor]]:
        """The VAE's loss and detached logs. ``logits_fake`` is the discriminator on
        ``reconstruction`` (may be None before ``disc_start``)."""
        rec_loss, logs = self.reconstruction_loss(target, reconstruction)
        # One KL term per latent: appearance and motion, or the frame's alone (FrameVAE).
        kls = {name: part.kl().mean() for name, part in posteriors.parts().items()}
        kl = sum(kls.values())
        loss = rec_loss + self.config.kl_weight * kl
        zero = torch.zeros((), device=loss.device)
        gan, weight = zero, zero
        if self.gan_active(step) and logits_fake is not None:
            gan = self.generator_gan_term(logits_fake)
            weight = self.adaptive_weight(rec_loss, gan, last_layer)
            loss = loss + weight * gan
        logs.update({f"kl_{name}": value.detach() for name, value in kls.items()})
        logs.update(rec_loss=rec_loss.detach(), gan_loss=gan.detach(),
                    adaptive_weight=weight.detach(), loss=loss.detach())
        return loss, logs

    def generator_gan_term(self, logits_fake: Tensor) -> Tensor:
        fake = logits_fake.float()
        if self.config.gan_loss == "hinge":
            return -fake.mean()
        return F.softplus(-fake).mean()

    def discriminator_loss(self, logits_real: Tensor, logits_fake: Tensor, step: int
                           ) -> tuple[Tensor, dict[str, Tensor]]:
        """Hinge (or logistic) loss on detached-input logits; zero before ``disc_start`` (still
        a graph through the logits, so every rank's backward touches the same parameters)."""
        real, fake = logits_real.float(), logits_fake.float()
        if self.config.gan_loss == "hinge":
            loss = 0.5 * (F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean())
        else:
            loss = 0.5 * (F.softplus(-real).mean() + F.softplus(fake).mean())
        factor = 1.0 if self.gan_active(step) else 0.0
        loss = loss * factor
        logs = {"disc_loss": loss.detach(), "logits_real": real.mean().detach(),
                "logits_fake": fake.mean().detach()}
        return loss, logs
