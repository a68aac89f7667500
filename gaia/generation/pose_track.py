"""Head pose of a video's face, frame by frame, for ``gaia generate --pose from:VIDEO``.

Paper, section 4.2 (speech-to-motion) and section 5's pose-controllable generation: the
s2m model can take the head pose from elsewhere instead of predicting it. To be a
condition like those it saw in training, the pose is measured as curation measures it: the
same face tracker (``pipeline.measure.tracker.FaceTracker`` with ``MeasureConfig``'s landmarker and
decoding size, as ``reenact.driving_landmarks`` uses it) and the same PnP (``pipeline.face.head_pose``), then
picked at 25 fps the way ``pipeline.extract.video`` picks a clip's frames (the source frame on screen
at each output time; for a 25 fps source that is frame for frame).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from gaia.pipeline.face.head_pose import head_pose
from gaia.pipeline.measure.config import MeasureConfig
from gaia.pipeline.media.decode import DecodeError, VideoInfo, probe
from gaia.schemas.shards import FPS

POSE_FORMS = "'predicted', 'fixed:PITCH,YAW,ROLL' (degrees, e.g. fixed:5,-10,0) or 'from:VIDEO'"


def parse_pose(spec: str) -> tuple[str, object]:
    """The CLI's ``--pose`` value: ``("predicted", None)``, ``("fixed", float32 (3,))`` pitch,
    yaw, roll in degrees, or ``("from", Path)`` (the file is opened later, by
    ``video_pose_track``)."""
    text = spec.strip()
    kind, _, value = text.partition(":")
    kind = kind.strip().lower()
    if kind == "predicted" and not value:
        return "predicted", None
    if kind == "fixed":
        parts = [part.strip() for part in value.split(",")]
        try:
            angles = np.array([float(part) for part in parts], np.float32)
        except ValueError:
            angles = np.zeros(0, np.float32)
        if angles.shape != (3,) or not np.isfinite(angles).all():
            raise ValueError(f"--pose {spec!r}: 'fixed:' takes three numbers, pitch, yaw and "
                             f"roll in degrees (e.g. fixed:5,-10,0); accepted forms: {POSE_FORMS}")
        return "fixed", angles
    if kind == "from" and value.strip():
        return "from", Path(value.strip())
    raise ValueError(f"--pose {spec!r} is not understood; accepted forms: {POSE_FORMS}")


def _tracked_frames(path: Path, config: MeasureConfig, until_s: float
                    ) -> tuple[np.ndarray, np.ndarray, VideoInfo]:
    """Landmarks in source pixels (NaN where the face was lost) and start times of the frames
    up to the one on screen at ``until_s``, with the video's info.

    The loop of ``reenact.driving_landmarks`` (the curation tracker), but it stops once
    ``until_s`` is covered: a long pose video for a short clip is decoded only as far as used.
    """
    from gaia.pipeline.measure.models import (
        load_face_landmarker,
        new_scanner,
        tracked_video,
    )

    info = probe(str(path))
    landmarker = load_face_landmarker(config)
    _, frames, tracker = tracked_video(str(path), info, config,
                                       new_scanner(config, landmarker), landmarker)
    points: list[np.ndarray] = []
    times: list[float] = []
    for chunk in frames:
        for rgb, start_s in zip(chunk.frames, chunk.times_s, strict=True):
            if times and start_s > until_s + 1e-6:
                return np.stack(points), np.asarray(times), info
            gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if tracker.landmarker.wants_gray else rgb
            found = tracker.step(rgb, gray)
            points.append(np.full((68, 2), np.nan, np.float32) if found is None
                          else found.points * frames.scale)
            times.append(float(start_s))
    if not points:
        raise DecodeError("decode_error", "the video has no frames")
    return np.stack(points), np.asarray(times), info


def _fill_missing(pose: np.ndarray) -> np.ndarray:
    """Rows where PnP failed (NaN) take the nearest row that has a pose."""
    good = np.flatnonzero(np.isfinite(pose).all(axis=1))
    if len(good) == len(pose):
        return pose
    index = np.arange(len(pose))
    after = np.clip(np.searchsorted(good, index), 0, len(good) - 1)
    before = np.clip(after - 1, 0, len(good) - 1)
    nearest = np.where(np.abs(good[before] - index) <= np.abs(good[after] - index),
                       good[before], good[after])
    return pose[nearest]


def video_pose_track(path: Path | str, num_frames: int, fps: float = FPS,
                     config: MeasureConfig | None = None) -> np.ndarray:
    """Pitch, yaw, roll in degrees of the face in ``path``, float32 ``(num_frames, 3)`` at
    ``fps``.

    Output frame ``j`` takes the source frame on screen at ``j / fps`` (as curation's clips
    do), so a longer video is cut (and decoded no further) and a shorter one holds its last
    frame's pose. Raises ValueError, saying what to give, when the video cannot be read or no
    face is found in the part used.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    config = config or MeasureConfig()
    path = Path(path)
    wanted = np.arange(num_frames) / fps
    try:
        points, times, info = _tracked_frames(path, config, float(wanted[-1]))
    except DecodeError as err:
        raise ValueError(f"cannot read {path} ({err}): --pose from:VIDEO needs a readable "
                         "video of a talking head; or use --pose predicted or "
                         "fixed:PITCH,YAW,ROLL") from err
    # The frame on screen at each output time, as extract_video.source_indices picks.
    picks = np.clip(np.searchsorted(times, wanted + 1e-6, side="right") - 1, 0, len(times) - 1)
    # PnP only on the frames used; curation's pose is the same up to the decoding scale, which
    # PnP ignores (the focal length is the image width, so it scales with the points).
    used, inverse = np.unique(picks, return_inverse=True)
    pose = np.array([head_pose(points[i], info.width, info.height) for i in used], np.float64)
    if not np.isfinite(pose).all(axis=1).any():
        raise ValueError(f"no face found in {path} (looked up to {times[-1]:.2f} s): --pose "
                         "from:VIDEO needs a video of one clearly visible talking head; or use "
                         "--pose predicted or fixed:PITCH,YAW,ROLL")
    # A frame where the tracker lost the face takes the pose of the nearest used frame with one.
    pose = _fill_missing(pose)[inverse]
    return pose.astype(np.float32)
