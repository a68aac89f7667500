"""The module's name before the model was named s2m: ``gaia.inference.s2m``. Kept for one
release; importing it logs one deprecation line."""

from __future__ import annotations

from gaia.common.deprecation import deprecated
from gaia.inference.s2m import LoadedDiffusion, LoadedS2m, run_task, window_plan

deprecated("gaia.inference.diffusion", "gaia.inference.s2m")

__all__ = ["LoadedDiffusion", "LoadedS2m", "run_task", "window_plan"]
