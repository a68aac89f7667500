"""``gaia train instruct``: the text-instructed motion model (paper, appendix E) on latent
shards of instruct clips.

Appendix E keeps GAIA's diffusion model and swaps its speech features for a CLIP text
encoder's representation of the instruction. Here that is literal: the s2m Conformer, its task,
pose predictor, loop, DDP, checkpoints and exact resume (``training.s2m``), unchanged, read
latent shards whose condition rows are the instruction's pooled text embedding and a clock
since the cue (``gaia.text.instruction_rows``, made by ``gaia encode-latents --text-encoder``).
The sizes are ``instruct-*`` presets; the statistics must name an instruction condition, so
speech latents are refused here, and instruction latents by ``gaia train s2m``.
"""

from __future__ import annotations

import logging
import sys

from gaia.training.instruct.options import INSTRUCT_TASK, InstructTrainOptions
from gaia.training.s2m.train import train_on_latents

logger = logging.getLogger(__name__)  # progress lines; gaia.common.logs routes them


def train_instruct(options: InstructTrainOptions, log=logger.info) -> int:
    """Train; returns the last step reached."""
    return train_on_latents(options, INSTRUCT_TASK, True, log)


def main(argv: list[str] | None = None) -> int:
    """Entry for ``torchrun -m gaia.training.instruct.train ...`` (the CLI's options)."""
    from gaia.training.train_parser import torchrun_options

    train_instruct(torchrun_options(INSTRUCT_TASK, InstructTrainOptions, argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
