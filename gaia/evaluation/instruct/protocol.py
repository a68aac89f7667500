"""``gaia eval instruct``: an automatic measure of instruction following (paper, appendix E).

The paper rates text-instructed videos by people only (10 unseen portraits x 10 instructions,
5 raters, 0-5: instruction following 4.21, video quality 4.41, identity 4.64;
``common.paper_numbers.APPENDIX_E_RATINGS``). This protocol measures what can be measured:

1. For every portrait (one face each) and every instruction (``evaluation.instruct.cases``),
   the instruct model makes a video of ``seconds`` with one seed; the same portrait also gets
   a video of the NEUTRAL instruction (default "look at the camera"), same seed and length.
   The models and the text encoder are loaded once (``generation.instructed``).
2. Every frame of both is measured as curation measures (``evaluation.instruct.measures``):
   frames where no face is found are counted (coverage), not scored.
3. The effect of an instruction on a portrait is its video's value of the instruction's
   measure minus the neutral video's; per instruction and per action (phrasings pooled) the
   report gives the mean and spread over portraits, the share of portraits whose effect has
   the expected sign, the coverage, and a noise figure: the neutral videos' own frame-to-frame
   standard deviation of the measure (mean over portraits). An effect whose size is within
   that noise is reported as such: an untrained or tiny model gives weak or null effects.

The figures are not the paper's: a human rating of "how well was the instruction followed"
and a landmark measure of one action's size do not compare one to one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from gaia.common.paper_numbers import APPENDIX_E_RATINGS
from gaia.evaluation.instruct import NEUTRAL
from gaia.evaluation.instruct.cases import InstructionCase
from gaia.evaluation.instruct.measures import MEASURES, FaceTrack, pose_track_value

STRIP_FRAMES = 4  # frames of each video of the first portrait shown on the report page


@dataclass(frozen=True)
class InstructEvalSettings:
    """seconds: each video's length; seed: the sampler's noise (the same for every video);
    steps: the sampler's steps; neutral: the instruction every effect is measured against."""

    seconds: float = 3.0
    seed: int = 0
    steps: int = 25
    neutral: str = NEUTRAL


class VideoSource(Protocol):
    """What the protocol needs of a generator (``generation.instructed.InstructedGenerator``)."""

    provenance: dict

    def portrait(self, image: Path): ...

    def frames(self, portrait, text: str, seconds: float): ...

    def describe(self) -> str: ...


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def _std(values: Sequence[float]) -> float | None:
    return float(np.std(values, ddof=1)) if len(values) >= 2 else None


def _strip(frames: np.ndarray) -> list[np.ndarray]:
    picks = np.linspace(0, len(frames) - 1, min(STRIP_FRAMES, len(frames))).round()
    return [frames[int(i)] for i in picks]


def _video(source: VideoSource, portrait, text: str, settings: InstructEvalSettings,
           measure: Callable[[Sequence[np.ndarray]], FaceTrack]
           ) -> tuple[FaceTrack, np.ndarray, object]:
    video = source.frames(portrait, text, settings.seconds)
    return measure(video.frames), video.frames, video.record.get("pose_track")


def measure_portrait(source: VideoSource, image: Path, cases: Sequence[InstructionCase],
                     settings: InstructEvalSettings,
                     measure: Callable[[Sequence[np.ndarray]], FaceTrack],
                     keep_frames: bool = False) -> dict:
    """One portrait's neutral video and one video per instruction, measured: per instruction
    the values, the effect, the neutral's noise and both videos' coverage."""
    portrait = source.portrait(image)
    neutral, neutral_frames, neutral_pose = _video(source, portrait, settings.neutral,
                                                   settings, measure)
    row = {"portrait": str(image), "frames": int(len(neutral.found)),
           "neutral_coverage": neutral.coverage, "cases": [], "strips": {}}
    if keep_frames:
        row["strips"][settings.neutral] = _strip(neutral_frames)
    for case in cases:
        track, frames, pose = _video(source, portrait, case.text, settings, measure)
        chosen = MEASURES[case.measure]
        value, base = chosen.value(track), chosen.value(neutral)
        effect = None if value is None or base is None else value - base
        pose_value = pose_track_value(case.measure, pose)
        pose_base = pose_track_value(case.measure, neutral_pose)
        pose_effect = None if pose_value is None or pose_base is None else (
            pose_value - pose_base)
        row["cases"].append({
            "text": case.text, "measure": case.measure, "value": value, "neutral_value": base,
            "effect": effect, "noise": chosen.noise(neutral), "coverage": track.coverage,
            "frames_without_face": int((~track.found).sum()),
            "expected_sign": None if effect is None or effect == 0 else bool(
                np.sign(effect) == case.sign),
            "pose_track_effect": pose_effect,
            "pose_track_expected_sign": None if not pose_effect else bool(
                np.sign(pose_effect) == case.sign)})
        if keep_frames:
            row["strips"][case.text] = _strip(frames)
    return row


