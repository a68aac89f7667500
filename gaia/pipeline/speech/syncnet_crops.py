"""SyncNet's video input: colour face crops framed as syncnet_python's ``crop_video`` frames
them (Chung & Zisserman 2016, section 3.1: the face track, not a mouth crop, for syncnet_v2).

From a face box per frame (S3FD's in syncnet_python: x0, y0, x1, y1 in pixels):
- the box's centre (x, y) and half-size ``bs = max(width, height) / 2``;
- all three smoothed over time by a median filter of 13 frames;
- the crop: rows ``[y - bs, y + bs (1 + 2 cs))`` and columns ``[x - bs (1 + cs),
  x + bs (1 + cs))`` with ``cs = 0.4``, a square of side 2.8 bs whose top is the box's top and
  which reaches 0.8 bs below its bottom (chin and neck); outside the frame the pixels are
  grey 110; coordinates truncated to integers as there; resized to 224 x 224 (bilinear).

Two differences, both at a track's ends: syncnet_python's ``scipy.signal.medfilt`` pads with
zeros (its tracks are >= 100 frames, so only the first and last 6 frames see it; on a short
clip the zeros would win the median and collapse the box), ours repeats the edge values; and
frames without a box are interpolated linearly between the boxes around them (as its track
interpolation does) and hold the nearest box before the first and after the last. Its crops
also pass through JPEG and XVID compression, ours do not.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.ndimage import median_filter

CROP = 224
CROP_SCALE = 0.4  # syncnet_python's --crop_scale (cs)
SMOOTH_FRAMES = 13  # its median filter over box centre and size
PAD_VALUE = 110  # its grey outside the frame
# S3FD's boxes (trained on WIDER FACE) reach above the eyebrows, where the 68 points end, and
# stop near the chin. Our assumption for boxes made from landmarks: the points' extent, its top
# raised by a quarter of the eyebrow-to-chin height (a rough mid-forehead), never measured
# against S3FD itself (no S3FD weights here).
FOREHEAD = 0.25


def landmark_boxes(tracks: np.ndarray, forehead: float = FOREHEAD) -> np.ndarray:
    """``(n, 4)`` face boxes x0, y0, x1, y1 from ``(n, 68, 2)`` landmarks (iBUG 68, pixels):
    the points' extent with the top raised by ``forehead`` times its height, standing in for
    the S3FD detector boxes syncnet_python frames its crops from. NaN rows where a frame has
    no landmarks (any point not finite)."""
    tracks = np.asarray(tracks, np.float64)
    boxes = np.full((len(tracks), 4), np.nan)
    found = np.isfinite(tracks).all(axis=(1, 2))
    if found.any():
        low, high = tracks[found].min(axis=1), tracks[found].max(axis=1)
        low[:, 1] -= forehead * (high[:, 1] - low[:, 1])
        boxes[found] = np.concatenate([low, high], axis=1)
    return boxes


def _fill_gaps(values: np.ndarray) -> np.ndarray:
    """Rows with NaN interpolated linearly between the finite rows around them; held before
    the first and after the last."""
    found = np.isfinite(values).all(axis=1)
    if not found.any():
        raise ValueError("no frame has a face box")
    index = np.arange(len(values))
    return np.stack([np.interp(index, index[found], values[found, j])
                     for j in range(values.shape[1])], axis=1)


def crop_track(boxes: np.ndarray) -> np.ndarray:
    """``(n, 3)`` smoothed (centre x, centre y, half-size bs) per frame of ``(n, 4)`` boxes."""
    boxes = _fill_gaps(np.asarray(boxes, np.float64))
    half = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) / 2
    track = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2, half],
                     axis=1)
    return median_filter(track, size=(SMOOTH_FRAMES, 1), mode="nearest")


def _crop(frame: np.ndarray, x: float, y: float, bs: float, size: int) -> np.ndarray:
    """One crop, cut from the frame as if padded by ``int(bs (1 + 2 cs))`` grey pixels."""
    height, width = frame.shape[:2]
    pad = int(bs * (1 + 2 * CROP_SCALE))
    # Bounds in the padded frame's coordinates, truncated as syncnet_python's slicing does,
    # then clipped to the padded frame as numpy's slicing clips them.
    y0, y1 = int(y + pad - bs), int(y + pad + bs * (1 + 2 * CROP_SCALE))
    x0, x1 = int(x + pad - bs * (1 + CROP_SCALE)), int(x + pad + bs * (1 + CROP_SCALE))
    y0, y1 = np.clip([y0, y1], 0, height + 2 * pad)
    x0, x1 = np.clip([x0, x1], 0, width + 2 * pad)
    out = np.full((max(y1 - y0, 1), max(x1 - x0, 1), 3), PAD_VALUE, np.uint8)
    # The frame's part of it: padded rows [pad, pad + height) hold frame rows [0, height).
    fy0, fy1 = max(y0, pad), min(y1, pad + height)
    fx0, fx1 = max(x0, pad), min(x1, pad + width)
    if fy1 > fy0 and fx1 > fx0:
        out[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0] = frame[fy0 - pad:fy1 - pad, fx0 - pad:fx1 - pad]
    return cv2.resize(out, (size, size), interpolation=cv2.INTER_LINEAR)


def face_crops(frames_rgb: np.ndarray, boxes: np.ndarray, size: int = CROP) -> np.ndarray:
    """``(n, size, size, 3)`` uint8 RGB face crops of ``(n, H, W, 3)`` uint8 RGB frames, framed
    as syncnet_python's ``crop_video`` from ``(n, 4)`` boxes x0, y0, x1, y1 (float pixels; NaN
    rows where no face: interpolated or held, see the module docstring). Raises ``ValueError``
    when no frame has a box."""
    frames = np.asarray(frames_rgb)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) != len(boxes):
        raise ValueError(f"frames {frames.shape} and boxes {np.shape(boxes)} do not pair up as "
                         "(n, H, W, 3) and (n, 4)")
    track = crop_track(boxes)
    out = np.empty((len(frames), size, size, 3), np.uint8)
    for n, (frame, (x, y, bs)) in enumerate(zip(frames, track, strict=True)):
        out[n] = _crop(frame, x, y, max(bs, 1.0), size)
    return out
