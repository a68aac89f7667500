"""The ``instructions`` section of the curation thresholds (paper, appendix E).

Off by default: the ``vae`` and ``s2m`` presets cut runs of passing frames (``segments``). The
``instruct`` preset turns it on, and then a clip is the action that follows an instruction
spoken off-screen, instead of a run of passing frames:

- the action window opens at the instruction cue's *end* (the participant hears the whole
  instruction, then acts; frames during the speech show a listener, not the action) and
  lasts ``window_s``, cut short at the next cue's start (the next instruction, or any other
  speech, begins a new moment);
- the clip is the run of frames passing every per-frame filter that begins within
  ``grace_s`` of the window's opening, up to its first failing frame or the window's end: at
  most one clip per cue, and the one that answers the instruction, not a later moment;
- a clip shorter than ``min_s`` is no action (``short_action``).

``mode`` says which cues are instructions (``gaia.filters.instruct.select``): ``imperative``
(a cue that starts with an action verb once politeness is stripped), ``words`` (a cue holding
one of ``words``) or ``all``.
"""

from __future__ import annotations

from dataclasses import dataclass

MODES = ("imperative", "words", "all")


@dataclass(frozen=True)
class InstructionRules:
    """enabled: clips follow instructions (the ``instruct`` preset) instead of segments.
    mode: which cues are instructions: ``imperative``, ``words`` or ``all``.
    words: ``words`` mode: a cue holding any of these (whole words or phrases, any case).
    verbs: ``imperative`` mode: action verbs added to the built-in list
        (``gaia.filters.instruct.select.VERBS``).
    max_words: ``imperative`` mode: longer cues are narration, not instructions.
    window_s: the longest action after a cue's end, seconds.
    min_s: the shortest action kept, seconds.
    grace_s: the action must begin within this long after the cue's end, seconds."""

    enabled: bool = False
    mode: str = "imperative"
    words: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    max_words: int = 12
    window_s: float = 5.0
    min_s: float = 1.5
    grace_s: float = 0.5

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"instructions.mode must be one of {', '.join(MODES)}, "
                             f"not {self.mode!r}")
        if self.mode == "words" and not any(w.strip() for w in self.words):
            raise ValueError("instructions.words must list at least one word or phrase when "
                             "instructions.mode is words")
        if self.max_words < 1:
            raise ValueError("instructions.max_words must be 1 or more")
        if not self.window_s > 0:
            raise ValueError("instructions.window_s must be positive")
        if not 0 < self.min_s <= self.window_s:
            raise ValueError(f"instructions.min_s ({self.min_s}) must be positive and at most "
                             f"instructions.window_s ({self.window_s})")
        if not 0 <= self.grace_s < self.window_s:
            raise ValueError(f"instructions.grace_s ({self.grace_s}) must be zero or more and "
                             f"below instructions.window_s ({self.window_s})")

    def to_dict(self) -> dict:
        """Plain values (lists, not tuples: YAML and JSON write them)."""
        return {"enabled": self.enabled, "mode": self.mode, "words": list(self.words),
                "verbs": list(self.verbs), "max_words": self.max_words,
                "window_s": self.window_s, "min_s": self.min_s, "grace_s": self.grace_s}
