"""Draw 68 face landmarks as an image: the motion encoder's input (paper, section 4.1).

GAIA's motion encoder sees frame j's landmarks rendered as an image. We draw the 68-point iBUG
face as anti-aliased polylines, one channel per part (jaw, brows, nose, eyes, outer lips, inner
lips; ``channels=6``) or all parts in one channel (``channels=1``). Values lie in [-1, 1] like
the frames: -1 is background, +1 a line's core.

Coordinates: ``points`` are continuous pixel coordinates ``(x, y)`` of a ``source_size`` image
where pixel ``(row r, col c)`` covers ``[c, c + 1) x [r, r + 1)`` (the convention of the crop's
``to_crop_pixels``, a pure scaling); they are scaled by ``size / source_size``. A pixel's
intensity is the coverage of a line of width ``line_width`` seen through a one-pixel box
filter, approximated from the distance ``dist`` of the pixel's centre to the nearest segment of
its part: ``clamp(line_width / 2 + 0.5 - dist, 0, 1)``.

Pure torch, no cv2: the same float32 arithmetic on CPU and CUDA (equal up to rounding: CUDA
may fuse a multiply-add), deterministic (a maximum does not depend on the order it is taken
in), and batched. Each segment is drawn in a small window
around it (all segments of the batch at once), then merged into the image with a scatter
maximum, so the cost follows the length of the lines, not the image area. A pixel's value does
not depend on the rest of the batch. Not differentiable (the landmarks are data).
"""

from __future__ import annotations

import torch
from torch import Tensor

# 68-point iBUG parts: (name, first index, last index inclusive, closed polygon)
PARTS: tuple[tuple[str, tuple[tuple[int, int, bool], ...]], ...] = (
    ("jaw", ((0, 16, False),)),
    ("brows", ((17, 21, False), (22, 26, False))),
    ("nose", ((27, 30, False), (30, 33, False), (31, 35, False))),
    ("eyes", ((36, 41, True), (42, 47, True))),
    ("outer_lips", ((48, 59, True),)),
    ("inner_lips", ((60, 67, True),)),
)
NUM_PARTS = len(PARTS)


def _segments(runs: tuple[tuple[int, int, bool], ...]) -> list[tuple[int, int]]:
    pairs: list[tuple[int, int]] = []
    for first, last, closed in runs:
        pairs += [(i, i + 1) for i in range(first, last)]
        if closed:
            pairs.append((last, first))
    return pairs


SEGMENTS: tuple[tuple[int, int], ...] = tuple(
    pair for _, runs in PARTS for pair in _segments(runs))
SEGMENT_PARTS: tuple[int, ...] = tuple(
    part for part, (_, runs) in enumerate(PARTS) for _ in _segments(runs))


def render_landmarks(points: Tensor, size: int, source_size: int = 256,
                     line_width: float = 2.0, channels: int = NUM_PARTS) -> Tensor:
    """``points`` (B, 68, 2) in pixels of a ``source_size`` image -> (B, channels, size, size)
    in [-1, 1]; ``line_width`` in pixels of the output. ``channels`` is 6 (one per part of
    ``PARTS``) or 1 (all parts together). Segments with a non-finite end draw nothing."""
    if points.ndim != 3 or points.shape[1:] != (68, 2):
        raise ValueError(f"points must be (B, 68, 2), got {tuple(points.shape)}")
    if channels not in (1, NUM_PARTS):
        raise ValueError(f"channels must be 1 or {NUM_PARTS}, not {channels}")
    batch, device = points.shape[0], points.device
    pts = points.detach().float() * (size / source_size)
    first = torch.tensor([i for i, _ in SEGMENTS], device=device)
    second = torch.tensor([j for _, j in SEGMENTS], device=device)
    a, b = pts[:, first], pts[:, second]  # (B, S, 2)
    finite = torch.isfinite(a).all(-1) & torch.isfinite(b).all(-1)  # (B, S)
    a = torch.where(finite[..., None], a, torch.zeros_like(a))
    b = torch.where(finite[..., None], b, torch.zeros_like(b))
    reach = line_width / 2 + 0.5
    # Each segment only lights pixels within ``reach`` of it: draw it in its own window of
    # side ``window`` from its box's corner ``lo``, then take the maximum into the image.
    lo = (torch.minimum(a, b) - reach).floor().clamp(-1, size)
    hi = (torch.maximum(a, b) + reach).ceil().clamp(-1, size)
    span = (hi - lo)[finite]
    window = int(span.max().item()) + 1 if span.numel() else 1
    out = torch.zeros(batch * NUM_PARTS * size * size + 1, device=device)
    # Chunks of segments bound the memory to about 2^24 window pixels.
    step = max(1, (1 << 24) // max(1, batch * window * window))
    for start in range(0, len(SEGMENTS), step):
        part = slice(start, start + step)
        values, index = _segment_windows(a[:, part], b[:, part], lo[:, part], finite[:, part],
                                         SEGMENT_PARTS[part], window, size, reach)
        out.scatter_reduce_(0, index.flatten(), values.flatten(), reduce="amax")
    image = out[:-1].view(batch, NUM_PARTS, size, size)
    if channels == 1:
        image = image.amax(dim=1, keepdim=True)
    return image * 2.0 - 1.0


def _segment_windows(a: Tensor, b: Tensor, lo: Tensor, finite: Tensor, parts: tuple[int, ...],
                     window: int, size: int, reach: float) -> tuple[Tensor, Tensor]:
    """Coverage (B, S, window, window) of segments ``a``-``b`` (each (B, S, 2)) in windows
    from ``lo``, and each window pixel's index in the flattened (B, parts, size, size) image
    (the spare last slot for pixels outside the image or segments not drawn)."""
    batch, count = a.shape[:2]
    steps = torch.arange(window, device=a.device, dtype=torch.float32)
    col = lo[..., 0, None, None] + steps.view(1, 1, 1, window)  # (B, S, 1, W) pixel columns
    row = lo[..., 1, None, None] + steps.view(1, 1, window, 1)  # (B, S, W, 1) pixel rows
    ax, ay = a[..., 0, None, None], a[..., 1, None, None]
    ex, ey = (b - a)[..., 0, None, None], (b - a)[..., 1, None, None]
    px, py = col + 0.5, row + 0.5  # pixel centres
    t = (((px - ax) * ex + (py - ay) * ey) / (ex * ex + ey * ey).clamp_min(1e-12)).clamp(0, 1)
    dx, dy = px - ax - t * ex, py - ay - t * ey
    values = (reach - torch.sqrt(dx * dx + dy * dy)).clamp(0.0, 1.0)
    inside = (col >= 0) & (col < size) & (row >= 0) & (row < size) & finite[..., None, None]
    part = torch.tensor(parts, device=a.device).view(1, count, 1, 1)
    sample = torch.arange(batch, device=a.device).view(batch, 1, 1, 1)
    index = ((sample * NUM_PARTS + part) * size + row.long()) * size + col.long()
    spare = batch * NUM_PARTS * size * size
    index = torch.where(inside, index, torch.full_like(index, spare))
    return torch.where(inside, values, torch.zeros_like(values)), index
