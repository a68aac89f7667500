"""Measure one video: every frame's face, landmarks, pose and filter measures, streamed to Parquet.

Paper, appendix A.1 (data filtering). This is the work of one row of the ``measure`` job; it
runs inside an isolated worker process (``pipeline.measure.worker_process``) so a decoder that hangs or crashes
costs one video, not the job. Frames are decoded and measured ``chunk_frames`` at a time and
written as they go, so memory does not grow with the video's length.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gaia.filters import geometry
from gaia.pipeline.face.detect import FaceDetector, box_from_landmarks, track_lost
from gaia.pipeline.face.head_pose import head_pose
from gaia.pipeline.face.landmarks import Landmarker, load_landmarker
from gaia.pipeline.face.occlusion import lower_face_occlusion
from gaia.pipeline.measure.config import MeasureConfig
from gaia.pipeline.media.decode import (
    DecodeError,
    FrameChunk,
    VideoFrames,
    VideoInfo,
    audio_blocks,
    is_variable_rate,
    probe,
)
from gaia.pipeline.speech.vad import SpeechDetector, probs_at
from gaia.schemas.atomic import atomic_path
from gaia.schemas.metrics import METRICS_COMPRESSION, METRICS_SCHEMA
from gaia.schemas.videos import OK_FLAGS, empty_record

Progress = Callable[[int, int], None]


@dataclass
class Models:
    """The models one worker loads once and reuses for every video."""

    detector: FaceDetector
    landmarker: Landmarker
    speech: SpeechDetector

    @classmethod
    def load(cls, config: MeasureConfig) -> Models:
        return cls(
            detector=FaceDetector(config.detector),
            landmarker=load_landmarker(config.landmarks),
            speech=SpeechDetector(),
        )


class FaceTracker:
    """Detect every k frames, follow the main face in between (see ``faces`` module)."""

    def __init__(self, models: Models, config: MeasureConfig) -> None:
        self.models = models
        self.config = config.detector
        self.num_faces = 0
        self._since_detect = self.config.detect_every
        self._landmark_box: np.ndarray | None = None
        # The detector's box relative to the landmark box (offsets / landmark-box size), measured
        # at each detection: tracking feeds the shape predictor boxes of the shape it was trained on.
        self._offset = np.zeros(4, np.float32)

    def step(self, rgb: np.ndarray, gray: np.ndarray) -> tuple[np.ndarray | None, bool]:
        """Landmarks of the main face in this frame (or None), and whether the detector ran.

        With no face in view the detector still runs only every k frames: frames between two
        empty detections count as faceless.
        """
        image = gray if self.models.landmarker.wants_gray else rgb
        if self._since_detect >= self.config.detect_every:
            return self._detect(gray, image), True
        self._since_detect += 1
        if self._landmark_box is None:
            return None, False
        side = self._landmark_box[2] - self._landmark_box[0]
        points = self.models.landmarker(image, self._landmark_box + self._offset * side)
        box = box_from_landmarks(points)
        if track_lost(self._landmark_box, box, self.config):
            return self._detect(gray, image), True
        self._landmark_box = box
        return points, False

    def _detect(self, gray: np.ndarray, image: np.ndarray) -> np.ndarray | None:
        self._since_detect = 1
        boxes = self.models.detector(gray)
        self.num_faces = len(boxes)
        if not len(boxes):
            self._landmark_box = None
            return None
        chosen = boxes[self._same_face(boxes)]
        points = self.models.landmarker(image, chosen)
        box = box_from_landmarks(points)
        side = max(float(box[2] - box[0]), 1.0)
        self._offset = (chosen - box) / side
        self._landmark_box = box
        return points

    def _same_face(self, boxes: np.ndarray) -> int:
        """The detection that continues the current track, else the largest face."""
        if self._landmark_box is None:
            return 0
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        mine = (self._landmark_box[:2] + self._landmark_box[2:]) / 2
        nearest = int(np.argmin(np.linalg.norm(centres - mine, axis=1)))
        size = boxes[nearest, 2] - boxes[nearest, 0]
        return nearest if np.linalg.norm(centres[nearest] - mine) < 0.5 * size else 0


class _ChunkMeasurer:
    """Turns decoded chunks into metrics record batches, carrying state across chunks."""

    def __init__(self, video_id: str, frames: VideoFrames, speech: np.ndarray,
                 models: Models, config: MeasureConfig) -> None:
        self.video_id = video_id
        self.frames = frames
        self.speech = speech
        self.models = models
        self.tracker = FaceTracker(models, config)
        self._prev_landmarks: np.ndarray | None = None
        self._prev_box: np.ndarray | None = None
        self.frames_with_face = 0
        self.frames_multi_face = 0

    def batch(self, chunk: FrameChunk) -> pa.RecordBatch:
        n = len(chunk.frames)
        landmarks = np.full((n, 68, 2), np.nan, np.float32)
        num_faces = np.zeros(n, np.int8)
        detected = np.zeros(n, bool)
        occlusion = np.full(n, np.nan, np.float32)
        pose = np.full((n, 3), np.nan, np.float32)
        for i, rgb in enumerate(chunk.frames):
            gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
            points, detected[i] = self.tracker.step(rgb, gray)
            num_faces[i] = min(self.tracker.num_faces, 127)
            if points is None:
                continue
            landmarks[i] = points
            occlusion[i] = lower_face_occlusion(rgb, points)
            pose[i] = head_pose(points, self.frames.width, self.frames.height)
        has_face = np.isfinite(landmarks[:, 0, 0])
        self.frames_with_face += int(has_face.sum())
        self.frames_multi_face += int((num_faces[has_face] > 1).sum())

        # Ratios are scale-free: compute on the analysis copy, store coordinates at source scale.
        landmarks *= self.frames.scale
        boxes = np.stack([box_from_landmarks(p) if ok else np.full(4, np.nan, np.float32)
                          for p, ok in zip(landmarks, has_face, strict=True)])
        jitter_lm = geometry.landmark_jitter(landmarks, self._prev_landmarks)
        jitter_box = geometry.box_jitter(boxes, self._prev_box)
        self._prev_landmarks, self._prev_box = landmarks[-1], boxes[-1]
        mid_times = chunk.times_s + 0.5 / self.frames.fps
        columns = {
            "video_id": pa.array([self.video_id] * n, pa.string()),
            "frame_index": pa.array(np.arange(chunk.start, chunk.start + n, dtype=np.int32)),
            "time_s": pa.array(chunk.times_s.astype(np.float64)),
            "num_faces": pa.array(num_faces),
            "detected": pa.array(detected),
            "face_box": _fixed_lists(boxes, has_face, 4),
            "landmarks": _fixed_lists(landmarks, has_face, 68, inner=2),
            "pitch_deg": _floats(pose[:, 0]),
            "yaw_deg": _floats(pose[:, 1]),
            "roll_deg": _floats(pose[:, 2]),
            "frontal_angle_deg": _floats(geometry.frontal_angle(landmarks)),
            "jitter_landmarks": _floats(jitter_lm),
            "jitter_box": _floats(jitter_box),
            "occlusion": _floats(occlusion),
            "mouth_open": _floats(geometry.mouth_open(landmarks)),
            "speech_prob": _floats(probs_at(self.speech, mid_times)),
        }
        return pa.record_batch(list(columns.values()), schema=METRICS_SCHEMA)


def _floats(values: np.ndarray) -> pa.Array:
    """float32 array with NaN stored as null, so 'no face' reads as missing, not as a number."""
    values = np.asarray(values, np.float32)
    return pa.array(values, mask=~np.isfinite(values))


def _fixed_lists(values: np.ndarray, valid: np.ndarray, size: int, inner: int = 0) -> pa.Array:
    flat = pa.array(np.nan_to_num(values, nan=0.0).reshape(-1).astype(np.float32))
    if inner:
        flat = pa.FixedSizeListArray.from_arrays(flat, inner)
    return pa.FixedSizeListArray.from_arrays(flat, size, mask=pa.array(~valid))


def measure_video(path: str, video_id: str, source: str, metrics_dir: Path, models: Models,
                  config: MeasureConfig, progress: Progress | None = None,
                  on_probe: Callable[[VideoInfo], None] | None = None) -> dict:
    """Measure the local file ``path``; write ``metrics_dir/{video_id}.parquet``; return its row.

    Never raises for a bad input: the returned ``videos.parquet`` row says what happened.
    ``on_probe`` hears the container's properties before decoding starts (the supervisor sets
    the time limit from the duration); ``progress`` hears frames done after every chunk.
    """
    started, cpu_started = time.monotonic(), time.process_time()
    record = empty_record(video_id, path, source)
    try:
        _measure_into(record, path, metrics_dir, models, config, progress, on_probe)
    except DecodeError as err:
        record.update(status="failed", reason=err.reason, error=str(err))
    except Exception as err:  # a model or library bug must not stop the job: it is data too
        record.update(status="failed", reason="error", error=f"{type(err).__name__}: {err}")
    record["elapsed_s"] = time.monotonic() - started
    record["cpu_s"] = time.process_time() - cpu_started
    return record


def _measure_into(record: dict, path: str, metrics_dir: Path, models: Models,
                  config: MeasureConfig, progress: Progress | None,
                  on_probe: Callable[[VideoInfo], None] | None) -> None:
    if not os.path.exists(path):
        raise DecodeError("not_found", f"{path} does not exist or is not readable")
    record["size_bytes"] = size = os.stat(path).st_size
    if size == 0 and os.path.isfile(path):
        raise DecodeError("empty_file", f"{path} has zero bytes: re-download or remove it")
    info = probe(path)
    if on_probe:
        on_probe(info)
    record.update(width=info.width, height=info.height, fps=info.fps)
    flags: list[str] = []

    speech = np.zeros(0, np.float32)
    if info.has_audio:
        try:
            speech = models.speech.window_probs(audio_blocks(path))
        except Exception as err:  # a broken audio track: measure the video, note the audio
            flags.append("no_audio")
            record["error"] = f"audio track unreadable ({err}); speech measures are null"
    record["has_audio"] = bool(info.has_audio and len(speech) > 0)
    if not record["has_audio"] and "no_audio" not in flags:
        flags.append("no_audio")

    frames = VideoFrames(path, info, config.max_side, config.chunk_frames, config.decode_threads)
    if frames.num_frames == 0:
        raise DecodeError("decode_error", f"{path}: the video stream holds no decodable frame")
    measurer = _ChunkMeasurer(record["video_id"], frames, speech, models, config)
    measured, last_time = 0, 0.0
    final = metrics_dir / f"{record['video_id']}.parquet"
    with atomic_path(final) as tmp:
        with pq.ParquetWriter(tmp, METRICS_SCHEMA, compression=METRICS_COMPRESSION) as writer:
            try:
                for chunk in frames:
                    writer.write_batch(measurer.batch(chunk))
                    measured += len(chunk.frames)
                    last_time = float(chunk.times_s[-1])
                    if progress:
                        progress(measured, frames.num_frames)
            except DecodeError as err:
                if measured == 0:
                    raise
                flags.append("truncated")
                record["error"] = f"decoding stopped after {measured} frames: {err}"
        if measured < 0.98 * info.num_frames - 1 and "truncated" not in flags:
            flags.append("truncated")

    times = frames.times()[:measured]
    duration = last_time + 1.0 / frames.fps
    if is_variable_rate(times):
        flags.append("vfr")
    if duration < config.min_duration_s:
        flags.append("too_short")
    if measurer.frames_with_face == 0:
        flags.append("no_face")
    elif measurer.frames_multi_face > measurer.frames_with_face / 2:
        flags.append("multiple_faces")
    if frames.scale > 1.0:
        flags.append("downscaled")
    flags.sort(key=list(OK_FLAGS).index)
    record.update(
        status="ok",
        reason=flags[0] if flags else "ok",
        flags=flags,
        duration_s=duration,
        fps=frames.fps,
        num_frames=measured,
        frames_with_face=measurer.frames_with_face,
    )
