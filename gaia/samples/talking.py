"""A real portrait whose mouth opens and closes with a speech track (pure numpy and cv2).

For the audio-visual sync filter (GAIA appendix A.1: "lip movements and speech are not
aligned"): ``talking_portrait`` moves the astronaut's real lower lip and jaw by the speech's
loudness at each frame, so the mouth is in sync with the audio it was driven by; the same frames
under shifted audio are out of sync by a known lag, and ``amounts=0`` is a still mouth under
speech. Landmarks are iBUG 68 points, 0-based, ``(68, 2)`` x/y pixels of ``image``.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

CAVITY_RGB = (52, 18, 22)  # the dark red of an open mouth
MAX_GAP = 0.4  # lower-lip drop at ``amount=1``, over the mouth width (dlib reads ~0.3)


def mouth_amounts(audio: np.ndarray, rate: int, n_frames: int, fps: float) -> np.ndarray:
    """Mouth opening in [0, 1] per frame from the speech's RMS loudness around the frame.

    40 ms windows centred on each frame; -45 dB full scale and below is closed, -15 dB is wide
    open; a 3-frame moving average stands for the jaw's inertia.
    """
    audio = np.asarray(audio, np.float64)
    half = int(0.02 * rate)
    centres = np.round((np.arange(n_frames) + 0.5) / fps * rate).astype(int)
    level = np.full(n_frames, -90.0)
    for i, c in enumerate(centres):
        piece = audio[max(0, c - half): c + half]
        if piece.size:
            level[i] = 10 * np.log10(np.mean(piece**2) + 1e-9)
    amounts = np.clip((level + 45.0) / 30.0, 0.0, 1.0)
    return np.convolve(np.pad(amounts, 1, mode="edge"), np.ones(3) / 3, mode="valid")


def open_mouth(image: np.ndarray, landmarks: np.ndarray, amount: float) -> np.ndarray:
    """``image`` with the lower lip and jaw dropped by ``amount`` x ``MAX_GAP`` x mouth width.

    Pixels below the lips' meeting line move down (a Gaussian falloff across the face and
    below the chin keeps the cheeks and neck in place); the gap that opens is painted as a dark
    mouth cavity with soft edges, so a landmark model sees parted lips.
    """
    if amount <= 0:
        return image
    points = np.asarray(landmarks, np.float64)
    inner = points[60:68]
    width = float(np.linalg.norm(points[54] - points[48]))
    centre_x = float(points[48:55, 0].mean())
    line_y = float(inner[:, 1].mean())
    chin_y = float(points[8, 1])
    drop = float(amount) * MAX_GAP * width
    height, img_w = image.shape[:2]
    ys, xs = np.mgrid[0:height, 0:img_w].astype(np.float32)
    below = np.clip((ys - line_y) / max(0.04 * width, 1.0), 0.0, 1.0)
    across = np.exp(-0.5 * ((xs - centre_x) / (0.6 * width)) ** 2)
    past_chin = np.exp(-0.5 * (np.maximum(ys - chin_y, 0.0) / (0.5 * width)) ** 2)
    shift = drop * below * across * past_chin
    moved = cv2.remap(image, xs, ys - shift.astype(np.float32), cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_REFLECT101)
    # The opened gap: between the upper inner lip and the lowered lower inner lip.
    top = points[[60, 61, 62, 63, 64]]
    bottom = points[[64, 65, 66, 67, 60]].copy()
    fall = np.exp(-0.5 * ((bottom[:, 0] - centre_x) / (0.6 * width)) ** 2)
    bottom[:, 1] += drop * fall * 0.9
    cover = np.zeros((height, img_w), np.uint8)
    cv2.fillPoly(cover, [np.round(np.vstack([top, bottom]) * 16).astype(np.int32)], 255,
                 lineType=cv2.LINE_AA, shift=4)
    alpha = cv2.GaussianBlur(cover, (5, 5), 0).astype(np.float32)[..., None] / 255.0
    cavity = np.array(CAVITY_RGB, np.float32)
    out = alpha * cavity + (1.0 - alpha) * moved.astype(np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def talking_portrait(image: np.ndarray, landmarks: np.ndarray, amounts: np.ndarray,
                     sway_px: float = 2.0, seed: int = 0) -> Iterator[np.ndarray]:
    """One frame per entry of ``amounts``: the mouth opened that much, the head swaying gently
    (slow sines of about ``sway_px``, as a person sitting still)."""
    rng = np.random.default_rng(seed)
    periods = rng.uniform(60.0, 150.0, size=2)
    phases = rng.uniform(0, 2 * np.pi, size=2)
    for index, amount in enumerate(np.asarray(amounts, np.float64)):
        frame = open_mouth(image, landmarks, float(amount))
        dx, dy = (sway_px * np.sin(2 * np.pi * index / periods + phases)).tolist()
        matrix = np.array([[1.0, 0.0, dx], [0.0, 1.0, 0.6 * dy]])
        yield cv2.warpAffine(frame, matrix, (image.shape[1], image.shape[0]),
                             flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
