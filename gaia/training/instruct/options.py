"""What ``gaia train instruct`` takes (paper, appendix E): the s2m trainer's options, over
instruction latent shards (``gaia encode-latents --text-encoder``). Apart from the trainer so
that building the CLI's parser imports no torch."""

from __future__ import annotations

from dataclasses import dataclass

from gaia.training.s2m.options import S2mTrainOptions

INSTRUCT_TASK = "instruct"  # the verb, the run document's task and the config prefix


@dataclass(frozen=True)
class InstructTrainOptions(S2mTrainOptions):
    """As ``S2mTrainOptions``; ``shards`` are latent shards of instruct clips, whose
    condition is the instruction (``gaia.text.instruction_rows``), not speech."""
