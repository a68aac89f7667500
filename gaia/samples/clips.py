"""Frame makers that turn one real portrait into short synthetic clips (pure numpy and cv2).

Each maker is built to trip one curation filter and leave the others alone (docs/test-media.md):
``portrait_motion`` is a person sitting still and breathing (passes), ``add_shake`` is a shaking
camera (jitter), ``paint_mask`` a surgical mask (occlusion) and ``turn_head`` a face turned
sideways (frontal angle). Landmarks are in iBUG 68 order, 0-based, ``(68, 2)`` x/y pixels.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import cv2
import numpy as np

MASK_RGB = (168, 206, 232)  # the light blue of a surgical mask


def resize_to(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` resized to ``width`` x ``height`` (area filter to shrink, cubic to enlarge)."""
    shrink = width * height < image.shape[0] * image.shape[1]
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    return cv2.resize(image, (int(width), int(height)), interpolation=interpolation)


def _shifted(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    return cv2.warpAffine(
        image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101
    )


def _smooth_wave(
    rng: np.random.Generator, n_frames: int, periods: tuple[float, float]
) -> np.ndarray:
    """A sum of three slow sines with random periods (frames) and phases, peak about 1."""
    t = np.arange(n_frames, dtype=np.float64)
    wave = np.zeros(n_frames)
    for weight in (1.0, 0.5, 0.25):
        period = rng.uniform(*periods)
        wave += weight * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    return wave / 1.75


def portrait_motion(
    image: np.ndarray, n_frames: int, seed: int = 0, amplitude_px: float = 3.0
) -> Iterator[np.ndarray]:
    """Frames of ``image`` with a slow sway (about ``amplitude_px``) and a breathing zoom.

    Periods are 40 to 160 frames, so between two frames the face moves a small fraction of a
    pixel: like a person sitting still, well inside any jitter threshold.
    """
    rng = np.random.default_rng(seed)
    dx = amplitude_px * _smooth_wave(rng, n_frames, (60.0, 160.0))
    dy = 0.6 * amplitude_px * _smooth_wave(rng, n_frames, (50.0, 140.0))
    zoom = 1.0 + 0.006 * _smooth_wave(rng, n_frames, (40.0, 100.0))
    angle = 0.4 * _smooth_wave(rng, n_frames, (80.0, 160.0))  # degrees
    height, width = image.shape[:2]
    centre = (width / 2.0, height / 2.0)
    for index in range(n_frames):
        matrix = cv2.getRotationMatrix2D(centre, float(angle[index]), float(zoom[index]))
        matrix[:, 2] += (dx[index], dy[index])
        yield _shifted(image, matrix)


def add_shake(
    frames: Iterable[np.ndarray], amplitude_px: float, seed: int = 0
) -> Iterator[np.ndarray]:
    """``frames`` each moved by an independent random offset of about ``amplitude_px``.

    Unlike ``portrait_motion`` the offsets are not smooth: consecutive frames jump by about
    the amplitude, as with a hand-held camera shaking.
    """
    rng = np.random.default_rng(seed)
    for frame in frames:
        direction = rng.uniform(0, 2 * np.pi)
        length = amplitude_px * rng.uniform(0.5, 1.5)
        matrix = np.array(
            [[1.0, 0.0, length * np.cos(direction)], [0.0, 1.0, length * np.sin(direction)]]
        )
        yield _shifted(frame, matrix)


def _check_landmarks(landmarks: np.ndarray) -> np.ndarray:
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"landmarks must be (68, 2) iBUG points, got {points.shape}")
    return points


