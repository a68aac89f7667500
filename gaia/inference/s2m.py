"""Motion from speech with a trained speech-to-motion (s2m) checkpoint (paper, section 4.2,
inference).

``LoadedS2m`` reads a ``gaia train s2m`` checkpoint (EMA weights, config and the
latent statistics it was trained with); ``sample_motion`` turns raw speech features, a raw
reference motion latent and, optionally, a head-pose track into a sequence of raw motion
latents: standardise with the checkpoint's statistics, predict the pose when none is given,
integrate the VP-SDE (``training.s2m.vp_sde.sample``) window by window, undo the standardisation.

Sequences longer than the model's longest training window are drawn as windows of
``window_max`` frames that overlap the one before by ``SamplerConfig.overlap`` of a window; the
shared frames are in-painted from the earlier window's result (``vp_sde.sample(known=...)``) and
then handed over from the old window's values to the new one's linearly, so lips and expression
continue across a boundary instead of restarting from fresh noise. The last
window ends at the last frame and is a whole window long (never a stub shorter than
``window_min``). Every window has the same reference and its noise from the one seeded generator
(the same seed gives the same motion).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from gaia.common.deprecation import deprecated
from gaia.training.checkpoint import load_checkpoint, resolve_checkpoint
from gaia.training.data.latent_stats import LatentStats
from gaia.training.instruct.options import INSTRUCT_TASK
from gaia.training.loop import autocast
from gaia.training.meta_build import build_matching
from gaia.training.s2m.config import S2mConfig, build_s2m_config
from gaia.training.s2m.model import SpeechToMotion
from gaia.training.s2m.options import OLD_TASK_NAMES, S2M_TASK
from gaia.training.s2m.vp_sde import SamplerConfig, sample


def run_task(checkpoint: Path) -> str | None:
    """The model a checkpoint's run trained, as its ``config.json`` names it (``task``), or
    None when the checkpoint is not in a run folder that has one. Runs written before the
    model was named s2m say ``diffusion``: read as ``s2m`` (one deprecation line)."""
    document = Path(checkpoint).parent.parent / "config.json"
    if not document.is_file():
        return None
    try:
        task = json.loads(document.read_text(encoding="utf-8")).get("task")
    except (ValueError, AttributeError):
        return None
    if task in OLD_TASK_NAMES:
        deprecated(f"task {task!r}", f"{OLD_TASK_NAMES[task]!r}", str(document))
        task = OLD_TASK_NAMES[task]
    return task if isinstance(task, str) else None


def window_plan(frames: int, window: int, overlap: float) -> list[tuple[int, int, int]]:
    """``(start, stop, known)`` per window: frames ``start:stop`` are drawn, the first
    ``known`` of them already fixed by earlier windows (module docstring)."""
    if frames <= window:
        return [(0, frames, 0)]
    shared = min(window - 1, int(round(overlap * window)))
    plan = [(0, window, 0)]
    while plan[-1][1] < frames:
        previous = plan[-1][1]
        start = previous - shared
        if start + window >= frames:  # the last window: a whole one, ending at the end
            start = frames - window
        plan.append((start, start + window, previous - start))
    return plan


@dataclass(frozen=True)
class LoadedS2m:
    """An s2m (or landmark) checkpoint's EMA model in eval mode, with its config and
    statistics."""

    model: SpeechToMotion
    config: S2mConfig
    stats: LatentStats
    checkpoint: Path
    step: int
    device: torch.device

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device | None = None
             ) -> LoadedS2m:
        """From a checkpoint file or a run folder (its latest checkpoint); a run whose
        ``config.json`` names another model (``gaia train vae``) is refused by name."""
        checkpoint = resolve_checkpoint(path)
        trained_by = run_task(checkpoint)
        if trained_by not in (None, S2M_TASK, INSTRUCT_TASK, "landmarks"):
            raise ValueError(f"{checkpoint} is a checkpoint of `gaia train {trained_by}`, not "
                             f"of `gaia train {S2M_TASK}`, `{INSTRUCT_TASK}` or `landmarks`")
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        state = load_checkpoint(checkpoint)
        task = state.get("task") if isinstance(state, dict) else None
        if not isinstance(task, dict) or not {"ema", "config", "stats"} <= set(task):
            raise ValueError(f"{checkpoint} is not a checkpoint of `gaia train s2m` (it "
                             "has no task.ema, task.config and task.stats)")
        config = build_s2m_config(task["config"])
        stats = LatentStats.from_state(task["stats"])
        model = build_matching(
            lambda: SpeechToMotion(config, stats.latent_dim, stats.speech_dim), task["ema"],
            str(checkpoint))
        model.load_state_dict(task["ema"])
        model.to(device).eval()
        return cls(model, config, stats, checkpoint, int(state.get("step", 0)), device)

    @torch.no_grad()
    def predict_pose(self, speech: Tensor, reference: Tensor) -> Tensor:
        """Raw speech ``(2T, F)`` and reference ``(D,)`` -> raw pose ``(T, 3)`` in degrees."""
        speech_n = self.stats.normalize("speech", speech.to(self.device))[None]
        reference_n = self.stats.normalize("motion", reference.to(self.device))[None]
        with autocast(self.device):
            pose = self.model.predict_pose(speech_n, reference_n)
        return self.stats.denormalize("pose", pose[0].float())

    @torch.no_grad()
    def sample_motion(self, speech: Tensor, reference: Tensor, pose: Tensor,
                      sampler: SamplerConfig, generator: torch.Generator,
                      progress=None, control: Tensor | None = None,
                      control_mask: Tensor | None = None) -> Tensor:
        """Raw motion ``(T, D)`` for raw speech ``(2T, F)``, reference ``(D,)`` and pose
        ``(T, 3)`` (module docstring). ``generator`` lives on ``self.device``.

        ``control`` (T, D), raw, with ``control_mask`` (D,) bool: those dimensions are held
        to ``control`` through the whole track (in-painted while the rest is drawn; paper,
        section 5.4) and equal it exactly in the result."""
        frames = pose.shape[0]
        if speech.shape[0] != 2 * frames:
            raise ValueError(f"speech has {speech.shape[0]} rows for {frames} frames: two "
                             "rows per frame are needed")
        stats, window, dim = self.stats, self.config.window_max, self.stats.latent_dim
        held_dims = None
        if control is not None:
            if control.shape != (frames, dim) or control_mask is None \
                    or control_mask.shape != (dim,):
                raise ValueError(f"control must be ({frames}, {dim}) with a ({dim},) mask")
            held_dims = control_mask.to(self.device, torch.bool)
            control_n = stats.normalize("motion", control.to(self.device))
        speech_n = stats.normalize("speech", speech.to(self.device))
        pose_n = stats.normalize("pose", pose.to(self.device))
        reference_n = stats.normalize("motion", reference.to(self.device))[None]
        motion = torch.zeros(frames, dim, device=self.device)
        plan = window_plan(frames, window, sampler.overlap)
        for number, (start, stop, known) in enumerate(plan, start=1):
            cond = (speech_n[2 * start:2 * stop][None], reference_n, pose_n[start:stop][None])
            values = torch.zeros(1, stop - start, dim, device=self.device)
            mask = torch.zeros(1, stop - start, dim, dtype=torch.bool, device=self.device)
            values[0, :known], mask[0, :known] = motion[start:start + known], True
            if held_dims is not None:
                values[0][:, held_dims] = control_n[start:stop][:, held_dims]
                mask[0][:, held_dims] = True
            drawn = self._draw(cond, stop - start, sampler, generator,
                               (values, mask) if bool(mask.any()) else None)
            if known:  # hand over across the shared frames: old to new, linearly
                weight = torch.linspace(1.0, 0.0, known + 2, device=self.device)[1:-1, None]
                drawn[:known] = weight * values[0, :known] + (1 - weight) * drawn[:known]
            motion[start:stop] = drawn
            if progress is not None:
                progress(f"[generate] motion window {number}/{len(plan)}: frames "
                         f"{start}-{stop - 1}" + (f" ({known} continued)" if known else ""))
        motion = stats.denormalize("motion", motion)
        if held_dims is not None:  # exact: the raw values, not a round trip through the stats
            motion[:, held_dims] = control.to(self.device, motion.dtype)[:, held_dims]
        return motion

    def _draw(self, cond: tuple[Tensor, Tensor, Tensor], length: int, sampler: SamplerConfig,
              generator: torch.Generator, held: tuple[Tensor, Tensor] | None) -> Tensor:
        """One window's standardised motion ``(length, D)``: sampled, in-painting ``held``
        (values, mask), or regressed by a model trained without diffusion (table 6)."""
        if not getattr(self.config, "diffusion", True):
            with autocast(self.device):
                return self.model.regress(*cond).float()[0]

        def denoiser(x_t: Tensor, t: Tensor) -> Tensor:
            with autocast(self.device):
                return self.model(x_t, t, *cond).float()

        values, mask = held if held is not None else (None, None)
        return sample(denoiser, (1, length, self.stats.latent_dim), self.config.schedule,
                      sampler, generator=generator, device=self.device, known=values,
                      known_mask=mask)[0]


LoadedDiffusion = LoadedS2m  # the name before s2m; kept for one release
