"""``gaia eval instruct``: instruction following measured on landmarks and head pose (paper,
appendix E rates it by people only).

The measures are checked on real faces with a known effect (a real man turned to his right and
the same landmarks mirrored, a real mouth opened by ``samples.talking``, mouth corners moved
apart), the protocol on real face frames whose effect is known, and the whole verb on the tiny
instruct model of ``conftest`` (a random VAE: its frames hold no face, which must be counted
and said, not scored).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from gaia.evaluation.instruct.measures import MEASURES, FaceTrack, FrameMeasurer

# iBUG 68-point indices of the mirror image: point i of a mirrored face is point MIRROR[i].
MIRROR = np.array([*range(16, -1, -1), *range(26, 16, -1), 27, 28, 29, 30,
                   *range(35, 30, -1), 45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40,
                   *range(54, 47, -1), *range(59, 54, -1), *range(64, 59, -1),
                   *range(67, 64, -1)])


def _mirrored(points: np.ndarray, width: int) -> np.ndarray:
    flipped = points.copy()
    flipped[..., 0] = width - 1 - flipped[..., 0]
    return flipped[..., MIRROR, :]


def _track(points: list[np.ndarray], width: int) -> FaceTrack:
    from gaia.pipeline.face.head_pose import head_pose

    landmarks = np.stack(points).astype(np.float32)
    pose = np.array([head_pose(p, width, width) for p in landmarks], np.float32)
    return FaceTrack(landmarks, pose)


@pytest.fixture(scope="module")
def measurer() -> FrameMeasurer:
    return FrameMeasurer()


@pytest.fixture(scope="module")
def faces(measurer):
    """Curation's landmarks of the frontal astronaut and of the real man turned 45 degrees to
    his right (``media_truth``: his nose points to the image's left), both 320 px."""
    from gaia.samples.build import portrait, turned_man

    frontal, turned = measurer([portrait()] * 3), measurer([turned_man()] * 3)
    assert frontal.found.all() and turned.found.all()
    return frontal.landmarks[0], turned.landmarks[0]


def test_yaw_sign_is_curations_and_turn_left_expects_it(faces):
    from gaia.evaluation.instruct.cases import DEFAULT_CASES

    frontal, turned = faces
    to_his_right = _track([turned], 320).pose[0, 1]
    to_his_left = _track([_mirrored(turned, 320)], 320).pose[0, 1]
    assert to_his_right < -15 and to_his_left > 15  # nose to the image's left: yaw < 0
    assert to_his_left == pytest.approx(-to_his_right, abs=6)
    # A neutral video that stays frontal; instructed ones that turn halfway through.
    neutral = _track([frontal] * 10, 320)
    left = _track([frontal] * 5 + [_mirrored(turned, 320)] * 5, 320)
    right = _track([frontal] * 5 + [turned] * 5, 320)
    yaw = MEASURES["yaw"]
    effects = {"turn left": yaw.value(left) - yaw.value(neutral),
               "turn right": yaw.value(right) - yaw.value(neutral)}
    assert effects["turn left"] > 15 and effects["turn right"] < -15
    for case in DEFAULT_CASES:
        if case.measure == "yaw":
            assert np.sign(effects[case.action]) == case.sign, case
    assert yaw.noise(neutral) == pytest.approx(0.0, abs=1e-6)  # a still face: no noise


def test_smile_and_mouth_measures_on_a_real_mouth(faces, measurer):
    from gaia.pipeline.face.detect import primary_face_landmarks
    from gaia.samples.build import portrait
    from gaia.samples.talking import open_mouth

    frontal = faces[0]
    wider = frontal.copy()
    centre = (frontal[48] + frontal[54]) / 2
    wider[[48, 54]] = centre + 1.2 * (frontal[[48, 54]] - centre)  # corners 20 % further apart
    smile = MEASURES["smile"]
    base = smile.value(_track([frontal] * 4, 320))
    grin = smile.value(_track([frontal] * 2 + [wider] * 2, 320))
    assert grin - base == pytest.approx(0.2 * base, rel=0.02)
    # A real mouth opened on the photo, measured on the frames as curation measures them.
    image = portrait()
    points = primary_face_landmarks(image)
    closed = measurer([image] * 6)
    opened = measurer([image] * 2 + [open_mouth(image, points, a) for a in (0.5, 1, 1, 1)])
    gap = MEASURES["mouth_open"]
    assert closed.coverage == opened.coverage == 1.0
    assert gap.value(opened) - gap.value(closed) > 0.025  # about 0.04 of the eye span
    assert gap.value(opened) - gap.value(closed) > 5 * gap.noise(closed)


def test_pitch_range_and_frames_without_a_face(faces):
    frontal = faces[0]
    count = 50
    nod = 10 * np.sin(np.linspace(0, 2 * np.pi, count))
    pose = np.zeros((count, 3), np.float32)
    pose[:, 0] = nod
    landmarks = np.repeat(frontal[None], count, axis=0)
    landmarks[::10] = np.nan  # five frames where no face was found
    pose[::10] = np.nan
    track = FaceTrack(landmarks, pose)
    assert track.coverage == pytest.approx(0.9)
    assert MEASURES["pitch_range"].value(track) == pytest.approx(2 * 10 * 0.95, abs=1.2)
    empty = FaceTrack(np.full((6, 68, 2), np.nan, np.float32), np.full((6, 3), np.nan))
    assert empty.coverage == 0.0
    assert all(m.value(empty) is None and m.noise(empty) is None for m in MEASURES.values())


@dataclass(frozen=True)
class _Video:
    frames: np.ndarray
    record: dict


class RealFaces:
    """A stand-in generator with a known effect: the neutral video is the still portrait, "open
    your mouth" opens its real mouth halfway through, "please smile" is the neutral video
    again (no effect), and "turn left" is grey frames (no face at all) whose pose track turns
    12 degrees left (yaw > 0) over its second half, where every other track stays at 0."""

    provenance = {"generator": "real faces"}

    def describe(self) -> str:
        return "real faces (test)"

    def portrait(self, image: Path):
        from gaia.common.crop import CropConfig
        from gaia.generation.reenact import portrait_face

        return portrait_face(image, CropConfig(), 128)  # as the generator cuts it

    def frames(self, portrait, text: str, seconds: float) -> _Video:
        from gaia.samples.talking import open_mouth

        image, points = portrait
        count = int(round(seconds * 25))
        pose = np.zeros((count, 3))
        if text == "turn left":
            pose[count // 2:, 1] = 12.0
            return _Video(np.full((count, *image.shape), 128, np.uint8),
                          {"pose_track": pose.tolist()})
        if text != "open your mouth":
            return _Video(np.stack([image] * count), {"pose_track": pose.tolist()})
        frames = [image] * (count // 2) + [open_mouth(image, points, 1.0)] * (count - count // 2)
        return _Video(np.stack(frames), {"pose_track": pose.tolist()})


def test_the_protocol_finds_a_known_effect_on_real_faces(measurer, tmp_path):
    import cv2

    from gaia.evaluation.instruct.cases import InstructionCase
    from gaia.evaluation.instruct.protocol import (
        InstructEvalSettings,
        evaluate_instruct,
        format_instruct,
    )
    from gaia.samples.portraits import write_portraits

    portraits = write_portraits(tmp_path, count=2)  # the astronaut and a young woman
    cv2.imwrite(str(tmp_path / "no-face.png"), np.full((200, 200, 3), 128, np.uint8))
    cases = (InstructionCase("open your mouth", "open the mouth", "mouth_open", 1),
             InstructionCase("please smile", "smile", "smile", 1),
             InstructionCase("turn left", "turn left", "yaw", 1))
    result = evaluate_instruct(RealFaces(), [*portraits, tmp_path / "no-face.png"], cases,
                               InstructEvalSettings(seconds=0.4), measurer)
    assert len(result["portraits"]) == 2 and len(result["skipped_portraits"]) == 1
    mouth, smile, turn = result["per_action"]
    assert mouth["scored"] == 2 and mouth["expected_sign_share"] == 1.0
    assert mouth["effect_mean"] > 0.05 and mouth["verdict"] == "effect in the expected direction"
    assert mouth["coverage"] == 1.0
    assert smile["effect_mean"] == pytest.approx(0.0, abs=1e-9)
    assert smile["verdict"].startswith("within the neutral video's")
    # Grey frames: every one counted, none scored, and said.
    assert turn["coverage"] == 0.0 and turn["scored"] == 0 and turn["effect_mean"] is None
    assert turn["verdict"].startswith("not measured")
    # The model's own pose track still reads the turn, and only head-pose measures have one.
    assert turn["pose_track_effect_mean"] == pytest.approx(12.0)
    assert turn["pose_track_sign_share"] == 1.0
    assert mouth["pose_track_effect_mean"] is None and smile["pose_track_effect_mean"] is None
    assert result["per_portrait"][0]["cases"][2]["frames_without_face"] == 10
    assert any("under half the frames for: turn left" in n for n in result["notes"])
    assert set(result["strips"]) == {"look at the camera", "open your mouth", "please smile",
                                     "turn left"}
    text = format_instruct(result)
    assert "open the mouth" in text and "4.21" in text and "not comparable" in text


def _portraits(tmp_path: Path, count: int) -> Path:
    from gaia.samples.portraits import write_portraits

    write_portraits(tmp_path / "portraits", count=count)
    return tmp_path / "portraits"


def test_eval_instruct_on_the_tiny_model(instruct_run, vae_checkpoint, text_encoder, tmp_path,
                                         capsys):
    from gaia.cli import main
    from tests.test_vae_eval import render_in_chromium

    instructions = tmp_path / "instructions.yaml"
    instructions.write_text("- {text: turn your head to the left, action: turn left, "
                            "measure: yaw, sign: 1}\n- {text: please smile, measure: smile, "
                            "sign: 1}\n")
    report = tmp_path / "eval" / "instruct.html"
    assert main(["eval", "instruct", "--vae", str(vae_checkpoint), "--instruct",
                 str(instruct_run), "--text-encoder", str(text_encoder), "--portraits",
                 str(_portraits(tmp_path, 2)), "--instructions", str(instructions),
                 "--seconds", "0.4", "--steps", "2", "--out-json", str(tmp_path / "r.json"),
                 "--report", str(report)]) == 0
    printed = capsys.readouterr().out
    data = json.loads(report.with_suffix(".json").read_text())
    assert json.loads((tmp_path / "r.json").read_text()) == data
    assert [s["text"] for s in data["per_instruction"]] == ["turn your head to the left",
                                                           "please smile"]
    assert data["paper"]["scores"] == {"accuracy of instruction following": 4.21,
                                       "video quality": 4.41, "identity preservation": 4.64}
    assert data["models"]["instruct"]["config"] == "instruct-tiny"
    for row in data["per_portrait"]:
        for case in row["cases"]:  # every frame is counted: with a face or without
            assert case["frames_without_face"] == round((1 - case["coverage"]) * 10)
    # The random VAE draws no face: nothing is scored, and the output says so.
    for summary in data["per_action"]:
        assert summary["videos"] == 2 and summary["coverage"] == 0.0
        assert summary["scored"] == 0 and summary["effect_mean"] is None
        assert summary["verdict"].startswith("not measured")
    turn, smile = data["per_action"]  # the pose track reads a turn whatever the VAE draws
    assert turn["pose_track_effect_mean"] is not None and smile["pose_track_effect_mean"] is None
    assert any("under half the frames for: turn left, please smile" in n
               for n in data["notes"])
    assert any("No measurable effect for: turn left, please smile" in n for n in data["notes"])
    assert "turn left" in printed and "HUMAN ratings" in printed
    dom, _ = render_in_chromium(report, tmp_path)
    assert 'id="paper-ratings"' in dom and "4.64" in dom and "not comparable one to one" in dom
    assert dom.count("<tr") >= 2 + 3 + 2  # actions, the paper's scores, instructions
    assert int(__import__("re").search(r'data-images-decoded="(\d+)"', dom).group(1)) == 3 * 4


def test_eval_instruct_says_what_is_wrong(instruct_run, s2m_run, vae_checkpoint, text_encoder,
                                          tmp_path, capsys):
    from gaia.cli import main

    portraits = _portraits(tmp_path, 1)
    base = ["eval", "instruct", "--vae", str(vae_checkpoint), "--portraits", str(portraits),
            "--seconds", "0.2", "--steps", "1"]
    cases = [
        ([*base, "--instruct", str(instruct_run)], "--text-encoder DIR"),
        ([*base, "--instruct", str(s2m_run), "--text-encoder", str(text_encoder)],
         "not a text-instructed model"),
        ([*base, "--instruct", str(instruct_run), "--text-encoder", str(text_encoder),
          "--portraits", str(tmp_path)], "holds no images"),
        ([*base, "--instruct", str(instruct_run), "--text-encoder", str(text_encoder),
          "--instructions", str(tmp_path / "missing.yaml")], "cannot read --instructions"),
    ]
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {text: nod, measure: wobble, sign: 1}\n")
    cases.append(([*base, "--instruct", str(instruct_run), "--text-encoder",
                   str(text_encoder), "--instructions", str(bad)], "measure 'wobble'"))
    for argv, message in cases:
        assert main(argv) == 2, message
        assert message in capsys.readouterr().err