def summarise(rows: list[dict], cases: Sequence[InstructionCase], key: str) -> list[dict]:
    """Per instruction (``key="text"``) or per action (``"action"``): the effect's mean,
    spread and expected-sign share over scored portraits, the neutral noise, the coverage."""
    groups: dict[str, list[InstructionCase]] = {}
    for case in cases:
        groups.setdefault(getattr(case, key), []).append(case)
    summary = []
    for name, members in groups.items():
        texts = {case.text for case in members}
        scored = [c for row in rows for c in row["cases"] if c["text"] in texts]
        effects = [c["effect"] for c in scored if c["effect"] is not None]
        noises = [c["noise"] for c in scored if c["noise"] is not None]
        signs = [c["expected_sign"] for c in scored if c["expected_sign"] is not None]
        mean, noise = _mean(effects), _mean(noises)
        pose_effects = [c["pose_track_effect"] for c in scored
                        if c.get("pose_track_effect") is not None]
        pose_signs = [c["pose_track_expected_sign"] for c in scored
                      if c.get("pose_track_expected_sign") is not None]
        summary.append({
            key: name, "action": members[0].action, "texts": sorted(texts),
            "measure": members[0].measure,
            "unit": MEASURES[members[0].measure].unit, "expected_sign": members[0].sign,
            "videos": len(scored), "scored": len(effects), "effect_mean": mean,
            "effect_std": _std(effects), "expected_sign_share": (
                sum(signs) / len(signs) if signs else None),
            "neutral_noise": noise,
            "coverage": _mean([c["coverage"] for c in scored]),
            "pose_track_effect_mean": _mean(pose_effects),
            "pose_track_sign_share": sum(pose_signs) / len(pose_signs) if pose_signs else None,
            "verdict": _verdict(mean, noise, members[0].sign)})
    return summary


def _verdict(mean: float | None, noise: float | None, sign: int) -> str:
    if mean is None:
        return "not measured: no face found in enough frames"
    if noise is not None and abs(mean) <= noise:
        return "within the neutral video's frame-to-frame noise: no measurable effect"
    return "effect in the expected direction" if np.sign(mean) == sign else (
        "effect AGAINST the expected direction")


def evaluate_instruct(source: VideoSource, portraits: Sequence[Path],
                      cases: Sequence[InstructionCase], settings: InstructEvalSettings,
                      measure: Callable[[Sequence[np.ndarray]], FaceTrack],
                      progress: Callable[[str], None] = lambda _: None) -> dict:
    """The protocol of the module docstring: per-portrait rows, per-instruction and
    per-action summaries, the paper's human ratings beside (not compared), and notes."""
    if not portraits:
        raise ValueError("no portraits to evaluate: give --portraits DIR with face images")
    if not cases:
        raise ValueError("no instructions to evaluate")
    if settings.neutral in {case.text for case in cases}:
        raise ValueError(f"the neutral instruction {settings.neutral!r} is also an instruction "
                         "evaluated: give another --neutral")
    rows, skipped = [], []
    for number, image in enumerate(portraits, 1):
        progress(f"portrait {number}/{len(portraits)}: {Path(image).name}")
        try:
            rows.append(measure_portrait(source, Path(image), cases, settings, measure,
                                         keep_frames=not rows))
        except ValueError as err:  # no face, several faces, unreadable: the portrait, not all
            skipped.append({"portrait": str(image), "reason": str(err)})
            progress(f"skipped {Path(image).name}: {err}")
    if not rows:
        raise ValueError(f"no portrait could be used ({skipped[0]['reason']}): give portraits "
                         "with one clearly visible face each")
    strips = rows[0].pop("strips")
    for row in rows[1:]:
        row.pop("strips")
    result = {
        "kind": "instruct", "settings": asdict(settings),
        "instructions": [asdict(case) for case in cases], "models": source.provenance,
        "generator": source.describe(), "measurer": getattr(measure, "describe", lambda: "")(),
        "portraits": [row["portrait"] for row in rows], "skipped_portraits": skipped,
        "per_portrait": rows, "per_instruction": summarise(rows, cases, "text"),
        "per_action": summarise(rows, cases, "action"),
        "measures": {name: {"label": m.label, "unit": m.unit, "statistic": m.statistic}
                     for name, m in MEASURES.items()},
        "paper": paper_ratings(), "strips": strips,
        "strip_portrait": rows[0]["portrait"]}
    result["notes"] = notes(result)
    return result


