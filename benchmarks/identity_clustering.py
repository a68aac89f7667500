"""Run-wide identities (``gaia.pipeline.identities``): quality on real faces, then speed, memory
and quality at 100,000 videos of synthetic tracks drawn from the real faces' statistics.

GAIA, section 3 and Table 1 count people (#IDs); appendix A's splits need one identity per
person across a run. In one run of this script:

1. **Real faces** (``gaia.samples.identity_faces``: 12 people, 79 faces from the wheels'
   photos and videos, dlib embeddings of gaia's own landmarks): pairwise precision and recall of
   "same identity" over every pair of faces, for a plain distance threshold and for
   ``cluster_tracks`` (each face a one-embedding track), at several thresholds.
   The same faces give the statistics of step 2: how far a face lies from its person's mean
   (people with 5 faces or more), and how far apart the people's means are.
2. **Synthetic runs** of 10,000, 30,000 and 100,000 videos, 3 person tracks each, each in a
   child process (so its peak memory is its own): identities' centres are Gaussian in a
   subspace whose dimension and scale give the real between-person distances (mean and
   spread); a track lies at a distance from its identity's centre drawn from the real faces'
   distances to their person's mean, in a random direction (so a track is as far from its
   person as one real face: conservative, as a track averages several); one identity per 4
   videos, with Zipf-like popularity (a few people in hundreds of videos, most in one or two),
   3 different people per video. Printed per run: tracks, seconds, peak RSS (the process, and
   its growth during the clustering), the ratio of the clustering's time to a reference
   measured in the same process after it (one product of every track with 1,024 tracks, in
   blocks: what the machine's BLAS does in that time), pairwise precision / recall against the synthetic truth,
   identities found against true ones. Then the largest run grows by a tenth (10,000 more
   videos), clustered incrementally against its identities (known ids kept).

Aim: 100,000 videos (300,000 tracks) in under 5 minutes on 2 cores; memory growing linearly
(compare the three sizes' growth).

    python benchmarks/identity_clustering.py [--videos 10000,30000,100000]
        [--thresholds 0.4,0.45,0.5,0.55,0.6] [--threshold 0.5] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

DIM = 128
TRACKS_PER_VIDEO = 3
VIDEOS_PER_IDENTITY = 4


# ---------------------------------------------------------------------------- real faces


def pair_scores(same_pred: np.ndarray, same_true: np.ndarray) -> tuple[float, float]:
    """Pairwise precision and recall from boolean arrays over the same pairs."""
    hits = int((same_pred & same_true).sum())
    return hits / max(int(same_pred.sum()), 1), hits / max(int(same_true.sum()), 1)


def real_faces(thresholds: list[float]) -> dict:
    """Step 1: the real faces' precision / recall table and their statistics for step 2."""
    from gaia.pipeline.identities import ClusterConfig, cluster_tracks
    from gaia.samples.identity_faces import embed_faces, full_set

    started = time.perf_counter()
    embeddings, persons, _ = embed_faces(full_set())
    seconds = time.perf_counter() - started
    people = np.asarray(persons)
    names = sorted(set(persons))
    print(f"real faces: {len(embeddings)} faces of {len(names)} people, embedded in "
          f"{seconds:.0f} s ({', '.join(f'{p} {int((people == p).sum())}' for p in names)})")
    x = embeddings.astype(np.float64)
    upper = np.triu_indices(len(x), 1)
    distance = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))[upper]
    same = (people[:, None] == people[None])[upper]
    print(f"  {len(same)} pairs, {int(same.sum())} same-person; same-person distance median "
          f"{np.median(distance[same]):.3f}, p95 {np.percentile(distance[same], 95):.3f}; "
          f"different people: min {distance[~same].min():.3f}, median "
          f"{np.median(distance[~same]):.3f}")
    print("  threshold | pairs under it: precision recall | cluster_tracks: precision recall "
          f"ids (true {len(names)}) | people merged")
    for threshold in thresholds:
        p_pair, r_pair = pair_scores(distance < threshold, same)
        result = cluster_tracks(embeddings, np.ones(len(x), np.int64), None,
                                ClusterConfig(threshold=threshold))
        ident = result.identity
        p_clu, r_clu = pair_scores((ident[:, None] == ident[None])[upper], same)
        merged = sorted({"+".join(sorted(set(people[ident == i]))) for i in set(ident.tolist())
                         if len(set(people[ident == i])) > 1})
        print(f"  {threshold:9.2f} | {p_pair:9.3f} {r_pair:6.3f} | {p_clu:9.3f} {r_clu:6.3f} "
              f"{result.new:4d} | {', '.join(merged) or '-'}")
    means = np.stack([x[people == p].mean(axis=0) for p in names])
    between = np.sqrt(((means[:, None] - means[None]) ** 2).sum(-1))[
        np.triu_indices(len(names), 1)]
    radii = np.concatenate([np.linalg.norm(x[people == p] - means[names.index(p)], axis=1)
                            for p in names if (people == p).sum() >= 5])
    stats = {"between_mean": float(between.mean()), "between_std": float(between.std()),
             "within_radii": radii.round(5).tolist(), "centre": x.mean(axis=0).tolist()}
    print(f"  statistics: people's means {between.mean():.3f} +- {between.std():.3f} apart "
          f"({len(between)} pairs); a face from its person's mean: median "
          f"{np.median(radii):.3f}, p95 {np.percentile(radii, 95):.3f} ({len(radii)} faces)")
    return stats


