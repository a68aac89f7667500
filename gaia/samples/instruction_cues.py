"""Timed-text sidecars for the demo sample: the instruct preset's input (paper, appendix E).

Appendix E mines instructions spoken off-screen ("please smile") with their timestamps, and
keeps the action that follows each. The sample's videos have no such voice, so the sidecars
are written: two cues a clip, at its start and its middle, in each of the three formats the
curation reads (``X.cues.json``, ``X.srt``, ``X.vtt``), with one narration cue that is not an
instruction (dropped as ``not_instruction``) and one sidecar that breaks the rules (a cue
that ends before it starts, one that overlaps the cue before: each dropped with its reason).
The faces do not do what the cues say (they talk, listen, or stay turned): the demo shows the
data path and the model's plumbing, not a model that follows instructions.
"""

from __future__ import annotations

import json
from pathlib import Path

# clip (relative to the sample folder) -> its cues, as (start, end) in shares of the clip's
# duration and the text. Formats are given by the suffix.
DEMO_CUES: dict[str, tuple[str, list[tuple[float, float, str]]]] = {
    "talk/astronaut_talking.mp4": (".cues.json", [
        (0.0, 0.08, "Please smile"), (0.5, 0.58, "Now turn your head to the left")]),
    "talk/astronaut_wide_720p.mp4": (".srt", [
        (0.0, 0.08, "Turn your head to the right"), (0.5, 0.58, "Open your mouth")]),
    "filters/astronaut_listening.mp4": (".vtt", [
        (0.0, 0.08, "<i>Look at the camera</i>"), (0.5, 0.58, "Nod your head slowly")]),
    "filters/turned_man.mp4": (".srt", [
        (0.0, 0.08, "Turn your head to the left"),
        (0.5, 0.58, "Welcome back to the show")]),  # narration: not an instruction
    "filters/astronaut_shaky.mp4": (".cues.json", [
        (0.3, 0.1, "Please smile"),  # ends before it starts
        (0.5, 0.6, "Raise your eyebrows"), (0.55, 0.65, "Close your eyes")]),  # overlaps
}


def _stamp(seconds: float, separator: str) -> str:
    millis = int(round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}{separator}{rest % 1000:03d}"


def sidecar_text(suffix: str, cues: list[tuple[float, float, str]]) -> str:
    """The sidecar of ``cues`` (seconds, text) in the format ``suffix`` names."""
    if suffix == ".cues.json":
        return json.dumps([{"start": a, "end": b, "text": text} for a, b, text in cues],
                          indent=1) + "\n"
    separator = "," if suffix == ".srt" else "."
    blocks = [f"{_stamp(a, separator)} --> {_stamp(b, separator)}\n{text}\n"
              for a, b, text in cues]
    if suffix == ".srt":
        return "\n".join(f"{number}\n{block}" for number, block in enumerate(blocks, 1))
    return "WEBVTT\n\n" + "\n".join(blocks)


def write_demo_sidecars(out_dir: Path, duration_s: float) -> list[Path]:
    """Write ``DEMO_CUES``' sidecars beside the sample's clips in ``out_dir`` (clips of
    ``duration_s`` seconds); returns the files written."""
    written = []
    for clip, (suffix, shares) in DEMO_CUES.items():
        cues = [(round(a * duration_s, 3), round(b * duration_s, 3), text)
                for a, b, text in shares]
        path = out_dir / (clip.removesuffix(".mp4") + suffix)
        path.write_text(sidecar_text(suffix, cues), encoding="utf-8")
        written.append(path)
    return written
