"""Real faces at ordinary framing: a person in a 720p, 1080p or 4K frame (docs/test-media.md).

Interview, lecture and news footage show the face at 8-15 % of the frame width, not as a
close-up. These frames put a real face (any portrait, the astronaut photo by default) at a
chosen width in source pixels over a real background (a street frame of ``bikes.mp4``,
enlarged and softened as a shallow depth of field would), with the portrait's own
surroundings feathered in so there is no hard rectangle around the head.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import cv2
import numpy as np

from gaia.samples.clips import resize_to

# Where the astronaut photo's face is (dlib's HOG box on the 512 x 512 image, rounded): the
# scale that makes it ``face_px`` wide is computed from this width.
ASTRONAUT_FACE_WIDTH = 104.0
SIZES = {"720p": (1280, 720), "1080p": (1920, 1080), "4k": (3840, 2160)}


def background(size: tuple[int, int]) -> np.ndarray:
    """A real street frame (bikes.mp4) at ``size`` (width, height), softened."""
    import decord

    from gaia.samples.shipped import bikes_path

    frame = decord.VideoReader(str(bikes_path()))[10].asnumpy()
    big = resize_to(frame, size[0], size[1])
    sigma = max(size) / 400.0
    return cv2.GaussianBlur(big, (0, 0), sigma)


def place_portrait(canvas: np.ndarray, portrait: np.ndarray, face_width: float,
                   portrait_face_width: float, centre: tuple[float, float]) -> np.ndarray:
    """``portrait`` scaled so its face is ``face_width`` px, pasted with a feathered edge so
    its face centre lands at ``centre`` (x, y as shares of the canvas)."""
    scale = face_width / portrait_face_width
    height, width = portrait.shape[:2]
    scaled = resize_to(portrait, max(2, round(width * scale)), max(2, round(height * scale)))
    sh, sw = scaled.shape[:2]
    ch, cw = canvas.shape[:2]
    x0 = int(round(centre[0] * cw - sw / 2))
    y0 = int(round(centre[1] * ch - sh / 2))
    # An elliptical feather (1 inside, 0 at the border): the portrait fades into the scene.
    yy, xx = np.mgrid[0:sh, 0:sw]
    r = np.hypot((xx - sw / 2) / (sw / 2), (yy - sh / 2) / (sh / 2))
    alpha = np.clip((1.0 - r) / 0.25, 0.0, 1.0)[..., None]
    out = canvas.copy()
    cx0, cy0 = max(0, x0), max(0, y0)
    cx1, cy1 = min(cw, x0 + sw), min(ch, y0 + sh)
    if cx1 <= cx0 or cy1 <= cy0:
        return out
    px0, py0 = cx0 - x0, cy0 - y0
    patch = scaled[py0:py0 + cy1 - cy0, px0:px0 + cx1 - cx0].astype(np.float32)
    a = alpha[py0:py0 + cy1 - cy0, px0:px0 + cx1 - cx0]
    region = out[cy0:cy1, cx0:cx1].astype(np.float32)
    out[cy0:cy1, cx0:cx1] = np.clip(a * patch + (1 - a) * region + 0.5, 0, 255).astype(np.uint8)
    return out


def wide_shot_frames(portrait_frames: Iterable[np.ndarray], size: tuple[int, int],
                     face_width: float, portrait_face_width: float = ASTRONAUT_FACE_WIDTH,
                     centre: tuple[float, float] = (0.38, 0.4)) -> Iterator[np.ndarray]:
    """Each portrait frame (a still photo moving, a talking portrait) placed in a wide shot."""
    scene = background(size)
    for portrait in portrait_frames:
        yield place_portrait(scene, portrait, face_width, portrait_face_width, centre)
