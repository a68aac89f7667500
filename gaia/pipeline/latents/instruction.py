"""The instruction condition of an instruct clip, made at encode-latents (paper, appendix E).

An ``instruct`` clip sample carries ``instruction.json`` (``gaia.schemas.instruction``); its
latent sample holds, in the speech features' place (``speech.npy``), the instruction's
condition rows (``gaia.text.instruction_rows``: the text encoder's pooled embedding and a clock
since the cue), and ``speech_features`` names the text encoder. The s2m trainer then learns the
instruction-to-motion model with no change (``gaia train instruct``).
"""

from __future__ import annotations

import numpy as np

from gaia.schemas.clip_sample import Skip
from gaia.schemas.instruction import INSTRUCTION_MEMBER, InstructionError, read_instruction
from gaia.text.instruction_rows import InstructionRows, instruction_provenance


class InstructionCondition:
    """The text encoder of ``--text-encoder``, loaded once per worker, and its rows
    (``InstructionRows``: each text encoded once)."""

    def __init__(self, folder: str, device: str | None, allow_untrained: bool) -> None:
        from gaia.text.clip_text import load_text_encoder

        encoder = load_text_encoder(folder, device, allow_untrained=allow_untrained)
        self.provenance = instruction_provenance(encoder.provenance)
        self._rows = InstructionRows(encoder)

    def rows(self, members: dict[str, bytes], frames: int, fps: float
             ) -> tuple[np.ndarray, str]:
        """The ``(2 * frames, E + TIME_DIMS)`` float16 rows of a sample's instruction, and its
        text; Skip when the sample has none or it breaks the spec."""
        if INSTRUCTION_MEMBER not in members:
            raise Skip("no_instruction", "the clip has no instruction.json (not cut by the "
                                         "instruct preset): --text-encoder encodes instruct "
                                         "shards only")
        try:
            instruction = read_instruction(members[INSTRUCTION_MEMBER])
        except InstructionError as err:
            raise Skip("failed", f"instruction.json: {err}") from err
        return self._rows(instruction.text, frames, fps, instruction.offset_s), instruction.text
