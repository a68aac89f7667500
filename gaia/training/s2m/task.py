"""One training step of the speech-to-motion (s2m) model (paper, section 4.2; appendix B.1).

A window of motion latents ``x0`` is noised to a uniformly drawn time of the VP-SDE
(``training.s2m.vp_sde``), and the Conformer predicts ``x0`` back from the noisy sequence, the speech, the
reference motion latent and the head pose; the loss is the masked mean squared error. The pose
predictor is trained in the same step with MSE against the window's real poses. Adam at the
paper's learning rate with an inverse-square-root schedule after a linear warm-up, gradient
clipping, and an exponential moving average of the weights (the weights generation uses).

A model built with ``diffusion=False`` (paper, table 6, "w/o diffusion") is trained the same
way without the noising: it regresses ``x0`` from the speech, reference and pose
(``SpeechToMotion.regress``), with the same masked MSE; no times or noise are drawn.

Inputs are standardised with ``LatentStats`` here, once, so the network never sees raw units.
Noise and diffusion times come from a generator of the task's own, saved in checkpoints (as in
``VaeTask``), so a resumed run draws what an uninterrupted one would.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from gaia.training.checkpoint import rank_seed
from gaia.training.data.latent_stats import LatentStats
from gaia.training.distributed import World, no_sync, unwrap, wrap
from gaia.training.loop import accumulate, autocast
from gaia.training.s2m.config import S2mConfig
from gaia.training.s2m.model import SpeechToMotion
from gaia.training.s2m.vp_sde import x0_loss


class JointModel(nn.Module):
    """The denoiser and the pose predictor in one forward, so DDP sees every parameter used
    in the pass it wraps. ``x_t`` and ``t`` None: the regression of a model without
    diffusion."""

    def __init__(self, model: SpeechToMotion) -> None:
        super().__init__()
        self.model = model

    def forward(self, x_t: Tensor | None, t: Tensor | None, speech: Tensor, reference: Tensor,
                pose: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        if x_t is None:
            motion = self.model.regress(speech, reference, pose, mask)
        else:
            motion = self.model(x_t, t, speech, reference, pose, mask)
        return motion, self.model.predict_pose(speech, reference, mask)


def inverse_sqrt(warmup_steps: int):
    """Learning-rate factor: linear warm-up to 1 over ``warmup_steps``, then
    ``sqrt(warmup / step)``."""
    warmup = max(1, warmup_steps)

    def factor(step: int) -> float:
        step = step + 1
        return min(step / warmup, (warmup / step) ** 0.5)

    return factor


class S2mTask:
    """Model, EMA copy, optimiser, schedule and the step (module docstring)."""

    image_name = "latents"

    def __init__(self, config: S2mConfig, stats: LatentStats, world: World,
                 seed: int = 0, lr_scale: float = 1.0) -> None:
        self.config, self.stats, self.world = config, stats, world
        self.schedule = config.schedule
        # Each rank draws its own times and noise (alike, they would repeat across ranks);
        # the generator's state is per-rank state in checkpoints.
        self.noise = torch.Generator(device=world.device)
        self.noise.manual_seed(rank_seed(seed, world.rank))
        network = SpeechToMotion(config, stats.latent_dim, stats.speech_dim)
        self.ema = copy.deepcopy(network).to(world.device).eval().requires_grad_(False)
        self.model = wrap(JointModel(network), world)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr * lr_scale,
                                          betas=tuple(config.betas))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer,
                                                           inverse_sqrt(config.warmup_steps))
        self.updates = 0

    @property
    def network(self) -> SpeechToMotion:
        return unwrap(self.model).model

    def inputs(self, batch: dict) -> dict[str, Tensor]:
        """A loader batch on this device, standardised; padding zeroed after standardising."""
        device = self.world.device
        mask = batch["mask"].to(device)
        frames = mask.unsqueeze(-1).float()
        rows = mask.repeat_interleave(2, dim=1).unsqueeze(-1).float()
        return {
            "x0": self.stats.normalize("motion", batch["motion"].to(device)) * frames,
            "pose": self.stats.normalize("pose", batch["pose"].to(device)) * frames,
            "speech": self.stats.normalize("speech", batch["speech"].to(device)) * rows,
            "reference": self.stats.normalize("motion", batch["reference"].to(device)),
            "mask": mask,
        }

    def draw(self, x0: Tensor) -> tuple[Tensor, Tensor]:
        """Diffusion times ``(B,)`` and noise like ``x0`` from the task's generator."""
        t = self.schedule.sample_times(x0.shape[0], generator=self.noise, device=x0.device)
        return t, torch.randn(x0.shape, generator=self.noise, device=x0.device)

    def losses(self, model: nn.Module, inputs: dict[str, Tensor]) -> tuple[Tensor, dict]:
        """The step's loss and its parts for one micro-batch."""
        x0, mask = inputs["x0"], inputs["mask"]
        x_t = t = None  # without diffusion: no noising, the model regresses x0
        if self.config.diffusion:
            t, noise = self.draw(x0)
            x_t = self.schedule.noised(x0, t, noise)
        with autocast(self.world.device):
            predicted, pose = model(x_t, t, inputs["speech"], inputs["reference"],
                                    inputs["pose"], mask)
        motion_loss = x0_loss(predicted, x0, mask)
        pose_loss = x0_loss(pose, inputs["pose"], mask)
        loss = motion_loss + self.config.pose_loss_weight * pose_loss
        return loss, {"loss": loss.detach(), "x0_mse": motion_loss.detach(),
                      "pose_mse": pose_loss.detach()}

    def train_step(self, micro_batches: list[dict], step: int) -> dict[str, float]:
        """One optimiser step over ``micro_batches`` (gradient accumulation), then the EMA."""
        self.model.train()
        count = len(micro_batches)
        logs: dict[str, float] = {}
        self.optimizer.zero_grad(set_to_none=True)
        for index, batch in enumerate(micro_batches):
            with no_sync(self.model, self.world, index == count - 1):
                loss, parts = self.losses(self.model, self.inputs(batch))
                (loss / count).backward()
            accumulate(logs, parts, count)
        if self.config.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            logs["grad_norm"] = float(norm)
        logs["lr"] = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self._update_ema()
        return logs

    @torch.no_grad()
    def _update_ema(self) -> None:
        """EMA with the usual warm-up of the decay (early averages would remember the random
        initialisation for thousands of steps otherwise)."""
        self.updates += 1
        decay = min(self.config.ema_decay, (1 + self.updates) / (10 + self.updates))
        for averaged, live in zip(self.ema.parameters(), self.network.parameters(),
                                  strict=True):
            averaged.lerp_(live.detach(), 1 - decay)
        for averaged, live in zip(self.ema.buffers(), self.network.buffers(), strict=True):
            averaged.copy_(live)

    @torch.no_grad()
    def image_grid(self, batch: dict) -> Tensor:
        """Rows of (target latents | the EMA model's x0 at t = 0.5, or its regression without
        diffusion), time along the width: a glance at whether predictions follow the data."""
        inputs = self.inputs({k: v[:4] if hasattr(v, "shape") else v for k, v in batch.items()})
        x0 = inputs["x0"]
        cond = (inputs["speech"], inputs["reference"], inputs["pose"], inputs["mask"])
        if self.config.diffusion:
            t = torch.full((x0.shape[0],), 0.5, device=x0.device)
            noise = torch.randn(x0.shape, generator=self.noise, device=x0.device)
            predicted = self.ema(self.schedule.noised(x0, t, noise), t, *cond)
        else:
            predicted = self.ema.regress(*cond)
        rows = [torch.cat([x0[i].T, predicted[i].float().T], dim=1) for i in range(len(x0))]
        image = torch.sigmoid(torch.cat(rows, dim=0)).cpu()  # standardised values -> (0, 1)
        image = image.repeat_interleave(4, 0).repeat_interleave(4, 1)
        return image.unsqueeze(0).expand(3, -1, -1).contiguous()

    def state_dict(self) -> dict:
        return {"model": self.network.state_dict(), "ema": self.ema.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "updates": self.updates,
                "config": self.config.to_dict(), "stats": self.stats.to_state()}

    def rank_state_dict(self) -> dict:
        return {"noise": self.noise.get_state()}

    def load_rank_state_dict(self, state: dict) -> None:
        self.noise.set_state(state["noise"].cpu())

    def load_state_dict(self, state: dict) -> None:
        self.network.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.updates = int(state["updates"])


DiffusionTask = S2mTask  # the name before s2m; kept for one release
