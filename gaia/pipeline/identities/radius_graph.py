"""Candidate pairs for run-wide identities: each track's nearest tracks (and known identities)
within the clustering threshold, from an inverted-file index (k-means lists over the points,
each query searching its ``probes`` nearest lists; exact below ``exact_below`` points).

Step 1 of ``identities.cluster`` (its docstring gives the method). Memory is linear: one list
id per point and at most ``neighbours`` edges per track, never an n x n matrix; distances are
matrix products in blocks of ``block_elements``.
"""

from __future__ import annotations

import math
from typing import Protocol

import numba
import numpy as np


class SearchSettings(Protocol):
    """What the search reads of ``cluster.ClusterConfig`` (named here, not imported: the
    entry point imports this module)."""

    seed: int
    train_per_list: int
    kmeans_iterations: int
    block_elements: int
    exact_below: int
    lists_per_sqrt: float
    probes: int


@numba.njit(cache=True)
def _smallest_rows(block, count):
    """``(rows, count)`` column indices of each row's ``count`` smallest values, smallest first
    (ties: the lower column)."""
    rows, columns = block.shape
    out = np.empty((rows, count), np.int64)
    values = np.empty(count, block.dtype)
    for r in range(rows):
        filled = 0
        for c in range(columns):
            v = block[r, c]
            if filled == count and v >= values[filled - 1]:
                continue
            i = filled if filled < count else count - 1
            while i > 0 and values[i - 1] > v:
                if i < count:
                    values[i] = values[i - 1]
                    out[r, i] = out[r, i - 1]
                i -= 1
            values[i] = v
            out[r, i] = c
            if filled < count:
                filled += 1
    return out


@numba.njit(cache=True)
def _block_hits(products, query_norms, member_norms, asking, members, radius2, same,
                best_d, best_b) -> None:
    """Fold one block into each query's nearest base points under ``radius2`` so far
    (``best_d``/``best_b``: ``(queries, k)``, nearest first, ties: the lower base row). The
    squared distance is ``|q|^2 + |m|^2 - 2 q.m`` from the products; a point is never its own
    neighbour when ``same``."""
    rows, columns = products.shape
    k = best_d.shape[1]
    for r in range(rows):
        row = asking[r]
        qn = query_norms[r]
        for c in range(columns):
            v = qn + member_norms[c] - 2.0 * products[r, c]
            m = members[c]
            if v >= radius2 or (same and row == m):
                continue
            if v > best_d[row, k - 1] or (v == best_d[row, k - 1] and m >= best_b[row, k - 1]
                                          and best_b[row, k - 1] >= 0):
                continue
            i = k - 1
            while i > 0 and (best_d[row, i - 1] > v or (
                    best_d[row, i - 1] == v and best_b[row, i - 1] > m)):
                best_d[row, i] = best_d[row, i - 1]
                best_b[row, i] = best_b[row, i - 1]
                i -= 1
            best_d[row, i] = v
            best_b[row, i] = m


def _nearest(points: np.ndarray, centres: np.ndarray, count: int, rows: int) -> np.ndarray:
    """``(n, count)`` indices of each point's nearest centres, nearest first."""
    centre_norms = np.einsum("ij,ij->i", centres, centres)
    out = np.empty((len(points), count), np.int64)
    for start in range(0, len(points), rows):
        block = centre_norms[None, :] - 2.0 * (points[start:start + rows] @ centres.T)
        if count == 1:
            out[start:start + rows, 0] = np.argmin(block, axis=1)
        else:
            out[start:start + rows] = _smallest_rows(block, count)
    return out


def _kmeans(points: np.ndarray, lists: int, config: SearchSettings) -> np.ndarray:
    """Centres of ``lists`` k-means cells, trained on a seeded sample of ``points``."""
    rng = np.random.default_rng(config.seed)
    size = min(len(points), lists * config.train_per_list)
    sample = points[np.sort(rng.choice(len(points), size=size, replace=False))]
    centres = sample[np.sort(rng.choice(len(sample), size=lists, replace=False))].copy()
    rows = max(1, config.block_elements // lists)
    for _ in range(config.kmeans_iterations):
        cell = _nearest(sample, centres, 1, rows)[:, 0]
        order = np.argsort(cell, kind="stable")
        used, starts = np.unique(cell[order], return_index=True)
        sums = np.add.reduceat(sample[order].astype(np.float64), starts, axis=0)
        counts = np.diff(np.append(starts, len(order)))
        centres[used] = (sums / counts[:, None]).astype(np.float32)
    return centres


def range_search(queries: np.ndarray, base: np.ndarray, radius2: float, k: int,
                  config: SearchSettings,
                  same: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs ``(query row, base row)``: each query's ``k`` nearest base points within the
    radius (squared, ``radius2``), by an inverted file (exact when ``base`` is small); and each
    base point's list (points of one list are near each other). ``same``: queries and base are
    one set; a point is not its own neighbour."""
    empty = np.zeros(0, np.int64)
    if len(queries) == 0 or len(base) == 0:
        return empty, empty, np.zeros(len(base), np.int64)
    lists = 1 if len(base) < config.exact_below else max(
        1, int(round(config.lists_per_sqrt * math.sqrt(len(base)))))
    if lists == 1:
        cell = np.zeros(len(base), np.int64)
        probes = np.zeros((len(queries), 1), np.int64)
    else:
        centres = _kmeans(base, lists, config)
        rows = max(1, config.block_elements // lists)
        cell = _nearest(base, centres, 1, rows)[:, 0]
        probes = _nearest(queries, centres, min(config.probes, lists), rows)
    base_order = np.argsort(cell, kind="stable")
    base_starts = np.searchsorted(cell[base_order], np.arange(lists + 1))
    flat = probes.ravel()
    query_of = np.repeat(np.arange(len(queries)), probes.shape[1])
    query_order = np.argsort(flat, kind="stable")
    query_starts = np.searchsorted(flat[query_order], np.arange(lists + 1))
    query_norms = np.einsum("ij,ij->i", queries, queries)
    base_norms = np.einsum("ij,ij->i", base, base)
    best_d = np.full((len(queries), k), np.inf, np.float32)
    best_b = np.full((len(queries), k), -1, np.int64)
    for cell_id in range(lists):
        members = base_order[base_starts[cell_id]:base_starts[cell_id + 1]]
        asking = query_of[query_order[query_starts[cell_id]:query_starts[cell_id + 1]]]
        if len(members) == 0 or len(asking) == 0:
            continue
        member_points = base[members]
        member_norms = base_norms[members]
        rows = max(1, config.block_elements // len(members))
        for start in range(0, len(asking), rows):
            q = asking[start:start + rows]
            _block_hits(queries[q] @ member_points.T, query_norms[q], member_norms, q, members,
                        np.float32(radius2), same, best_d, best_b)
    query, rank = np.nonzero(best_b >= 0)
    return query, best_b[query, rank], cell


def undirected(a: np.ndarray, b: np.ndarray, nodes: int) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    key = np.unique(lo.astype(np.int64) * nodes + hi)
    return key // nodes, key % nodes
