"""Per-frame measures of one video, chunk by chunk (paper, appendix A.1).

Turns decoded chunks into ``metrics/`` record batches, carrying the face track, the previous
frame's landmarks and box, the shot-cut detector and the video's identities across chunks.
The measures that need the whole video's mouth and speech (sync) are added afterwards by
``pipeline.measure.sync_columns``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import pyarrow as pa

from gaia.filters import geometry
from gaia.filters.occlusion import OcclusionThresholds
from gaia.pipeline.face.head_pose import head_pose
from gaia.pipeline.face.occlusion import lower_face_occlusion
from gaia.pipeline.face.sharpness import face_sharpness
from gaia.pipeline.measure.hand_watch import HandWatch
from gaia.pipeline.measure.models import Models
from gaia.pipeline.measure.tracker import FaceTracker
from gaia.pipeline.media.decode import FrameChunk, VideoFrames
from gaia.pipeline.media.frame_hash import frame_hash
from gaia.pipeline.speech.vad import probs_at
from gaia.schemas.metrics import METRICS_SCHEMA
from gaia.schemas.shards import FPS


@dataclass
class Identities:
    """The video's persons, found online from face embeddings (the first embedding of a person
    is its centroid's seed; later ones are averaged in). Deterministic in frame order."""

    max_distance: float
    centroids: list[np.ndarray] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    first_frames: list[int] = field(default_factory=list)  # where each person was first seen

    def assign(self, embedding: np.ndarray, frame: int = -1) -> int:
        if self.centroids:
            distances = np.linalg.norm(np.stack(self.centroids) - embedding, axis=1)
            best = int(np.argmin(distances))
            if distances[best] <= self.max_distance:
                self.counts[best] += 1
                self.centroids[best] += (embedding - self.centroids[best]) / self.counts[best]
                return best
        self.centroids.append(embedding.astype(np.float64))
        self.counts.append(1)
        self.first_frames.append(frame)
        return len(self.centroids) - 1


# A hand over this share of the lower face hides the mouth: its opening is not measured as
# motion (the visible-speaker rule must not read fingers as a talking mouth). The occlusion
# filter's default limit: the share at which a frame stops being usable at all.
MOUTH_COVERED = OcclusionThresholds.max_hand_cover