# ----------------------------------------------------------------------------- synthetic


def synthetic(videos: int, stats: dict, seed: int,
              host: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tracks ``(n, 128)`` float32, their sizes and their true identity (module docstring);
    ``host``: identity 0 is in every video (a channel's presenter)."""
    rng = np.random.default_rng(seed)
    identities = max(TRACKS_PER_VIDEO, videos // VIDEOS_PER_IDENTITY)
    mean, std = stats["between_mean"], stats["between_std"]
    # |a - b| for a, b ~ N(0, s^2 I_d): mean ~ s sqrt(2d - 1), std ~ s.
    dims = int(np.clip(round(((mean / std) ** 2 + 1) / 2), 2, DIM))
    basis = np.linalg.qr(rng.normal(size=(DIM, dims)))[0]
    centres = (np.asarray(stats["centre"]) + (rng.normal(size=(identities, dims)) * std)
               @ basis.T).astype(np.float32)
    popularity = (np.arange(identities) + 20.0) ** -1.1
    popularity /= popularity.sum()
    truth = rng.choice(identities, size=(videos, TRACKS_PER_VIDEO), p=popularity)
    if host:
        truth[:, 0] = 0
    while True:  # three different people in each video
        clash = (truth[:, 0] == truth[:, 1]) | (truth[:, 0] == truth[:, 2]) | (
            truth[:, 1] == truth[:, 2])
        if not clash.any():
            break
        truth[clash] = rng.choice(identities, size=(int(clash.sum()), TRACKS_PER_VIDEO),
                                  p=popularity)
        if host:
            truth[:, 0] = 0
    truth = truth.ravel()
    radii = np.asarray(stats["within_radii"])
    tracks = np.empty((len(truth), DIM), np.float32)
    for start in range(0, len(truth), 50_000):
        part = slice(start, start + 50_000)
        direction = rng.normal(size=(len(truth[part]), DIM))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        tracks[part] = centres[truth[part]] + rng.choice(radii, size=len(direction))[:, None] \
            * direction
    sizes = rng.geometric(1 / 8, size=len(truth)).astype(np.int64)
    return tracks, sizes, truth


def pairwise(predicted: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Pairwise precision and recall of a clustering against the truth, from counts."""
    def pairs(labels: np.ndarray) -> int:
        counts = np.unique(labels, return_counts=True)[1].astype(np.int64)
        return int((counts * (counts - 1) // 2).sum())

    joint = pairs(predicted.astype(np.int64) * (int(truth.max()) + 1) + truth)
    return joint / max(pairs(predicted), 1), joint / max(pairs(truth), 1)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def child(videos: int, threshold: float, stats: dict, seed: int, grow: bool,
          host: bool) -> dict:
    """One synthetic run in this process; the figures as a dict."""
    from gaia.pipeline.identities import ClusterConfig, cluster_tracks

    config = ClusterConfig(threshold=threshold)
    tracks, sizes, truth = synthetic(videos + (videos // 10 if grow else 0), stats, seed, host)
    cluster_tracks(tracks[:500], sizes[:500], None, config)  # numba's cached code loaded
    split = videos * TRACKS_PER_VIDEO
    before = rss_mb()
    started = time.perf_counter()
    result = cluster_tracks(tracks[:split], sizes[:split], None, config)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out_buffer = np.empty((16384, 1024), np.float32)
    reference = []  # after the peak was read: one product of every track with 1,024 tracks
    for _ in range(3):
        started = time.perf_counter()
        for start in range(0, split, len(out_buffer)):
            block = tracks[start:min(start + len(out_buffer), split)]
            np.matmul(block, tracks[:1024].T, out=out_buffer[:len(block)])
        reference.append(time.perf_counter() - started)
    del out_buffer
    precision, recall = pairwise(result.identity, truth[:split])
    out = {"videos": split // TRACKS_PER_VIDEO, "tracks": split, "seconds": seconds,
           "reference_s": min(reference), "rss_before_mb": before, "peak_mb": peak,
           "precision": precision, "recall": recall, "found": result.new,
           "true": int(len(np.unique(truth[:split]))), "edges": result.edges,
           "merges": result.merges, "largest": int(np.bincount(truth[:split]).max())}
    if grow:
        started = time.perf_counter()
        more = cluster_tracks(tracks[split:], sizes[split:], result.identities, config)
        grow_s = time.perf_counter() - started
        known_ids = set(result.identities.ids.tolist())
        joined = np.isin(more.identity, list(known_ids))
        assert more.identities.ids[:len(known_ids)].tolist() == result.identities.ids.tolist()
        assert (more.identity[~joined] > max(known_ids)).all()
        both = np.concatenate([result.identity, more.identity])
        precision, recall = pairwise(both, truth)
        out["grow"] = {"videos": (len(tracks) - split) // TRACKS_PER_VIDEO,
                       "seconds": grow_s, "joined_known": float(joined.mean()),
                       "new": more.new, "precision": precision, "recall": recall,
                       "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    return out


def run_child(videos: int, threshold: float, stats: dict, seed: int, grow: bool = False,
              host: bool = False) -> dict:
    command = [sys.executable, __file__, "--child", str(videos), "--threshold", str(threshold),
               "--seed", str(seed)] + (["--grow"] if grow else []) + (["--host"] if host else [])
    done = subprocess.run(command, input=json.dumps(stats), capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", default="10000,30000,100000")
    parser.add_argument("--thresholds", default="0.4,0.45,0.5,0.55,0.6",
                        help="the real faces' table")
    parser.add_argument("--threshold", type=float, default=None,
                        help="the synthetic runs' (default: ClusterConfig's)")
    parser.add_argument("--sweep", default="", help="extra thresholds for the smallest run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--grow", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--host", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    from gaia.pipeline.identities import ClusterConfig

    threshold = args.threshold or ClusterConfig().threshold
    if args.child:
        stats = json.loads(sys.stdin.read())
        print(json.dumps(child(args.child, threshold, stats, args.seed, args.grow, args.host)))
        return
    stats = real_faces([float(t) for t in args.thresholds.split(",")])
    sizes = [int(v) for v in args.videos.split(",")]
    print(f"\nsynthetic runs, threshold {threshold}, {TRACKS_PER_VIDEO} tracks a video, one "
          f"identity per {VIDEOS_PER_IDENTITY} videos")
    print("  videos   tracks | seconds  x ref | RSS before  peak  growth MB | precision "
          "recall | ids found / true | largest identity (tracks)")
    for videos in sizes:
        r = run_child(videos, threshold, stats, args.seed, grow=videos == max(sizes))
        print(f"  {r['videos']:6d} {r['tracks']:8d} | {r['seconds']:7.1f} {r['seconds'] / r['reference_s']:6.0f}"
              f" | {r['rss_before_mb']:10.0f} {r['peak_mb']:5.0f} "
              f"{r['peak_mb'] - r['rss_before_mb']:7.0f}    | {r['precision']:9.3f} "
              f"{r['recall']:6.3f} | {r['found']:6d} / {r['true']:6d} | {r['largest']}")
        if "grow" in r:
            g = r["grow"]
            print(f"  grown by {g['videos']} videos against {r['found']} known identities: "
                  f"{g['seconds']:.1f} s, {g['joined_known']:.1%} of the new tracks joined a "
                  f"known identity, {g['new']} new; whole run precision {g['precision']:.3f} "
                  f"recall {g['recall']:.3f}; peak RSS {g['peak_mb']:.0f} MB")
    r = run_child(max(sizes), threshold, stats, args.seed, host=True)
    print(f"  one person in every video (a channel's presenter), {r['videos']} videos: "
          f"{r['seconds']:.1f} s, peak RSS {r['peak_mb']:.0f} MB, precision "
          f"{r['precision']:.3f} recall {r['recall']:.3f}, ids {r['found']} / {r['true']}, "
          f"largest identity {r['largest']} tracks")
    for extra in [float(t) for t in args.sweep.split(",") if t]:
        r = run_child(min(sizes), extra, stats, args.seed, grow=False)
        print(f"  threshold {extra}: {r['videos']} videos, precision {r['precision']:.3f} "
              f"recall {r['recall']:.3f}, ids {r['found']} / {r['true']}, {r['seconds']:.1f} s")


if __name__ == "__main__":
    main()
