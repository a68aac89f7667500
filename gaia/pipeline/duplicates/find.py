"""Find the footage a measured run holds more than once, from its stored measures only.

Web-scale talking-head corpora hold the same footage many times (a re-upload, a re-encode, a
rescaled copy, a clip cut from a longer upload), and the paper's Table 1 counts hours: footage
counted twice is hours that are not there, and a clip in both splits is a leak. Nothing is
decoded here: each video's signature is a few keys per second cut from the frame hashes
measure stored (``signature``), pairs of videos that share keys at a consistent offset are the
candidates (``candidates``: banded LSH, never all pairs), and each candidate is verified on its
aligned measures (``verify``).

Which copy stays: the videos are ranked, and of each overlap the lower-ranked video's frames
are the ones dropped (``rank``): with sound before without (the speech-to-motion model needs
the sound; the VAE takes either), then more pixels, then more bytes per second (the better
encode), then the longer, then by source and path (a deterministic tie-break). A longer
upload that holds a clip keeps its other footage; only the overlapping stretch of one of the
two goes.

Cost, linear in the run's hours: reading two columns of every metrics file; about 8 keys per
second of video (13 bytes each: about 3 GB for the paper's 8,206 raw hours); six sorts of
those keys; votes only within keys held by at most ``max_key_videos`` videos, counted into
(pair, offset) cells as they are made; then one verification per candidate, which reads the
two videos' five series and tries about 20 offsets (about 17 ms for two 5-minute videos), in
worker processes when there are many. The candidates are the pairs that share footage or a
setting (the same room, the same person, a studio), never all V^2 pairs:
``benchmarks/duplicates_scale.py`` gives the figures for channels of videos that share a
background and the same poses, the hard case.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from gaia.pipeline.duplicates.align import Series, read_series
from gaia.pipeline.duplicates.candidates import Candidate, find_candidates
from gaia.pipeline.duplicates.settings import FindSettings
from gaia.pipeline.duplicates.signature import Signature, signature
from gaia.pipeline.duplicates.verify import verify

VIDEO_COLUMNS = ("video_id", "path", "source", "status", "has_audio", "width", "height",
                 "size_bytes", "duration_s")
SERIES_CACHE = 64  # videos whose series a worker keeps while it verifies its candidates
CHUNK = 256  # candidates per job; in rank order, so a chunk mostly shares its better copies
PARALLEL_FROM = 1024  # fewer candidates are verified in this process (no start-up to pay)


@dataclass
class Found:
    """What a search found: the table's rows and the counts its log line gives."""

    rows: list[dict]
    videos: int
    unhashed: int
    candidates: int


def measured_rows(run_root: Path) -> list[dict]:
    """The run's measured videos (``status`` ok) with what the ranking reads (None where an
    older ``videos.parquet`` lacks a column); [] when the run has no ``videos.parquet``."""
    path = Path(run_root) / "videos.parquet"
    if not path.is_file():
        return []
    names = pq.read_schema(path).names
    table = pq.read_table(path, columns=[c for c in VIDEO_COLUMNS if c in names])
    return [{c: row.get(c) for c in VIDEO_COLUMNS} for row in table.to_pylist()
            if row.get("status") == "ok"]


def rank(videos: list[dict]) -> list[dict]:
    """The videos best copy first (module docstring)."""
    def key(video: dict) -> tuple:
        pixels = (video["width"] or 0) * (video["height"] or 0)
        seconds = video["duration_s"] or 0.0
        rate = (video["size_bytes"] or 0) / seconds if seconds > 0 else 0.0
        return (not video["has_audio"], -pixels, -rate, -seconds, video["source"] or "",
                video["path"] or "", video["video_id"])
    return sorted(videos, key=key)


def _signature(run_root: Path, video_id: str, settings: FindSettings) -> Signature | None:
    """A video's signature, or None when it has no frame hashes (measured before version 5)."""
    path = Path(run_root) / "metrics" / f"{video_id}.parquet"
    if "frame_hash" not in pq.read_schema(path).names:
        return None
    table = pq.read_table(path, columns=["time_s", "frame_hash"])
    hashes = table.column("frame_hash")
    valid = ~np.asarray(hashes.is_null())
    if not valid.any():
        return None
    return signature(table.column("time_s").to_numpy()[valid],
                     hashes.fill_null(0).to_numpy()[valid], settings.window)


def find_duplicates(run_root: Path, settings: FindSettings | None = None,
                    workers: int | None = None) -> Found:
    """Every overlap of the run's measured videos (module docstring), as table rows.
    ``workers``: processes verifying candidates (default one per CPU; one below
    ``PARALLEL_FROM`` candidates, and inside a worker process)."""
    settings = settings or FindSettings()
    run_root = Path(run_root)
    videos = rank(measured_rows(run_root))
    signatures = [_signature(run_root, v["video_id"], settings) for v in videos]
    candidates = find_candidates(signatures, settings)
    ids = [v["video_id"] for v in videos]
    best: dict[tuple[int, int, int], dict] = {}
    for candidate, overlap in _verified(run_root, ids, candidates, settings, workers):
        # Two clusters of votes may settle on one alignment: keep it once, at its best match.
        where = (candidate.better, candidate.worse,
                 int(round(overlap.offset_s / (2 * settings.search_s))))
        row = _row(ids[candidate.worse], ids[candidate.better], overlap)
        if where not in best or best[where]["match"] < row["match"]:
            best[where] = row
    rows = sorted(best.values(), key=lambda r: (r["video_id"], r["start_s"], r["of_video_id"]))
    return Found(rows, len(videos), sum(s is None for s in signatures), len(candidates))


def _verified(run_root: Path, ids: list[str], candidates: list[Candidate],
              settings: FindSettings, workers: int | None) -> Iterator[tuple]:
    """Each candidate that verifies, with its overlap; candidates go in chunks of one better
    copy's pairs (its series read once), to worker processes when there are many."""
    chunks = [candidates[i:i + CHUNK] for i in range(0, len(candidates), CHUNK)]
    jobs = [(str(run_root), ids, chunk, settings) for chunk in chunks]
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or len(candidates) < PARALLEL_FROM or \
            multiprocessing.current_process().daemon:
        for job in jobs:
            yield from _verify_chunk(job)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context) as pool:
        for verified in pool.map(_verify_chunk, jobs):
            yield from verified


def _verify_chunk(job: tuple) -> list[tuple]:
    root, ids, chunk, settings = job
    cache: dict[int, Series] = {}

    def series(index: int) -> Series:
        if index not in cache:
            if len(cache) >= SERIES_CACHE:
                cache.pop(next(iter(cache)))
            cache[index] = read_series(Path(root) / "metrics" / f"{ids[index]}.parquet")
        return cache[index]

    out = []
    for candidate in chunk:
        overlap = verify(series(candidate.better), series(candidate.worse),
                         candidate.offset_s, settings)
        if overlap is not None:
            out.append((candidate, overlap))
    return out


def _row(video_id: str, of_video_id: str, overlap) -> dict:
    def number(value: float) -> float | None:
        return None if math.isnan(value) else float(value)

    return {"video_id": video_id, "start_s": overlap.start_s, "end_s": overlap.end_s,
            "of_video_id": of_video_id, "of_start_s": overlap.start_s + overlap.offset_s,
            "of_end_s": overlap.end_s + overlap.offset_s, "offset_s": overlap.offset_s,
            "match": float(overlap.match), "evidence": float(overlap.evidence),
            "frames": int(overlap.frames), "hash_bits": float(overlap.hash_bits),
            "pose_deg": number(overlap.pose_deg), "mouth": number(overlap.mouth)}
