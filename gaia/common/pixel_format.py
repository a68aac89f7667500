"""RGB <-> YUV 4:2:0 conversions through FFmpeg's swscale that give the same bytes on any CPU.

swscale picks SIMD kernels by CPU (SSE, AVX2, AVX-512), and without ``BITEXACT`` and
``ACCURATE_RND`` they round differently: measured here, RGB -> yuv420p of the astronaut photo
moves 2 % of the samples by one level against the exact path. One level is enough to move a
crop box, a landmark, and so a golden loss; the exact path is what FFmpeg's own regression
tests rely on, and costs little next to H.264 encoding. Every RGB<->YUV conversion in our
writer and the training loader goes through here.
"""

from __future__ import annotations

import numpy as np


def _exact(method: str):
    from av.video.reformatter import Interpolation

    return Interpolation[method] | Interpolation.ACCURATE_RND | Interpolation.BITEXACT


def rgb_array(frame, size: int | None = None) -> np.ndarray:
    """A decoded ``av.VideoFrame`` as HxWx3 uint8 RGB; shrunk to ``size`` x ``size`` with
    area averaging when ``size`` is given."""
    resize = {} if size is None else {"width": size, "height": size}
    return frame.to_ndarray(format="rgb24", interpolation=_exact("AREA"), **resize)
