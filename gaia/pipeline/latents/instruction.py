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
from gaia.text.instruction_rows import instruction_provenance, instruction_rows


class InstructionCondition:
    """The text encoder of ``--text-encoder``, loaded once per worker; texts already encoded
    are kept (a corpus repeats a few hundred instructions over thousands of clips)."""

    def __init__(self, folder: str, device: str | None, allow_untrained: bool) -> None:
        from gaia.text.clip_text import load_text_encoder

        self._encoder = load_text_encoder(folder, device, allow_untrained=allow_untrained)
        self.provenance = instruction_provenance(self._encoder.provenance)
        self._pooled: dict[str, np.ndarray] = {}

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
        pooled = self._pooled.get(instruction.text)
        if pooled is None:
            pooled = self._pooled[instruction.text] = self._encoder([instruction.text])[0]
        rows = instruction_rows(pooled, frames, fps, instruction.offset_s)
        return rows.astype(np.float16), instruction.text