def paper_ratings() -> dict:
    ratings = APPENDIX_E_RATINGS
    return {"source": ratings.source, "portraits": ratings.portraits,
            "instructions": ratings.instructions, "raters": ratings.raters,
            "scale": list(ratings.scale), "scores": dict(ratings.scores)}


def notes(result: dict) -> list[str]:
    """What a reader must know to read the figures."""
    out = ["The paper's figures are human ratings (5 raters, 0-5) of 10 portraits x 10 "
           "instructions; ours measure one action each on landmarks and head pose. They are "
           "shown side by side, not comparable one to one.",
           "Effect: the instruction's video value minus the neutral instruction's "
           f"({result['settings']['neutral']!r}), same portrait, seed and length. Noise: the "
           "neutral videos' frame-to-frame standard deviation of the measure; an effect "
           "within it is no measurable effect.",
           "Yaw > 0: the nose toward the image's right, i.e. the subject turning to their own "
           "left (curation's head-pose convention); 'turn left' expects > 0, 'turn right' < 0.",
           "Pose track (turns and nods only): the same effect read on the head-pose track the "
           "model's pose predictor drew for the video (no face detection needed): the "
           "instruction's part in the pose, whatever the VAE renders."]
    weak = [s["action"] for s in result["per_action"] if not s["verdict"].startswith("effect")]
    if weak:
        out.append(f"No measurable effect for: {', '.join(weak)}. An untrained or tiny model "
                   "(or one trained on few instruction clips) is expected to give weak or "
                   "null effects.")
    low = [s["action"] for s in result["per_action"]
           if s["coverage"] is not None and s["coverage"] < 0.5]
    if low:
        out.append(f"A face was found in under half the frames for: {', '.join(low)}; such "
                   "frames are counted in the coverage and not scored.")
    if result["skipped_portraits"]:
        out.append(f"{len(result['skipped_portraits'])} portrait(s) skipped (see "
                   "skipped_portraits).")
    return out


def format_instruct(result: dict) -> str:
    """The per-action table (and the per-instruction one below it) as text."""
    header = (f"{'instruction':<30} {'measure':<11} {'effect':>9} {'spread':>8} "
              f"{'noise':>8} {'sign ok':>8} {'coverage':>9} {'pose trk':>9} "
              f"{'sign ok':>8}  verdict")

    def line(name: str, s: dict) -> str:
        def num(value, fmt=".3f"):
            return "n/a" if value is None else format(value, fmt)

        share, pose_share = (num(s[key], ".0%") for key in ("expected_sign_share",
                                                             "pose_track_sign_share"))
        return (f"{name[:30]:<30} {s['measure']:<11} {num(s['effect_mean']):>9} "
                f"{num(s['effect_std']):>8} {num(s['neutral_noise']):>8} {share:>8} "
                f"{num(s['coverage'], '.0%'):>9} {num(s['pose_track_effect_mean']):>9} "
                f"{pose_share:>8}  {s['verdict']}")

    settings = result["settings"]
    paper = result["paper"]["scores"]
    lines = [f"gaia eval instruct: {len(result['portraits'])} portraits x "
             f"{len(result['per_instruction'])} instructions, {settings['seconds']:g} s each, "
             f"seed {settings['seed']}, {settings['steps']} steps; neutral "
             f"{settings['neutral']!r}", "", "per action (phrasings pooled)", header]
    lines += [line(s["action"], s) for s in result["per_action"]]
    lines += ["", "per instruction", header]
    lines += [line(s["text"], s) for s in result["per_instruction"]]
    lines += ["", "the paper's HUMAN ratings (0-5; not comparable one to one): " + ", ".join(
        f"{name} {value}" for name, value in paper.items())]
    lines += ["", *[f"note: {n}" for n in result["notes"]]]
    return "\n".join(lines)
