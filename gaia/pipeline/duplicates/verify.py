"""Is a candidate pair the same footage? Its stored measures, aligned, decide.

Talking heads sit before still backgrounds: two videos of one person in one room hash alike
frame after frame, so matching hashes cannot tell a copy from a second recording. What a copy
keeps and a second recording does not is the *course* of the footage: the same head turns and
the same mouth openings at the same moments. So the two videos' stored series (frame hash,
yaw, pitch, roll, mouth opening) are aligned on the offset the keys proposed (refined frame by
frame within ``search_s``: ``align``), and compared the way Lin's concordance correlation
coefficient (Lin 1989) compares two raters:

    match = 1 - (aligned disagreement) / (unaligned spread)

where the aligned disagreement is the mean squared difference of each measure at the same
moment (the Hamming distance for the hashes, a squared distance on bits) and the unaligned
spread the same mean over every pair of moments (for a measure var(a) + var(b) + (mean(a) -
mean(b))^2, for the hashes computed from each bit's frequency). Each measure counts in units
of its re-encoding noise (``settings``). A copy disagrees by its noise only: match near 1 when
the footage moves. A second recording disagrees as much aligned as not: match near 0. Still
footage has no spread to explain, so its match stays low whatever it is: a static scene is
never taken for a copy on the strength of looking alike. The spread, in noise units, is
stored as ``evidence``.

The overlap is the longest stretch whose match over ``local_s`` holds ``min_local_match``: a
clip cut from a longer upload matches along its length, and the longer upload's other frames,
even of the same room, fall outside. (One stretch per candidate offset: a copy with a middle
part replaced keeps the longer of its two matching stretches at that offset.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gaia.pipeline.duplicates.align import (
    COARSE_FRAMES,
    SEEN,
    Series,
    aligned,
    coarse_frames,
    coarse_offset,
    costs,
    fine_offset,
    mean_cost,
    weights,
)
from gaia.pipeline.duplicates.settings import FindSettings
from gaia.pipeline.media.frame_hash import HASH_BITS


@dataclass(frozen=True)
class Overlap:
    """One verified overlap: ``worse``'s frames ``start_s``..``end_s`` are ``better``'s at
    ``+ offset_s``; the evidence numbers as ``schemas.duplicates`` describes them."""

    start_s: float
    end_s: float
    offset_s: float
    match: float
    evidence: float
    frames: int
    hash_bits: float
    pose_deg: float
    mouth: float


def spread(better: Series, worse: Series, mine: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """The unaligned spread of each series over these frames (module docstring): for the
    hashes from each bit's frequency, for a measure var(a) + var(b) + (mean a - mean b)^2."""
    p = [np.unpackbits(s.hashes[i].view(np.uint8).reshape(-1, HASH_BITS // 8), axis=1)
         .mean(axis=0) for s, i in ((worse, mine), (better, theirs))]
    out = [float(np.sum(p[0] * (1 - p[1]) + p[1] * (1 - p[0])))]
    for column in range(worse.measures.shape[1]):
        a, b = worse.measures[mine, column], better.measures[theirs, column]
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        out.append(float(a.var() + b.var() + (a.mean() - b.mean()) ** 2)
                   if len(a) > 1 and len(b) > 1 else math.nan)
    return np.array(out)


def _longest_run(flags: np.ndarray, breaks: np.ndarray) -> tuple[int, int]:
    """The longest stretch of True in ``flags`` that no ``breaks`` cuts: its first index and
    one past its last."""
    change = np.r_[True, (flags[1:] != flags[:-1]) | breaks[1:]]
    starts = np.flatnonzero(change)
    stops = np.r_[starts[1:], len(flags)]
    starts, stops = starts[flags[starts]], stops[flags[starts]]
    if not len(starts):
        return 0, 0
    best = int(np.argmax(stops - starts))
    return int(starts[best]), int(stops[best])


def _window_sum(values: np.ndarray, half: int) -> np.ndarray:
    """Each value summed with its ``half`` neighbours on either side."""
    padded = np.r_[0.0, np.cumsum(values)]
    index = np.arange(len(values))
    return padded[np.minimum(index + half + 1, len(values))] - padded[np.maximum(index - half,
                                                                                 0)]


def _stretch(better: Series, worse: Series, offset: float, settings: FindSettings,
             frames: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The aligned frames of the longest stretch whose match over ``local_s`` holds
    ``min_local_match`` (of ``frames``, default all), and their disagreements; a frame with no
    frame of the other video breaks a stretch."""
    w = weights(settings)
    mine, theirs = aligned(better, worse, offset, frames)
    disagreement = costs(better, worse, mine, theirs)
    room = np.nan_to_num(spread(better, worse, mine, theirs), nan=0.0)
    seen = np.isfinite(disagreement)
    cost = np.where(seen, disagreement, 0.0) @ w
    scale = np.where(seen, room, 0.0) @ w
    stride = 1 if frames is None else COARSE_FRAMES
    half = max(1, int(round(settings.local_s / (worse.step * stride) / 2)))
    local = 1 - _window_sum(cost, half) / np.maximum(_window_sum(scale, half), 1e-12)
    first, stop = _longest_run(local >= settings.min_local_match,
                               np.r_[False, np.diff(mine) > stride])
    return mine[first:stop], theirs[first:stop], disagreement[first:stop]


def _long_enough(worse: Series, mine: np.ndarray, settings: FindSettings) -> bool:
    return len(mine) >= 2 and (worse.times[mine[-1]] - worse.times[mine[0]] + worse.step
                               >= settings.min_overlap_s)


def verify(better: Series, worse: Series, offset: float, settings: FindSettings
           ) -> Overlap | None:
    """The overlap of ``worse`` with ``better`` near ``offset``, or None when the two are not
    the same footage (module docstring). Most candidates are not: the first pass of the
    alignment already shows no stretch that matches, and the rest is skipped."""
    coarse = coarse_offset(better, worse, offset, settings)
    if coarse is None or not _long_enough(
            worse, _stretch(better, worse, coarse, settings, coarse_frames(worse))[0],
            settings):
        return None
    chosen = fine_offset(better, worse, coarse, settings)
    if chosen is None:
        return None
    mine, theirs, disagreement = _stretch(better, worse, chosen, settings)
    if not _long_enough(worse, mine, settings):
        return None
    w = weights(settings)
    room = spread(better, worse, mine, theirs)
    counted = (np.isfinite(disagreement).mean(axis=0) >= SEEN) & np.isfinite(room)
    evidence = float(w[counted] @ room[counted])
    match = 1 - mean_cost(np.where(counted, disagreement, np.nan), w) / evidence \
        if evidence > 0 else 0.0
    if match < settings.min_match:
        return None
    pose, mouth = disagreement[:, 1:4], disagreement[:, 4]
    return Overlap(float(worse.times[mine[0]]), float(worse.times[mine[-1]]), chosen, match,
                   evidence, len(mine), float(disagreement[:, 0].mean()),
                   float(np.sqrt(np.nanmean(pose))) if np.isfinite(pose).any() else math.nan,
                   float(np.sqrt(np.nanmean(mouth))) if np.isfinite(mouth).any() else math.nan)
