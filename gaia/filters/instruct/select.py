"""Which timed-text cues are instructions (paper, appendix E: "please smile", "turn your head
left"), under ``instructions.mode``:

- ``imperative`` (the default): the cue, lower-cased, with a leading speaker label of one
  or two words (``"Director: ..."``), leading punctuation and politeness (``POLITE_WORDS``: "please",
  "now", "and", "okay", ...; ``POLITE_PHRASES``: "can you", "I want you to", "go ahead and",
  ...) stripped, starts with an action verb of ``VERBS`` (or of the preset's
  ``instructions.verbs``), and has at most ``instructions.max_words`` words. "Look," followed
  by a comma is a discourse marker ("look, I think ..."), not an instruction. An exclamation
  mark alone does not make an instruction: speech is full of them, and the verb is what says
  an action is asked for. Negations ("don't move") ask for no action and do not pass.
- ``words``: the cue holds one of ``instructions.words`` as whole words (a phrase matches as a
  run of whole words), in any case.
- ``all``: every usable cue.

A cue that is not an instruction is dropped with the reason ``not_instruction`` (counted in
the funnel's cues). The rule is a heuristic on purpose: the paper mined CC v1's instructional
speech, whose prompts are short imperatives; a corpus with other phrasing uses ``words``.
"""

from __future__ import annotations

import re

from gaia.filters.instruct.rules import InstructionRules

# Actions a face, a head or the hands near the face can perform on request.
VERBS = frozenset({
    "blink", "bite", "bow", "close", "cover", "cry", "face", "frown", "furrow", "gasp",
    "gaze", "glance", "grin", "hold", "keep", "kiss", "laugh", "lean", "lick", "lift",
    "look", "lower", "move", "nod", "open", "point", "pout", "pucker", "puff", "purse",
    "raise", "relax", "roll", "rotate", "scowl", "shake", "show", "shrug", "sigh", "smile",
    "smirk", "sneer", "squint", "stare", "stay", "stick", "tilt", "touch", "turn", "wave",
    "whistle", "wink", "wrinkle", "yawn"
})
# Leading words that soften or sequence an instruction without changing it.
POLITE_WORDS = frozenset({
    "please", "now", "and", "then", "next", "ok", "okay", "alright", "so", "just", "also",
    "again", "slowly", "gently", "quickly", "kindly", "right", "well", "good", "great",
    "first", "finally", "lastly", "oh", "um", "uh", "hey"
})
POLITE_PHRASES = tuple(tuple(p.split()) for p in (
    "can you", "could you", "would you", "will you", "all right", "let's", "try to",
    "go ahead and", "i want you to", "i'd like you to", "i would like you to",
    "i need you to", "we need you to", "we want you to",
))
DISCOURSE = frozenset({"look"})  # "look, ..." opens a remark, not an action
_TOKENS = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*|[^\w\s]")
_LABEL = re.compile(r"^\s*[^\W\d_][\w .'-]{0,30}:\s+(?=\S)")


def _tokens(text: str) -> list[str]:
    """Lower-cased words (apostrophes kept inside) and single punctuation marks."""
    text = text.lower().replace("\u2019", "'")
    return _TOKENS.findall(text)


def _strip_politeness(tokens: list[str]) -> list[str]:
    at = 0
    while at < len(tokens):
        token = tokens[at]
        if not token[0].isalpha() or token in POLITE_WORDS:
            at += 1
            continue
        phrase = next((p for p in POLITE_PHRASES if tuple(tokens[at:at + len(p)]) == p), None)
        if phrase is None:
            break
        at += len(phrase)
    return tokens[at:]


def is_imperative(text: str, rules: InstructionRules) -> bool:
    """``imperative`` mode's test (module docstring)."""
    label = _LABEL.match(text)
    # "Director: smile" -> "smile"; but "Turn your head: left" is no label.
    if label and len(label.group(0).split()) <= 2 and _tokens(label.group(0))[0] not in VERBS:
        text = text[label.end():]
    tokens = _strip_politeness(_tokens(text))
    if not tokens:
        return False
    if sum(token[0].isalpha() for token in tokens) > rules.max_words:
        return False
    verb = tokens[0]
    if verb in DISCOURSE and len(tokens) > 1 and tokens[1] == ",":
        return False
    return verb in VERBS or verb in {v.strip().lower() for v in rules.verbs}


def holds_words(text: str, words: tuple[str, ...]) -> bool:
    """``words`` mode's test: any of ``words`` as a run of whole words of ``text``."""
    padded = f" {' '.join(t for t in _tokens(text) if t[0].isalpha())} "
    for word in words:
        wanted = " ".join(t for t in _tokens(word) if t[0].isalpha())
        if wanted and f" {wanted} " in padded:
            return True
    return False


def is_instruction(text: str, rules: InstructionRules) -> bool:
    """Whether a usable cue's text is an instruction under ``rules.mode``."""
    if rules.mode == "all":
        return True
    if rules.mode == "words":
        return holds_words(text, rules.words)
    return is_imperative(text, rules)
