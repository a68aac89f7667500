"""Speech-to-motion metrics (paper, section 5): MSI (StableFace's definition), the lip-sync
proxy and the pose error.

MSI is checked against hand-computed values and on a real curated landmark track. The demo sample has no clip whose mouth moves
with its audio (the astronaut is a still photo under espeak speech; carphone has no audio), so
the lip-sync test animates the astronaut's jaw from the speech's loudness, measures the video
with the curation tracker and checks the proxy finds the true audio over a wrong one.
"""

from __future__ import annotations

import io
import json
import math
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import soundfile

from gaia.evaluation.s2m_metrics import (
    lip_sync_proxy,
    pose_error,
    speech_envelope,
    summarise,
)
from gaia.evaluation.stability import StableFaceMsi, stableface_msi
from gaia.schemas.shards import load_npy

FPS = 25
RATE = 16000


def shard_samples(folder: Path) -> dict[str, dict[str, bytes]]:
    samples: dict[str, dict[str, bytes]] = {}
    for shard in sorted(folder.glob("*.tar")):
        with tarfile.open(shard) as archive:
            for member in archive.getmembers():
                key, name = member.name.split(".", 1)
                samples.setdefault(key, {})[name] = archive.extractfile(member).read()
    return samples


@pytest.fixture(scope="module")
def talking_sample(sample_shards) -> dict[str, bytes]:
    """The curated shard of the demo's astronaut_talking clip (its mouth moves with speech)."""
    return sample_of(sample_shards, "talk/astronaut_talking.mp4")


def sample_of(sample_shards, clip: str) -> dict[str, bytes]:
    for sample in shard_samples(sample_shards).values():
        if json.loads(sample["json"])["source_path"].endswith(clip):
            return sample
    raise AssertionError(f"the demo sample's {clip} has no shard")


# --- motion stability index ------------------------------------------------------------


def _still_face(frames: int) -> np.ndarray:
    """A face of 68 points whose mouth is 32 px wide (corners 48 and 54), still."""
    points = np.random.default_rng(1).uniform(0, 100, (68, 2))
    points[48], points[54] = (30.0, 60.0), (62.0, 60.0)
    return np.repeat(points[None], frames, axis=0)


def test_msi_of_a_known_jitter_is_stablefaces_value():
    # 20 frames: 18 accelerations, windows at 0 and 6 (12 long) and 12 (6 long): all even.
    track = _still_face(20)
    assert stableface_msi(track) == pytest.approx(1 / 0.5)  # still: the most there is
    amplitude = 0.25  # px of x on every lip point but the corners, alternating each frame
    jitter = amplitude * (-1.0) ** np.arange(20)
    jittered = track.copy()
    lips = [p for p in range(48, 68) if p not in (48, 54)]
    jittered[:, lips, 0] += jitter[:, None]
    # Mouth 32 px -> 64 units: amplitude 0.5 units; acceleration 4 x 0.5 = +-2, variance 4.
    # x: 18 lip points at 1/(4 + 0.5), the 2 corners at 1/0.5; y: all at 1/0.5.
    x = (18 / 4.5 + 2 / 0.5) / 20
    expected = (x + 1 / 0.5) / 2
    assert stableface_msi(jittered) == pytest.approx(expected, rel=1e-12)
    # Normalised by the mouth width: the same motion at twice the size scores the same.
    assert stableface_msi(2.0 * jittered + 17.0) == pytest.approx(expected, rel=1e-12)
    # A gap (no face) splits the track; each stretch is read on its own.
    gapped = jittered.copy()
    gapped[10] = np.nan
    assert 0 < stableface_msi(gapped) < 2


def test_msi_drops_with_jitter_on_a_real_track(talking_sample):
    track = load_npy(talking_sample["landmarks.npy"]).astype(np.float64)
    jittered = track + np.random.default_rng(0).normal(0.0, 1.0, track.shape)
    clean = stableface_msi(track)
    assert 0 < clean <= 2
    assert stableface_msi(jittered) < 0.8 * clean
    assert stableface_msi(track, StableFaceMsi(window=6)) != clean


def test_msi_needs_a_few_frames_of_a_track():
    with pytest.raises(ValueError, match="3 or more consecutive"):
        stableface_msi(_still_face(2))
    with pytest.raises(ValueError, match="68, 2"):
        stableface_msi(np.zeros((10, 5, 2)))
    with pytest.raises(ValueError, match="mouth corners"):
        stableface_msi(np.zeros((10, 68, 2)))


# --- lip-sync proxy ----------------------------------------------------------------------


