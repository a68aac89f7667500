"""One training step of the two-encoder VAE (paper, section 4.1; appendix B.1).

Generator step: frame i and frame j's rendered landmarks in, frame j out; L1 + LPIPS + KL, and
after ``disc_start`` the patch discriminator's term with latent-diffusion's adaptive weight.
Discriminator step: hinge loss on real frames against the (detached) reconstructions. Two Adam
optimizers at the paper's constant learning rate. Without disentanglement (``disentangle:
false``, table 6) the one encoder sees frame j itself, and nothing else changes. The modules are wrapped for DDP here and only
here; gradient accumulation syncs on the last micro-batch only.
"""

from __future__ import annotations

import torch
from torch import nn

from gaia.training.checkpoint import rank_seed
from gaia.training.distributed import World, no_sync, unwrap, wrap
from gaia.training.loop import accumulate, autocast
from gaia.training.vae.build import build_vae
from gaia.training.vae.config import VaeConfig
from gaia.training.vae.discriminator import PatchDiscriminator
from gaia.training.vae.landmark_render import render_landmarks
from gaia.training.vae.loss import VaeLoss


class VaeTask:
    """Models, optimizers and the step (see the module docstring)."""

    def __init__(self, config: VaeConfig, perceptual: nn.Module | None, world: World,
                 seed: int = 0, lr_scale: float = 1.0) -> None:
        self.config = config
        self.world = world
        # Posterior noise from a generator of our own, saved in each rank's checkpoint file: the
        # global RNG is also drawn by DataLoader iterators, whose creation differs after a
        # resume. Seeded by rank: alike, every rank would draw the same posterior noise.
        self.noise = torch.Generator(device=world.device)
        self.noise.manual_seed(rank_seed(seed, world.rank))
        self.model = wrap(build_vae(config), world)
        self.disc = wrap(PatchDiscriminator(3, config.disc_channels, config.disc_layers,
                                            config.disc_norm, config.disc_spectral_norm), world)
        if perceptual is not None:
            perceptual = perceptual.to(world.device)
        self.loss = VaeLoss(config, perceptual).to(world.device)
        self.opt_model = torch.optim.Adam(self.model.parameters(), lr=config.lr * lr_scale,
                                          betas=tuple(config.betas))
        self.opt_disc = torch.optim.Adam(self.disc.parameters(), lr=config.lr * lr_scale,
                                         betas=tuple(config.betas))

    def landmark_image(self, landmarks: torch.Tensor) -> torch.Tensor:
        size = self.config.image_size
        return render_landmarks(landmarks, size, source_size=size,
                                line_width=self.config.landmark_line_width,
                                channels=self.config.landmark_channels)

    def _inputs(self, batch: dict, sketch: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Frame i, frame j and j's landmark image (None for a VAE without disentanglement,
        which has no use for it, unless ``sketch`` asks for it to be shown)."""
        device = self.world.device
        appearance = batch["appearance"].to(device, non_blocking=True)
        target = batch["target"].to(device, non_blocking=True)
        landmarks = None
        if self.config.disentangle or sketch:
            landmarks = self.landmark_image(batch["target_landmarks"].to(device))
        return appearance, target, landmarks

    def _forward(self, model: torch.nn.Module, appearance: torch.Tensor, target: torch.Tensor,
                 landmarks: torch.Tensor | None, sample: bool = True):
        """(reconstruction of frame j, posteriors): from frame i's appearance and j's
        landmarks, or without disentanglement from frame j alone."""
        if self.config.disentangle:
            return model(appearance, landmarks, sample=sample, generator=self.noise)
        return model(target, sample=sample, generator=self.noise)

    def train_step(self, micro_batches: list[dict], step: int) -> dict[str, float]:
        """One optimizer step of each network over ``micro_batches`` (gradient accumulation)."""
        self.model.train()
        self.disc.train()
        count = len(micro_batches)
        logs: dict[str, float] = {}
        self.opt_model.zero_grad(set_to_none=True)
        self.opt_disc.zero_grad(set_to_none=True)
        reconstructions = []
        for index, batch in enumerate(micro_batches):
            appearance, target, landmarks = self._inputs(batch)
            sync = index == count - 1
            with no_sync(self.model, self.world, sync), autocast(self.world.device):
                reconstruction, posteriors = self._forward(self.model, appearance, target,
                                                           landmarks)
                # The generator sees the discriminator unwrapped: its own parameters get no
                # gradient from this pass (they are zeroed below), only the VAE's do.
                logits_fake = (unwrap(self.disc)(reconstruction)
                               if self.loss.gan_active(step) else None)
                loss, parts = self.loss.generator_loss(
                    target, reconstruction, posteriors, logits_fake,
                    unwrap(self.model).last_layer_weight, step)
                (loss / count).backward()
            reconstructions.append((target, reconstruction.detach()))
            accumulate(logs, parts, count)
        self.opt_model.step()

        self.opt_disc.zero_grad(set_to_none=True)
        for index, (target, reconstruction) in enumerate(reconstructions):
            sync = index == count - 1
            with no_sync(self.disc, self.world, sync), autocast(self.world.device):
                logits_real = self.disc(target)
                logits_fake = self.disc(reconstruction)
                disc_loss, parts = self.loss.discriminator_loss(logits_real, logits_fake, step)
                (disc_loss / count).backward()
            accumulate(logs, parts, count)
        if self.loss.gan_active(step):
            self.opt_disc.step()
        return logs

    @torch.no_grad()
    def reconstruct(self, batch: dict) -> torch.Tensor:
        """Posterior-mean reconstructions of a batch, in [-1, 1]."""
        self.model.eval()
        appearance, target, landmarks = self._inputs(batch)
        with autocast(self.world.device):
            reconstruction, _ = self._forward(unwrap(self.model), appearance, target,
                                              landmarks, sample=False)
        return reconstruction.float().clamp(-1, 1)

    def image_grid(self, batch: dict) -> torch.Tensor:
        """Rows of (appearance frame, target landmarks, target, reconstruction), (3, H, W)."""
        appearance, target, landmarks = self._inputs(batch, sketch=True)
        shown = min(4, appearance.shape[0])
        reconstruction = self.reconstruct({k: v[:shown] if hasattr(v, "shape") else v
                                           for k, v in batch.items()})
        sketch = landmarks[:shown].float().amax(dim=1, keepdim=True).expand(-1, 3, -1, -1)
        rows = [torch.cat([appearance[i], sketch[i], target[i], reconstruction[i]], dim=2)
                for i in range(shown)]
        return ((torch.cat(rows, dim=1).float().cpu() + 1) / 2).clamp(0, 1)

    def state_dict(self) -> dict:
        return {"model": unwrap(self.model).state_dict(), "disc": unwrap(self.disc).state_dict(),
                "opt_model": self.opt_model.state_dict(), "opt_disc": self.opt_disc.state_dict(),
                "config": self.config.to_dict()}

    def rank_state_dict(self) -> dict:
        return {"noise": self.noise.get_state()}

    def load_rank_state_dict(self, state: dict) -> None:
        self.noise.set_state(state["noise"].cpu())

    def load_state_dict(self, state: dict) -> None:
        unwrap(self.model).load_state_dict(state["model"])
        unwrap(self.disc).load_state_dict(state["disc"])
        self.opt_model.load_state_dict(state["opt_model"])
        self.opt_disc.load_state_dict(state["opt_disc"])
        if "noise" in state:  # checkpoints from before per-rank noise held rank 0's here
            self.noise.set_state(state["noise"].cpu())
