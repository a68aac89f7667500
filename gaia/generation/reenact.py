"""Cross-reenactment with a trained VAE: a portrait driven by another video's landmarks.

Paper, appendix B.2 (cross-reenactment) and section 4.1: the appearance latent comes from the
source portrait, the motion latent of each output frame from the driving video's landmarks,
and the decoder draws the portrait with that motion. Both sides are framed as curation frames
its clips (``gaia.common.crop``): 68 dlib landmarks, one square box per clip (the single
source image is a clip of one frame; the driving video is one clip), cut at 256 px, then
resized to the model's ``image_size`` with the same pixel-centre mapping as the training
loader (``training.data.shard_stream.decode_sample``). The driving video is read as curation measures it
(``pipeline.measure.tracker.FaceTracker``: detect every few frames, follow the face in between); frames
where the face is lost take the nearest frame's landmarks. The output mp4 has the driving
video's frame rate, frame count and audio (16 kHz mono).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from gaia.common.crop import (
    CropConfig,
    clip_box,
    crop_frame,
    to_crop_pixels,
    to_model_pixels,
)
from gaia.inference.vae import LoadedVae, to_uint8
from gaia.pipeline.face.detect import DetectorConfig, FaceDetector, box_from_landmarks
from gaia.pipeline.face.landmarks import DlibLandmarker
from gaia.pipeline.measure.config import MeasureConfig
from gaia.pipeline.media.decode import DecodeError, VideoFrames, audio_blocks, probe
from gaia.pipeline.media.video_writer import write_video
from gaia.schemas.shards import AUDIO_RATE


@dataclass(frozen=True)
class ReenactConfig:
    """crop: the curation crop (box scale and lift, and the side frames are cut at before
    resizing to the model's size). measure: the driving video's decoding and face tracking
    (detect every ``measure.detector.detect_every`` frames). batch_size: frames decoded by the
    VAE at a time."""

    crop: CropConfig = field(default_factory=CropConfig)
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    batch_size: int = 16


def resize_crop(image: np.ndarray, size: int) -> np.ndarray:
    """A square crop resized to ``size`` (area averaging when shrinking, as the loader)."""
    if image.shape[0] == size:
        return image
    shrink = image.shape[0] > size
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrink
                      else cv2.INTER_LINEAR)


class CropLandmarks:
    """68 landmarks of the one face in a small square crop (a reconstruction), or None.

    The crop is enlarged to ``work_size`` first (dlib's detector misses faces under about
    80 px and its shape predictor is more precise on larger faces); points come back in the
    crop's pixels. For ``evaluate_vae``'s ``landmark_fn``.
    """

    def __init__(self, work_size: int = 256) -> None:
        self.work_size = work_size
        self.detector = FaceDetector(DetectorConfig(detect_max_side=work_size,
                                                    detect_min_side=work_size))
        self.landmarker = DlibLandmarker()

    def __call__(self, rgb: np.ndarray) -> np.ndarray | None:
        size = rgb.shape[0]
        big = rgb if size == self.work_size else cv2.resize(
            rgb, (self.work_size, self.work_size), interpolation=cv2.INTER_CUBIC)
        gray = cv2.cvtColor(big, cv2.COLOR_RGB2GRAY)
        boxes = self.detector(gray)
        if not len(boxes):
            return None
        return to_model_pixels(self.landmarker(gray, boxes[0]), self.work_size, size)


def portrait_face(path: Path, crop: CropConfig, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The portrait's head cut as curation cuts clips, uint8 ``(size, size, 3)`` RGB, and its
    68 landmarks in pixels of that image; ValueError when the image has no face or several."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read the portrait {path}: give a PNG or JPEG image")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    detector = FaceDetector(DetectorConfig(detect_max_side=min(max(rgb.shape[:2]), 1024)))
    boxes = detector(gray)
    if len(boxes) == 0:
        raise ValueError(f"no face found in the portrait {path}: give a portrait with one "
                         "clearly visible, roughly frontal face")
    if len(boxes) > 1:
        raise ValueError(f"{len(boxes)} faces found in the portrait {path}: crop it to the "
                         "one person to animate")
    points = DlibLandmarker()(gray, boxes[0])
    box = clip_box(box_from_landmarks(points)[None], crop)
    image = resize_crop(crop_frame(rgb, box, crop.size), size)
    landmarks = to_model_pixels(to_crop_pixels(points, box, crop.size), crop.size, size)
    return image, landmarks


def source_crop(path: Path, crop: CropConfig, size: int) -> np.ndarray:
    """The portrait's head cut as curation cuts clips (``portrait_face`` without landmarks)."""
    return portrait_face(path, crop, size)[0]


def driving_landmarks(path: Path, config: MeasureConfig
                      ) -> tuple[np.ndarray, float, np.ndarray]:
    """Landmarks of the driving video's face in every frame, in source pixels ``(n, 68, 2)``
    (a frame where the face was lost takes the nearest found frame's), its frame rate, and
    which frames had the face found ``(n,)``."""
    from gaia.pipeline.measure.models import new_tracker

    try:
        info = probe(str(path))
        frames = VideoFrames(str(path), info, config.min_side, config.chunk_frames)
    except DecodeError as err:
        raise ValueError(f"cannot read the driving video {path}: {err}") from err
    tracker = new_tracker(config, frames.scale, landmarker=DlibLandmarker())
    found: list[np.ndarray | None] = []
    try:
        for chunk in frames:
            for rgb in chunk.frames:
                gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
                fix = tracker.step(rgb, gray)
                found.append(None if fix is None else fix.points * frames.scale)
    except DecodeError as err:
        raise ValueError(f"cannot read the driving video {path}: {err}") from err
    if not found:
        raise ValueError(f"the driving video {path} has no frames")
    hits = np.array([i for i, points in enumerate(found) if points is not None], np.int64)
    if not len(hits):
        raise ValueError(f"no face found in any frame of the driving video {path}: give a "
                         "video of a talking head")
    index = np.arange(len(found))
    before = hits[np.maximum(np.searchsorted(hits, index, side="right") - 1, 0)]
    after = hits[np.minimum(np.searchsorted(hits, index), len(hits) - 1)]
    nearest = np.where(np.abs(index - before) <= np.abs(after - index), before, after)
    points = np.stack([found[i] for i in nearest]).astype(np.float32)
    return points, frames.fps, nearest == index


def _driving_audio(path: Path) -> np.ndarray | None:
    blocks = list(audio_blocks(str(path)))
    return np.concatenate(blocks) if blocks else None


def _decoded_frames(vae: LoadedVae, appearance: np.ndarray, landmarks: np.ndarray,
                    batch_size: int) -> Iterator[np.ndarray]:
    latent = vae.appearance_of(appearance)
    for start in range(0, len(landmarks), batch_size):
        points = torch.from_numpy(landmarks[start:start + batch_size])
        frames = vae.decode(latent, points)
        yield from to_uint8(frames)


def reenact(source_image: Path, driving_video: Path, checkpoint: Path, out: Path,
            progress: Callable[[str], None] = print,
            config: ReenactConfig | None = None) -> Path:
    """Animate ``source_image`` with ``driving_video``'s motion (module docstring); writes and
    returns ``out`` (an mp4)."""
    config = config or ReenactConfig()
    vae = LoadedVae.load(checkpoint)
    size = vae.config.image_size
    appearance = source_crop(Path(source_image), config.crop, size)
    progress(f"[reenact] source face cropped to {size} px; model {vae.config.name} "
             f"(step {vae.step}) from {vae.checkpoint}")
    points, fps, found = driving_landmarks(Path(driving_video), config.measure)
    progress(f"[reenact] driving video: {len(points)} frames at {fps:.2f} fps, face found in "
             f"{int(found.sum())}")
    box = clip_box(np.stack([box_from_landmarks(p) for p in points[found]]), config.crop)
    crop_points = to_crop_pixels(points, box, config.crop.size)
    landmarks = to_model_pixels(crop_points, config.crop.size, size)
    audio = _driving_audio(Path(driving_video))
    frames = _decoded_frames(vae, appearance, landmarks, config.batch_size)
    write_video(out, frames, fps, audio=audio, audio_rate=AUDIO_RATE)
    progress(f"[reenact] wrote {out} ({len(points)} frames"
             f"{', with the driving audio' if audio is not None else ', no audio'})")
    return Path(out)