def open_jaw(image: np.ndarray, points: np.ndarray, amount: float) -> np.ndarray:
    """``image`` with the lower lip and chin pulled down by ``amount`` x 0.45 mouth widths and
    the gap painted as a dark open mouth."""
    width = float(np.linalg.norm(points[54] - points[48]))
    drop = amount * 0.45 * width
    lip_line = (points[[61, 62, 63]].mean(0)[1] + points[[65, 66, 67]].mean(0)[1]) / 2
    centre_x = (points[48, 0] + points[54, 0]) / 2
    height, wide = image.shape[:2]
    ys, xs = np.mgrid[0:height, 0:wide].astype(np.float32)
    below_lips = np.clip((ys - lip_line) / 2.0 + 0.5, 0.0, 1.0)
    above_neck = np.exp(-0.5 * (np.maximum(ys - points[8, 1], 0.0) / (0.3 * width)) ** 2)
    near_mouth = np.exp(-0.5 * ((xs - centre_x) / (0.7 * width)) ** 2)
    shift = drop * below_lips * above_neck * near_mouth
    out = cv2.remap(image, xs, ys - shift, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    if drop < 0.5:
        return out
    hole = np.zeros((height, wide), np.float32)
    cv2.ellipse(hole, (round(centre_x), round(lip_line + drop / 2)),
                (round(0.33 * width), max(1, round(drop / 2))), 0, 0, 360, 1.0, -1)
    hole = cv2.GaussianBlur(hole, (5, 5), 1.0)[..., None]
    return (out * (1 - hole) + np.array([60, 25, 30]) * hole).astype(np.uint8)


@pytest.fixture(scope="module")
def lip_synced(tmp_path_factory) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks (via the curation tracker) of the astronaut speaking, and the speech."""
    from gaia.generation.reenact import driving_landmarks
    from gaia.pipeline.face.detect import primary_face_landmarks
    from gaia.pipeline.measure.config import MeasureConfig
    from gaia.pipeline.media.video_writer import write_video
    from gaia.samples.build import portrait
    from gaia.samples.speech import speech_of_duration

    face = portrait()
    points = primary_face_landmarks(face)
    audio = speech_of_duration(4.0, RATE, seed=11)
    hop = RATE // FPS
    # Linear loudness drives the jaw (the proxy uses log loudness, so it is not a tautology).
    loudness = np.sqrt((audio[: 100 * hop].reshape(100, hop) ** 2).mean(axis=1))
    amount = np.clip(loudness / np.percentile(loudness, 90), 0.0, 1.0)
    frames = (open_jaw(face, points, float(a)) for a in amount)
    path = write_video(tmp_path_factory.mktemp("lipsync") / "speaking.mp4", frames, FPS,
                       audio=audio, audio_rate=RATE)
    track, fps, found = driving_landmarks(path, MeasureConfig())
    assert fps == FPS and found.all()
    return track, audio


def test_lip_sync_prefers_the_true_audio(lip_synced):
    from gaia.samples.speech import speech_of_duration

    track, audio = lip_synced
    true = lip_sync_proxy(track, audio)
    reversed_audio = lip_sync_proxy(track, audio[::-1].copy())
    other = lip_sync_proxy(track, speech_of_duration(4.0, RATE, seed=12))
    assert true["correlation"] > 0.6 and abs(true["lag_frames"]) <= 1
    # Measured: 0.75 true, 0.41 reversed (the pauses between sentences still line up in
    # part), 0.12 for other speech.
    assert true["correlation"] > reversed_audio["correlation"] + 0.2
    assert true["correlation"] > other["correlation"] + 0.4


def test_the_proxy_tells_a_talking_mouth_from_a_listening_face(talking_sample, sample_shards):
    """The demo's talking astronaut opens its mouth with the speech; the listening one is a
    still photo under speech, so its mouth ignores the audio."""
    track = load_npy(talking_sample["landmarks.npy"])
    audio, rate = soundfile.read(io.BytesIO(talking_sample["flac"]), dtype="float32")
    assert rate == RATE
    assert lip_sync_proxy(track, audio)["correlation"] > 0.5
    listening = sample_of(sample_shards, "filters/astronaut_listening.mp4")
    audio, _ = soundfile.read(io.BytesIO(listening["flac"]), dtype="float32")
    still = lip_sync_proxy(load_npy(listening["landmarks.npy"]), audio)["correlation"]
    assert abs(still) < 0.3


def mouth_track(opening: np.ndarray) -> np.ndarray:
    """Landmarks whose ``mouth_open`` is exactly ``opening``: a 10 px wide mouth."""
    track = np.zeros((len(opening), 68, 2))
    track[:, 64, 0] = 10.0
    for top, bottom, x in ((61, 67, 3.0), (62, 66, 5.0), (63, 65, 7.0)):
        track[:, [top, bottom], 0] = x
        track[:, bottom, 1] = 10.0 * opening
    return track


def test_lip_sync_lag_sign_and_flat_signals():
    rng = np.random.default_rng(3)
    level = rng.uniform(0.05, 1.0, 60)
    audio = (rng.standard_normal(60 * 640) * np.repeat(level, 640)).astype(np.float32)
    envelope = speech_envelope(audio, 60)
    assert np.allclose(envelope, np.log10(level), atol=0.1)
    late = np.concatenate([[envelope[0]], envelope[:-1]]) - envelope.min() + 0.1
    result = lip_sync_proxy(mouth_track(late), audio)
    assert result["lag_frames"] == 1 and result["correlation"] > 0.99  # the mouth is late
    early = np.concatenate([envelope[1:], [envelope[-1]]]) - envelope.min() + 0.1
    assert lip_sync_proxy(mouth_track(early), audio)["lag_frames"] == -1
    flat = lip_sync_proxy(mouth_track(np.full(60, 0.2)), audio)
    assert flat["correlation"] == 0.0 and "flat" in flat["note"]
    with pytest.raises(ValueError, match="mono"):
        lip_sync_proxy(mouth_track(late), np.zeros((100, 2)))


# --- pose error and summaries ------------------------------------------------------------


def test_pose_error_per_axis_wraps_and_skips_missing():
    target = np.array([[1.0, 2.0, 3.0], [3.0, -2.0, -1.0], [np.nan, 0.0, 0.0]])
    error = pose_error(np.zeros((3, 3)), target)
    assert error == pytest.approx({"pitch": 2.0, "yaw": 2.0, "roll": 2.0, "overall": 2.0})
    wrapped = pose_error(np.array([[0.0, 179.0, 0.0]]), np.array([[0.0, -179.0, 0.0]]))
    assert wrapped["yaw"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="frames, 3"):
        pose_error(np.zeros((4, 3)), np.zeros((5, 3)))


def test_summarise_skips_non_finite():
    assert summarise([1.0, 3.0, math.nan]) == {"mean": 2.0, "std": 1.0, "n": 2}
    assert summarise([])["n"] == 0
