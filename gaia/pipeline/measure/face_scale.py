"""The analysis size of one video, chosen from the size of its faces (paper, appendix A.1).

Measures are ratios, so frames are decoded shrunk (decode, detection and memory all shrink with
the pixel count), but a fixed size fails at real framing: a 146 px face in a 720p interview is
37 px after shrinking to 640, below what any landmark fit can use. So before measuring, a few
keyframes (cheap to seek to) are decoded at the source's size and scanned for faces down to
``min_face_px``; the video is then decoded so its largest face is about ``target_face_px`` wide,
never larger than the source and never smaller than ``min_side``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaia.pipeline.face.scan import FaceScanner
from gaia.pipeline.media.decode import VideoInfo

# The pre-scan runs on a few frames per video, so it may look hard: a 4K frame with HOG sized
# for a 48 px face is about 23 million pixels (about 3 s on a core; 0.1 s with BlazeFace).
PROBE_MAX_PIXELS = 24_000_000


@dataclass(frozen=True)
class FaceScale:
    """What the probe saw: the largest face's width in source pixels (None: no face in the
    probed frames) and the longer side the video will be decoded at."""

    face_px: float | None
    analysis_side: int


FULL_SIZE_ABOVE = 0.75  # a side this close to the source's is decoded at the source's size


def choose_analysis_side(info: VideoInfo, face_px: float | None, min_side: int,
                         target_face_px: float) -> int:
    """The longer side to decode at: the face near ``target_face_px``, within the bounds."""
    longer = max(info.width, info.height)
    if face_px is None or face_px <= 0:
        return min(min_side, longer)
    wanted = longer * target_face_px / face_px
    if wanted >= FULL_SIZE_ABOVE * longer:
        # Shrinking a little costs more than it saves: the decoder's scaler on every frame
        # (1920 -> 1644 took 1.3x the CPU of decoding 1080p at full size) outweighs the
        # smaller frames downstream, which are searched at the face's size anyway.
        return longer
    return int(min(longer, max(min_side, round(wanted))))


def probe_face_scale(path: str, info: VideoInfo, scanner: FaceScanner, min_face_px: float,
                     min_side: int, target_face_px: float, frames: int = 3) -> FaceScale:
    """Scan up to ``frames`` keyframes at source size; the analysis side from the faces found.

    A file decord cannot seek in (or one with no keyframe index) falls back to its first frames.
    """
    import decord

    try:
        reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
        count = len(reader)
        keys = [int(k) for k in reader.get_key_indices()] or [0]
    except Exception:
        return FaceScale(None, choose_analysis_side(info, None, min_side, target_face_px))
    if count == 0:
        return FaceScale(None, choose_analysis_side(info, None, min_side, target_face_px))
    # Spread over the video; a keyframe at 0.5 s rather than 0 avoids fade-ins and slates.
    wanted = np.linspace(0.1, 0.9, frames) * count
    picks = sorted({min(keys, key=lambda k, w=w: abs(k - w)) for w in wanted})
    largest = 0.0
    for index in picks:
        try:
            rgb = reader[index].asnumpy()
        except Exception:
            continue
        boxes, _ = scanner.scan(rgb, min_face_px, max_pixels=PROBE_MAX_PIXELS)
        if len(boxes):
            largest = max(largest, float(boxes[0, 2] - boxes[0, 0]))
    face_px = largest or None
    return FaceScale(face_px, choose_analysis_side(info, face_px, min_side, target_face_px))