class ChunkMeasurer:
    """Stateful over one video's chunks; ``batch`` gives one chunk's metrics rows."""

    def __init__(self, video_id: str, frames: VideoFrames, speech: np.ndarray,
                 av_offset_s: float, models: Models, tracker: FaceTracker) -> None:
        self.video_id = video_id
        self.frames = frames
        self.speech = speech
        self.av_offset_s = av_offset_s
        self.models = models
        self.tracker = tracker
        self.cuts = models.new_cut_detector()
        self.identities = Identities(models.identity_max_distance)
        self.hands = (HandWatch(models.hands, 2 * tracker.config.detect_every)
                      if models.hands is not None else None)
        self.frame_errors = 0  # frames a model refused (they count as faceless)
        self.last_error = ""
        self._embedded_track = -1
        self._prev_landmarks: np.ndarray | None = None
        self._prev_box: np.ndarray | None = None
        self._last_detection: tuple[int, np.ndarray] | None = None
        self._track_embedding: np.ndarray | None = None
        self._person = -1
        self.frames_with_face = 0
        self.frames_multi_face = 0
        self.mouth_open: list[np.ndarray] = []  # per chunk, for the sync pass
        self.mouth_covered: list[np.ndarray] = []  # per chunk: a hand over the mouth
        self.has_face: list[np.ndarray] = []  # per chunk, for SyncNet's columns
        self.syncnet = None  # a SyncNetTap when measure has SyncNet weights
        if models.syncnet is not None:
            from gaia.pipeline.measure.syncnet_tap import SyncNetTap

            self.syncnet = SyncNetTap(models.syncnet, frames.fps)

    def batch(self, chunk: FrameChunk) -> pa.RecordBatch:
        n = len(chunk.frames)
        landmarks = np.full((n, 68, 2), np.nan, np.float32)
        boxes = np.full((n, 4), np.nan, np.float32)
        num_faces = np.zeros(n, np.int8)
        detected = np.zeros(n, bool)
        scanned = np.zeros(n, bool)
        occlusion = np.full(n, np.nan, np.float32)
        cover = np.full(n, np.nan, np.float32)
        track = np.full(n, -1, np.int32)
        sharpness = np.full(n, np.nan, np.float32)
        cut_score = np.full(n, np.nan, np.float32)
        identity_distance = np.full(n, np.nan, np.float32)
        person = np.full(n, -1, np.int16)
        pose = np.full((n, 3), np.nan, np.float32)
        hashes = np.zeros(n, np.int64)
        # The whole frame in grayscale only for a landmarker that reads it (dlib's); the rest
        # convert what they crop.
        wants_gray = self.tracker.landmarker.wants_gray
        for i, rgb in enumerate(chunk.frames):
            gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if wants_gray else rgb
            cut_score[i] = self.cuts.score(rgb)
            hashes[i] = frame_hash(rgb)
            cut = bool(self.cuts.is_cut(cut_score[i]))
            try:
                fix = self.tracker.step(rgb, gray, cut=cut)
                if self.hands is not None:
                    if cut:
                        self.hands.reset()
                    cover[i] = self.hands.cover(rgb, None if fix is None else fix.points,
                                                None if fix is None else fix.box)
            except (RuntimeError, ValueError) as err:
                # A frame a model refuses costs that frame, not the video (counted in the
                # video's record); the track starts afresh on the next frame.
                self.frame_errors += 1
                self.last_error = f"frame {chunk.start + i}: {err}"
                self.tracker.forget()
                fix = None
            num_faces[i] = min(self.tracker.num_faces, 127)
            if fix is None:
                self._track_embedding, self._person = None, -1
                continue
            detected[i], scanned[i] = fix.detected, fix.scanned
            landmarks[i], boxes[i] = fix.points, fix.box
            track[i] = fix.track
            occlusion[i] = lower_face_occlusion(rgb, fix.points)
            sharpness[i] = face_sharpness(gray, fix.box)
            pose[i] = head_pose(fix.points, self.frames.width, self.frames.height)
            # Identity once per track (a track is one face followed without a break: its
            # person cannot change inside it), not at every scan: the ResNet costs ~150 ms.
            if fix.track != self._embedded_track and self.models.embedder is not None:
                self._embedded_track = fix.track
                identity_distance[i] = self._embed(rgb, fix.points, chunk.start + i)
            person[i] = self._person
        has_face = np.isfinite(landmarks[:, 0, 0])
        self.frames_with_face += int(has_face.sum())
        self.frames_multi_face += int((num_faces[has_face] > 1).sum())

        self.has_face.append(has_face)
        if self.syncnet is not None:  # crops from the analysis copy, in its pixels
            self.syncnet.add(chunk.frames, boxes, chunk.start)
        # Ratios are scale-free: compute on the analysis copy, store coordinates at source scale.
        landmarks *= self.frames.scale
        boxes *= self.frames.scale
        per_25 = self.frames.fps / FPS  # motion measures are per 1/25 s whatever the frame rate
        jitter_lm = geometry.landmark_jitter(landmarks, self._prev_landmarks) * per_25
        jitter_box = self._box_jitter(boxes, detected, chunk.start) * per_25
        self._prev_landmarks, self._prev_box = landmarks[-1], boxes[-1]
        mouth = geometry.mouth_open(landmarks)
        self.mouth_open.append(mouth)
        self.mouth_covered.append(cover >= MOUTH_COVERED)
        # Audio on the video's clock: audio sample 0 plays at video time av_offset_s.
        mid_times = chunk.times_s + 0.5 / self.frames.fps - self.av_offset_s
        nulls = np.full(n, np.nan, np.float32)
        columns = {
            "video_id": pa.array([self.video_id] * n, pa.string()),
            "frame_index": pa.array(np.arange(chunk.start, chunk.start + n, dtype=np.int32)),
            "time_s": pa.array(chunk.times_s.astype(np.float64)),
            "num_faces": pa.array(num_faces),
            "detected": pa.array(detected),
            "scanned": pa.array(scanned),
            "face_box": _fixed_lists(boxes, has_face, 4),
            "face_px": _floats(boxes[:, 2] - boxes[:, 0]),
            "landmarks": _fixed_lists(landmarks, has_face, 68, inner=2),
            "pitch_deg": _floats(pose[:, 0]),
            "yaw_deg": _floats(pose[:, 1]),
            "roll_deg": _floats(pose[:, 2]),
            "frontal_angle_deg": _floats(geometry.frontal_angle_eye_line(landmarks)),
            "frontal_angle_image_deg": _floats(geometry.frontal_angle(landmarks)),
            "jitter_landmarks": _floats(jitter_lm),
            "jitter_box": _floats(jitter_box),
            "occlusion": _floats(occlusion),
            "hand_cover": _floats(cover),
            "sharpness": _floats(sharpness),
            "cut_score": _floats(cut_score),
            "identity_distance": _floats(identity_distance),
            "person": pa.array(person),
            "track": pa.array(track),
            "mouth_open": _floats(mouth),
            "mouth_motion": _floats(nulls),
            "speech_prob": _floats(probs_at(self.speech, mid_times)),
            "speech_env": _floats(nulls),
            "sync_offset_frames": _floats(nulls),
            "sync_confidence": _floats(nulls),
            "sync_agreement": _floats(nulls),
            "syncnet_offset_frames": _floats(nulls),
            "syncnet_lag_frames": _floats(nulls),
            "syncnet_confidence": _floats(nulls),
            "frame_hash": pa.array(hashes),
        }
        return pa.record_batch(list(columns.values()), schema=METRICS_SCHEMA)

    def _box_jitter(self, boxes: np.ndarray, detected: np.ndarray, start: int) -> np.ndarray:
        """Box motion per frame, comparing like with like: on a frame where the detector ran,
        its box against the previous detector box (per frame between them); elsewhere the
        tracked box against the previous frame's. A detector box against a tracked one would
        measure the two methods' disagreement, every ``detect_every`` frames, not the head."""
        jitter = geometry.box_jitter(boxes, self._prev_box)
        for i in np.flatnonzero(detected):
            frame = start + i
            if self._last_detection is not None and frame - self._last_detection[0] <= 2 * (
                    self.tracker.config.detect_every):
                gap = frame - self._last_detection[0]
                jitter[i] = geometry.box_jitter(boxes[i:i + 1], self._last_detection[1])[0] / gap
            else:
                jitter[i] = np.nan
            self._last_detection = (frame, boxes[i].copy())
        return jitter

    def _embed(self, rgb: np.ndarray, points: np.ndarray, frame: int) -> float:
        """Embed the face; its distance to the track's previous embedding (NaN: none)."""
        embedding = np.asarray(self.models.embedder(rgb, points), np.float64)
        previous, self._track_embedding = self._track_embedding, embedding
        self._person = self.identities.assign(embedding, frame)
        if previous is None:
            return float("nan")
        return float(np.linalg.norm(embedding - previous))


def _floats(values: np.ndarray) -> pa.Array:
    """float32 array with NaN stored as null, so 'no face' reads as missing, not as a number."""
    values = np.asarray(values, np.float32)
    return pa.array(values, mask=~np.isfinite(values))


def _fixed_lists(values: np.ndarray, valid: np.ndarray, size: int, inner: int = 0) -> pa.Array:
    flat = pa.array(np.nan_to_num(values, nan=0.0).reshape(-1).astype(np.float32))
    if inner:
        flat = pa.FixedSizeListArray.from_arrays(flat, inner)
    return pa.FixedSizeListArray.from_arrays(flat, size, mask=pa.array(~valid))

