"""Average-linkage agglomeration on a radius graph, for run-wide identities: step 2 of
``identities.cluster`` (its docstring gives the method and why average linkage).

One heap of entries "node o's best neighbour is t at linkage c" (with o's ticket and t's
version when computed). The popped entry whose two ends are unchanged is a smallest linkage
of the graph, and those two merge, because every edge under the limit is covered: at least
one of its ends holds a current entry whose linkage is at most that end's true best.
Average linkage is reducible (a merge never brings a third cluster closer than the nearer of
its parts was), so an entry stays such a bound when its target changes; it is recomputed
when popped. A merged cluster recomputes its best over its edges, except a large one
(``passive_degree`` neighbours or more, a person in hundreds of videos): it would read every
pending neighbour at each of its merges, a cost growing with the square of the person's
tracks. Its edges to ordinary clusters are covered by their own entries, so such a
"passive" cluster only keeps an entry over its edges to other passive clusters, in a second
list of edges that only they hold.
"""

from __future__ import annotations

import numba
import numpy as np


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
def agglomerate(mean, weight, spread, fixed, edge_a, edge_b, limit, passive_degree):
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
