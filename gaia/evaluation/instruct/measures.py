"""What ``gaia eval instruct`` measures on a generated video (paper, appendix E rates
instruction following by humans only; these are automatic stand-ins for the instructions with a
measurable effect).

Every frame is measured as curation measures a video (``pipeline.measure``): the face tracker
of the configured backend (dlib's HOG boxes and 68-point predictor by default) steps through
the frames in order, and ``pipeline.face.head_pose`` fits the pose to the 68 points with the
focal length set to the frame's width. Frames smaller than ``work_side`` are enlarged first
(cubic), as the evaluation's other landmark readers do (``generation.reenact.CropLandmarks``):
a 64 px model frame holds a face under curation's smallest (``min_face_px``). A frame where no
face is found is counted, never scored.

Per-frame series (landmarks are the iBUG 68 points; image x right, y down):

- ``yaw``: degrees, curation's convention: > 0 when the nose turns toward the IMAGE's right.
  In an unmirrored camera view that is the subject turning to THEIR OWN left, so "turn your
  head to the left" (said to the subject, as the paper's CC v1 instructions are) expects a
  positive change, "to the right" a negative one.
- ``pitch``: degrees, > 0 when the head looks down.
- ``smile``: the mouth-corner distance (points 48 and 54) over the inter-ocular distance
  (outer eye corners 36 and 45, ``filters.geometry.interocular``).
- ``mouth_open``: the inner-lip gap (points 62 and 66) over the inter-ocular distance.

Per video, a series becomes one value by its measure's statistic: ``late_mean`` (the mean over
the scored frames of the video's second half: where the head or face ends up), ``range`` (the
5th to 95th percentile of all scored frames: a nod goes down and up again) or ``peak`` (the
90th percentile: a mouth opened at some point).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from gaia.filters.geometry import interocular
from gaia.pipeline.face.head_pose import head_pose
from gaia.pipeline.measure.config import MeasureConfig
from gaia.pipeline.measure.models import new_tracker

MOUTH_LEFT, MOUTH_RIGHT = 48, 54  # outer mouth corners
INNER_LIP_TOP, INNER_LIP_BOTTOM = 62, 66  # the inner lips' middle points
WORK_SIDE = 256
STATISTICS = ("late_mean", "range", "peak")


@dataclass(frozen=True)
class FaceTrack:
    """One video measured: ``landmarks`` ``(T, 68, 2)`` in pixels of the measured frames and
    ``pose`` ``(T, 3)`` pitch, yaw, roll degrees, both NaN where no face was found."""

    landmarks: np.ndarray
    pose: np.ndarray

    @property
    def found(self) -> np.ndarray:
        return np.isfinite(self.landmarks[:, 0, 0]) & np.isfinite(self.pose).all(axis=1)

    @property
    def coverage(self) -> float:
        """The share of frames with a face measured."""
        return float(self.found.mean()) if len(self.found) else 0.0


def yaw(track: FaceTrack) -> np.ndarray:
    return track.pose[:, 1].astype(np.float64)


def pitch(track: FaceTrack) -> np.ndarray:
    return track.pose[:, 0].astype(np.float64)


def _over_interocular(track: FaceTrack, a: int, b: int) -> np.ndarray:
    points = track.landmarks.astype(np.float64)
    span = np.linalg.norm(points[:, b] - points[:, a], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return span / interocular(points)


def smile(track: FaceTrack) -> np.ndarray:
    """Mouth-corner distance (48-54) over the inter-ocular distance, per frame."""
    return _over_interocular(track, MOUTH_LEFT, MOUTH_RIGHT)


def mouth_open(track: FaceTrack) -> np.ndarray:
    """Inner-lip gap (62-66) over the inter-ocular distance, per frame."""
    return _over_interocular(track, INNER_LIP_TOP, INNER_LIP_BOTTOM)


@dataclass(frozen=True)
class Measure:
    """A per-frame series of a measured video and the statistic that makes it one value."""

    name: str
    label: str
    unit: str
    series: Callable[[FaceTrack], np.ndarray]
    statistic: str

    def value(self, track: FaceTrack) -> float | None:
        """The video's value (``video_value``), None when too few frames were scored."""
        return video_value(self.series(track), self.statistic)

    def noise(self, track: FaceTrack) -> float | None:
        """The standard deviation of the series over the scored frames: the measure's own
        frame-to-frame spread in a video (the neutral one's tells what an effect must pass)."""
        values = self.series(track)
        values = values[np.isfinite(values)]
        return float(values.std()) if len(values) >= 2 else None