def paint_mask(image: np.ndarray, landmarks: np.ndarray, shading: float = 0.35) -> np.ndarray:
    """A copy of ``image`` with a light-blue surgical mask over the lower face.

    The mask follows the jaw (points 1..15) and rises to the nose bridge at point 29, grown
    by 3% of the face width around its centre so that the mouth and chin are fully covered.
    Its colour is flat; ``shading`` is the share of the face's own brightness kept under it
    (cloth follows the shape of the face). With ``shading=0`` the mask is one flat colour,
    and dlib's HOG detector then no longer finds the face at all (score about -0.6 on the
    astronaut), so the clip would be dropped for "no face" rather than for the occlusion.
    """
    points = _check_landmarks(landmarks)
    if not 0.0 <= shading <= 1.0:
        raise ValueError(f"shading must be in [0, 1], got {shading}")
    jaw = points[1:16]
    bridge = points[29]
    right_top = (jaw[-1][0], min(jaw[-1][1], bridge[1]))
    left_top = (jaw[0][0], min(jaw[0][1], bridge[1]))
    polygon = np.vstack([jaw, right_top, bridge, left_top])
    centre = polygon.mean(axis=0)
    width = np.linalg.norm(points[16] - points[0])
    offsets = polygon - centre
    lengths = np.linalg.norm(offsets, axis=1, keepdims=True)
    polygon = polygon + offsets / np.maximum(lengths, 1e-6) * 0.03 * width
    shift = 4  # sub-pixel precision bits for cv2's polygon filler
    vertices = np.round(polygon * (1 << shift)).astype(np.int32)
    cover = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(cover, [vertices], 255, lineType=cv2.LINE_AA, shift=shift)
    alpha = (cover.astype(np.float32) / 255.0)[..., None]

    face = cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    cloth = cv2.cvtColor(np.array([[MASK_RGB]], np.uint8), cv2.COLOR_RGB2YCrCb)[0, 0]
    painted = np.empty_like(face)
    painted[..., 0] = shading * face[..., 0] + (1.0 - shading) * float(cloth[0])
    painted[..., 1:] = cloth[1:].astype(np.float32)
    painted = cv2.cvtColor(np.clip(painted + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_YCrCb2RGB)
    blended = alpha * painted.astype(np.float32) + (1.0 - alpha) * image.astype(np.float32)
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def turn_head(
    image: np.ndarray, landmarks: np.ndarray, strength: float = 0.25, roll_deg: float = 0.0
) -> np.ndarray:
    """``image`` warped so the face looks turned (yaw): nose and mouth move sideways.

    Points near the nose and mouth move by ``strength`` x the inter-ocular distance (outer eye
    corners 36 and 45) along the eye line, with a Gaussian falloff around them; a smooth gate
    keeps everything at and above the eye line in place, so the eye corners stay fixed.
    ``roll_deg`` then tilts the whole picture about the nose tip (counter-clockwise when
    positive), in the same resampling.

    dlib's HOG detector follows the warp only so far: on the astronaut its score falls from
    1.5 to 0.3 at ``strength=0.25`` and below zero (no face) from about 0.33, so the default
    stays where the face is still found and the frontal angle is what drops the clip.
    """
    points = _check_landmarks(landmarks)
    eye_r, eye_l, nose = points[36], points[45], points[30]
    across = eye_l - eye_r
    iod = float(np.linalg.norm(across))
    if iod < 1.0:
        raise ValueError("the eye corners 36 and 45 coincide")
    u = across / iod  # along the eye line
    v = np.array([-u[1], u[0]])  # towards the mouth
    mouth = points[48:68].mean(axis=0)
    centre = (nose + mouth) / 2.0
    height, width = image.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    if roll_deg:  # where each output pixel sits before the tilt
        forward = cv2.getRotationMatrix2D((float(nose[0]), float(nose[1])), roll_deg, 1.0)
        back = cv2.invertAffineTransform(forward)
        xs, ys = (
            back[0, 0] * xs + back[0, 1] * ys + back[0, 2],
            back[1, 0] * xs + back[1, 1] * ys + back[1, 2],
        )
    rel_x, rel_y = xs - centre[0], ys - centre[1]
    a = rel_x * u[0] + rel_y * u[1]  # sideways from the centre
    b = rel_x * v[0] + rel_y * v[1]  # down from the centre
    b_eyes = float((((eye_r + eye_l) / 2.0) - centre) @ v)
    b_nose = float((nose - centre) @ v)
    gate = _smoothstep((b - b_eyes) / max(b_nose - b_eyes, 1.0))
    sigma_a, sigma_b = 0.6 * iod, 1.0 * iod
    falloff = np.exp(-0.5 * (a / sigma_a) ** 2 - 0.5 * (np.maximum(b, 0.0) / sigma_b) ** 2)
    shift = strength * iod * gate * falloff
    map_x = (xs - shift * u[0]).astype(np.float32)
    map_y = (ys - shift * u[1]).astype(np.float32)
    return cv2.remap(
        image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101
    )
