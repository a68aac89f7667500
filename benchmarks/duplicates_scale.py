"""What finding duplicate footage costs as a run grows (``gaia.pipeline.duplicates``).

Synthetic frame hashes shaped like talking heads, in memory (no metrics files): videos come in
channels of ``--per-setting`` that share one background (one base hash) and the same few head
poses, the hard case: each frame is the base with one of the channel's six pose patterns,
held for half a second, and a flicker of the channel's edge bits, the way real dHashes repeat
and flicker, so the videos of a channel share keys all the time (tests/test_duplicates.py's
real copies differ by 0-3 bits a frame). A tenth of the videos get a copy: a stretch of them
with the flicker drawn again. Then the signatures and the candidate pairs are computed as a run
would, and the script prints, per size: seconds, peak memory, keys per second of video, the
candidate pairs (against all pairs) and how many planted copies are among them. Verification
(one per candidate, reading two metrics files) is timed by the tests, not here.

    python benchmarks/duplicates_scale.py [--videos 1000 4000] [--seconds 120]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from gaia.pipeline.duplicates.candidates import find_candidates
from gaia.pipeline.duplicates.settings import FindSettings
from gaia.pipeline.duplicates.signature import signature

FPS = 25.0


def _bits(rng: np.random.Generator, count: int) -> np.uint64:
    return np.uint64(sum(1 << int(b) for b in rng.choice(64, count, replace=False)))


def footage(rng: np.random.Generator, setting: tuple, frames: int) -> np.ndarray:
    """One video's hashes (module docstring)."""
    base, patterns, edges = setting
    held = np.repeat(rng.integers(0, len(patterns), frames // 12 + 1), 12)[:frames]
    return base ^ patterns[held] ^ flicker(rng, edges, frames)


def channel(rng: np.random.Generator) -> tuple:
    """A setting its videos share: the background, the head's few poses, the edge bits."""
    return (_bits(rng, 32), np.array([_bits(rng, 6) for _ in range(6)], np.uint64),
            np.array([_bits(rng, 1) for _ in range(6)], np.uint64))


def flicker(rng: np.random.Generator, edges: np.ndarray, frames: int) -> np.ndarray:
    on = rng.random((frames, len(edges))) < 0.05
    return np.bitwise_xor.reduce(np.where(on, edges, np.uint64(0)), axis=1)


def run(videos: int, seconds: float, per_setting: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    frames = int(seconds * FPS)
    times = np.arange(frames) / FPS
    bases = [channel(rng) for _ in range(max(1, videos // per_setting))]
    settings = FindSettings()
    started = time.perf_counter()
    signatures, planted = [], set()
    previous = np.zeros(frames, np.uint64)
    for v in range(videos):
        hashes = footage(rng, bases[v % len(bases)], frames)
        if v % 10 == 9:  # a copy of a stretch of the video before it
            first = int(rng.integers(0, frames // 2))
            source = previous[first:first + frames // 2]
            noise = flicker(rng, np.array([_bits(rng, 1) for _ in range(4)], np.uint64),
                            len(source))
            hashes = np.concatenate([source ^ noise, hashes[len(source):]])
            planted.add((v - 1, v))
        previous = hashes
        signatures.append(signature(times, hashes.view(np.int64), settings.window))
    signed = time.perf_counter() - started
    candidates = find_candidates(signatures, settings)
    paired = {(c.better, c.worse) for c in candidates}
    return {"videos": videos, "hours": videos * seconds / 3600,
            "signature_s": signed, "candidates_s": time.perf_counter() - started - signed,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "keys_per_s": sum(len(s) for s in signatures) / (videos * seconds),
            "candidates": len(candidates), "pairs": len(paired),
            "all_pairs": videos * (videos - 1) // 2,
            "copies_found": len(planted & paired), "copies": len(planted)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, nargs="+", default=[1000, 4000])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--per-setting", type=int, default=20)
    args = parser.parse_args()
    for videos in args.videos:
        r = run(videos, args.seconds, args.per_setting)
        print(f"{r['videos']} videos ({r['hours']:.0f} h): signatures {r['signature_s']:.1f} s, "
              f"candidates {r['candidates_s']:.1f} s, peak {r['peak_mb']:.0f} MB, "
              f"{r['keys_per_s']:.1f} keys per video-second; {r['candidates']} candidates in "
              f"{r['pairs']} pairs of {r['all_pairs']} ({r['pairs'] / r['all_pairs']:.2%}); "
              f"planted copies among them {r['copies_found']}/{r['copies']}")


if __name__ == "__main__":
    main()