MEASURES: dict[str, Measure] = {m.name: m for m in (
    Measure("yaw", "yaw, second half (degrees; > 0: nose to the image's right)", "deg", yaw,
            "late_mean"),
    Measure("pitch_range", "pitch range, 5th-95th percentile (degrees)", "deg", pitch,
            "range"),
    Measure("smile", "mouth-corner distance / inter-ocular, second half", "IOD", smile,
            "late_mean"),
    Measure("mouth_open", "inner-lip gap / inter-ocular, 90th percentile", "IOD", mouth_open,
            "peak"),
)}


def video_value(series: np.ndarray, statistic: str) -> float | None:
    """One value of a per-frame series (NaN: no face) by ``statistic`` (module docstring);
    None when no frame (``late_mean``: none of the second half) or, for ``range``, fewer than
    three frames were scored."""
    values = np.asarray(series, np.float64)
    if statistic == "late_mean":
        late = values[len(values) // 2:]
        late = late[np.isfinite(late)]
        return float(late.mean()) if len(late) else None
    scored = values[np.isfinite(values)]
    if statistic == "range":
        return float(np.percentile(scored, 95) - np.percentile(scored, 5)) if len(
            scored) >= 3 else None
    if statistic == "peak":
        return float(np.percentile(scored, 90)) if len(scored) else None
    raise ValueError(f"unknown statistic {statistic!r}: one of {', '.join(STATISTICS)}")


def enlarged(rgb: np.ndarray, side: int) -> np.ndarray:
    """``rgb`` enlarged (cubic) so its shorter side is at least ``side``; as is otherwise."""
    height, width = rgb.shape[:2]
    scale = side / min(height, width)
    if scale <= 1.0:
        return rgb
    return cv2.resize(rgb, (round(width * scale), round(height * scale)),
                      interpolation=cv2.INTER_CUBIC)


class FrameMeasurer:
    """Curation's face stack over the frames of one video at a time (module docstring)."""

    def __init__(self, config: MeasureConfig | None = None, work_side: int = WORK_SIDE) -> None:
        self.config = config or MeasureConfig()
        self.work_side = work_side
        self._landmarker = None

    def describe(self) -> str:
        return (f"curation's face tracker ({self.config.backend} backend, "
                f"{self.config.landmark_model} landmarks) and PnP head pose, frames enlarged "
                f"to {self.work_side} px")

    def __call__(self, frames: Sequence[np.ndarray]) -> FaceTrack:
        """``frames`` (uint8 RGB, one video, in order) measured: a new track per video."""
        tracker = new_tracker(self.config, landmarker=self._landmarker)
        self._landmarker = tracker.landmarker  # loaded once, reused by every video
        count = len(frames)
        landmarks = np.full((count, 68, 2), np.nan, np.float32)
        pose = np.full((count, 3), np.nan, np.float32)
        for index, frame in enumerate(frames):
            rgb = enlarged(np.ascontiguousarray(frame), self.work_side)
            gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
            try:
                fix = tracker.step(rgb, gray)
            except (RuntimeError, ValueError):  # as measure: a refused frame costs the frame
                tracker.forget()
                continue
            if fix is None:
                continue
            landmarks[index] = fix.points
            pose[index] = head_pose(fix.points, rgb.shape[1], rgb.shape[0])
        return FaceTrack(landmarks, pose)


# The head-pose measures read on the model's own pose track as well (pitch, yaw, roll in
# degrees, curation's convention): what the instruct model's pose predictor asked the VAE to
# show. It needs no face found in the decoded frames, so it still reads a model whose VAE draws
# faces too blurry to measure, and it tells the pose predictor's part from the rendering's.
POSE_COLUMNS = {"yaw": 1, "pitch_range": 0}


def pose_track_value(measure: str, pose_track: object) -> float | None:
    """``measure``'s value on a video's pose track ``(T, 3)``; None for measures that are not
    head pose or a track that is not one."""
    if measure not in POSE_COLUMNS:
        return None
    pose = np.asarray(pose_track, np.float64)
    if pose.ndim != 2 or pose.shape[1] != 3 or not len(pose):
        return None
    return video_value(pose[:, POSE_COLUMNS[measure]], MEASURES[measure].statistic)
