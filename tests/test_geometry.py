"""Frontal angle, jitter and mouth opening on projected 3D landmarks; PnP pose round trips."""

import numpy as np
import pytest

from gaia.filters import geometry
from gaia.pipeline.face.head_pose import (
    FACE_MODEL_INDICES,
    euler_from_matrix,
    head_pose,
    project,
    rotation_matrix,
)

WIDTH, HEIGHT = 640, 480
DISTANCE = np.array([0.0, 0.0, 650.0])


def projected_landmarks(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """A (68, 2) landmark array whose model points are the generic face seen at this pose."""
    points = np.full((68, 2), np.nan, np.float32)
    rot = rotation_matrix(pitch, yaw, roll)
    points[FACE_MODEL_INDICES] = project(rot, DISTANCE, WIDTH, HEIGHT)
    return points


def test_euler_round_trip():
    for angles in [(0, 0, 0), (12, -25, 7), (-30, 40, -15), (5, 60, 20)]:
        assert np.allclose(euler_from_matrix(rotation_matrix(*angles)), angles, atol=1e-6)


def test_frontal_face_sums_to_180():
    angle = geometry.frontal_angle(projected_landmarks(0, 0, 0)[None])[0]
    assert angle == pytest.approx(180.0, abs=1e-3)


def test_frontal_angle_moves_monotonically_with_yaw():
    yaws = np.arange(-60, 61, 5)
    angles = geometry.frontal_angle(np.stack([projected_landmarks(0, y, 0) for y in yaws]))
    assert np.all(np.diff(angles) > 0), angles
    # Symmetric about the frontal pose, and far from 180 at 45 degrees of yaw.
    assert np.allclose(angles - 180, -(angles[::-1] - 180), atol=1e-3)
    assert abs(angles[list(yaws).index(45)] - 180) > 25


def test_roll_shifts_frontal_angle_by_twice_the_roll():
    angle = geometry.frontal_angle(projected_landmarks(0, 0, 10)[None])[0]
    # Roll > 0 turns the face clockwise in the image: both angles drop by the roll.
    assert angle == pytest.approx(160.0, abs=0.5)


@pytest.mark.parametrize("pose", [(0, 0, 0), (10, -20, 5), (-15, 30, -10), (20, 10, 15),
                                  (-5, -45, 0)])
def test_pose_recovered_from_noisy_projected_landmarks(pose):
    rng = np.random.default_rng(0)
    points = projected_landmarks(*pose)
    points[FACE_MODEL_INDICES] += rng.normal(0, 0.7, (len(FACE_MODEL_INDICES), 2))
    recovered = head_pose(points, WIDTH, HEIGHT)
    assert np.allclose(recovered, pose, atol=3.0), (recovered, pose)


def test_pose_is_nan_without_landmarks():
    assert np.isnan(head_pose(np.full((68, 2), np.nan), WIDTH, HEIGHT)).all()


def test_landmark_jitter_is_displacement_over_interocular():
    base = projected_landmarks(0, 0, 0)
    base[np.isnan(base)] = 0.0
    span = np.linalg.norm(base[45] - base[36])
    moved = base + np.array([span * 0.1, 0.0], np.float32)
    jitter = geometry.landmark_jitter(np.stack([base, moved, moved]))
    assert np.isnan(jitter[0])  # no previous frame
    assert jitter[1] == pytest.approx(0.1, rel=1e-4)
    assert jitter[2] == pytest.approx(0.0, abs=1e-6)
    # The previous chunk's last frame is carried in.
    carried = geometry.landmark_jitter(moved[None], previous=base)
    assert carried[0] == pytest.approx(0.1, rel=1e-4)


def test_box_jitter_counts_shift_and_size_change():
    boxes = np.array([[0, 0, 100, 100], [10, 0, 110, 100], [10, 0, 130, 120]], np.float32)
    jitter = geometry.box_jitter(boxes)
    assert np.isnan(jitter[0])
    assert jitter[1] == pytest.approx(0.10, rel=1e-4)  # centre moved 10 px on a 100 px box
    assert jitter[2] == pytest.approx(0.20, rel=1e-4)  # grew 20 px (and moved 14 px)


def test_missing_face_gives_nan_measures():
    frames = np.stack([projected_landmarks(0, 0, 0), np.full((68, 2), np.nan, np.float32)])
    assert np.isnan(geometry.frontal_angle(frames)[1])
    assert np.isnan(geometry.landmark_jitter(frames)[1])


def test_mouth_open_grows_with_lip_gap():
    mouth = np.zeros((2, 68, 2), np.float32)
    mouth[:, 60], mouth[:, 64] = (0, 0), (40, 0)
    for i, gap in enumerate((0.0, 20.0)):
        for top, bottom in zip(geometry.INNER_LIP_TOP, geometry.INNER_LIP_BOTTOM, strict=True):
            mouth[i, top] = (10 + top - 61, -gap / 2)
            mouth[i, bottom] = (10 + top - 61, gap / 2)
    opened = geometry.mouth_open(mouth)
    assert opened[0] == pytest.approx(0.0)
    assert opened[1] == pytest.approx(0.5)
