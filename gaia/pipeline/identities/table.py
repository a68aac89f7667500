"""The run's identity table: every person track of every measured video, joined into run-wide
identities (paper, section 4 and Table 1: #IDs per source; the split is per identity).

Measure clusters faces inside each video (``persons``, with each person's mean embedding in
``videos.parquet``). This joins them across videos with ``cluster.cluster_tracks`` and stores
``identities.parquet`` (``gaia.schemas.identities``):

- after every measure run, incrementally: tracks already in the table keep their identity, only
  new tracks are clustered (against the known identities' centres), so adding videos never
  renames anyone;
- written whole or not at all, with a SHA-256 of its rows; a table that is missing, cut,
  changed, of another version or out of step with ``videos.parquet`` is rebuilt with a log
  line (``ensure_identities``), never trusted;
- a run measured before embeddings were stored (metrics version 4 and older) has none: the
  error says to measure again, and splits fall back to the source folder with a log line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gaia.schemas.atomic import atomic_path
from gaia.schemas.checksum import ROWS_KEY, content_sha256
from gaia.schemas.identities import (
    IDENTITIES_FILE,
    IDENTITIES_SCHEMA,
    IDENTITIES_VERSION,
    VERSION_KEY,
)

Log = Callable[[str], None]
Track = tuple[str, int]  # (video_id, person)


class NoEmbeddingsError(ValueError):
    """The run's videos were measured without face embeddings: nothing to cluster."""


def _tracks(run_root: Path) -> tuple[list[Track], np.ndarray, np.ndarray, np.ndarray, int]:
    """Every person track of the run's measured videos: keys, embeddings, track counts, first
    frames; and how many measured videos carry no embeddings (measured before they were
    stored, or with the identity measures off)."""
    table = pq.read_table(run_root / "videos.parquet")
    names = set(table.column_names)
    keys: list[Track] = []
    embeddings: list[list[float]] = []
    counts: list[int] = []
    firsts: list[int] = []
    without = 0
    wanted = ["video_id", "status"] + [  # older runs lack the later columns
        c for c in ("persons", "person_embeddings", "person_tracks", "person_first_frames")
        if c in names]
    for row in table.select(wanted).to_pylist():
        if row["status"] != "ok":
            continue
        people = row.get("person_embeddings")
        if people is None:
            without += bool(row.get("persons"))
            continue
        tracks = row.get("person_tracks") or [1] * len(people)
        first = row.get("person_first_frames") or [-1] * len(people)
        for person, embedding in enumerate(people):
            keys.append((row["video_id"], person))
            embeddings.append(embedding)
            counts.append(int(tracks[person]))
            firsts.append(int(first[person]))
    vectors = np.asarray(embeddings, np.float32).reshape(len(keys), 128)
    return (keys, vectors, np.asarray(counts, np.int64), np.asarray(firsts, np.int64),
            without)


def read_trusted(run_root: Path, log: Log = lambda _: None) -> pa.Table | None:
    """The stored table if it is whole, of this version and unchanged; else None (logged)."""
    path = Path(run_root) / IDENTITIES_FILE
    if not path.is_file():
        return None
    try:
        table = pq.read_table(path)
        meta = table.schema.metadata or {}
        if meta.get(VERSION_KEY) != str(IDENTITIES_VERSION).encode():
            raise ValueError(f"version {meta.get(VERSION_KEY)!r}, not {IDENTITIES_VERSION}")
        if not table.schema.remove_metadata().equals(IDENTITIES_SCHEMA):
            raise ValueError("its columns are not the identity table's")
        if meta.get(ROWS_KEY, b"").decode() != content_sha256(table.to_pylist()):
            raise ValueError("its rows do not match their checksum")
    except Exception as err:  # noqa: BLE001 - any unreadable table is rebuilt, whatever broke
        log(f"{path} cannot be trusted ({type(err).__name__}: {err}); it is rebuilt")
        return None
    return table


def _write(run_root: Path, columns: dict[str, np.ndarray | list]) -> pa.Table:
    table = pa.table(columns, schema=IDENTITIES_SCHEMA)
    table = table.replace_schema_metadata({
        VERSION_KEY: str(IDENTITIES_VERSION).encode(),
        ROWS_KEY: content_sha256(table.to_pylist()).encode()})
    with atomic_path(Path(run_root) / IDENTITIES_FILE) as tmp:
        pq.write_table(table, tmp)
    return table


def update_identities(run_root: Path, log: Log = lambda _: None) -> pa.Table:
    """Bring ``identities.parquet`` up to date with ``videos.parquet`` (module docstring) and
    return it. Raises ``NoEmbeddingsError`` when no measured video carries embeddings."""
    from gaia.pipeline.identities.cluster import ClusterConfig, cluster_tracks

    run_root = Path(run_root)
    keys, vectors, counts, firsts, without = _tracks(run_root)
    if without:
        log(f"{without} measured video(s) have faces but no stored embeddings (measured "
            "before gaia stored them): they are left out of the identities; measure them "
            "again into a new --out to count them")
    if not keys:
        raise NoEmbeddingsError(
            f"{run_root}: no measured video carries face embeddings (measured with an older "
            "gaia, or with the identity measures off), so people cannot be counted across "
            "videos; measure the inputs again into a new --out with this version")
    old = read_trusted(run_root, log)
    known_of: dict[Track, int] = {}
    if old is not None:
        for video_id, person, identity in zip(old.column("video_id").to_pylist(),
                                              old.column("person").to_pylist(),
                                              old.column("identity").to_pylist(), strict=True):
            known_of[(video_id, person)] = identity
    is_known = np.array([key in known_of for key in keys], bool)
    if old is not None and is_known.all() and len(known_of) == len(keys):
        return old
    ids = np.array([known_of.get(key, -1) for key in keys], np.int64)
    known = _known(ids[is_known], vectors[is_known], counts[is_known])
    fresh = cluster_tracks(vectors[~is_known], counts[~is_known], known, ClusterConfig())
    ids[~is_known] = fresh.identity
    table = _write(run_root, _columns(keys, vectors, counts, firsts, ids))
    added = len(set(ids[~is_known].tolist()) - set(ids[is_known].tolist()))
    log(f"identities: {len(keys)} person tracks in {len(set(ids.tolist()))} identities "
        f"({int((~is_known).sum())} new tracks, {added} new identities)")
    return table


def _known(ids: np.ndarray, vectors: np.ndarray, counts: np.ndarray):
    """The known identities as ``cluster.KnownIdentities`` (weighted centres, weights,
    spreads, tracks, embeddings), rebuilt from their member tracks; None when there are none."""
    from gaia.pipeline.identities.cluster import ClusterConfig, KnownIdentities, track_weights

    if not len(ids):
        return None
    unique, inverse = np.unique(ids, return_inverse=True)
    weights = track_weights(counts, ClusterConfig())
    total = np.bincount(inverse, weights=weights, minlength=len(unique))
    sums = np.zeros((len(unique), vectors.shape[1]), np.float64)
    np.add.at(sums, inverse, vectors.astype(np.float64) * weights[:, None])
    centres = sums / total[:, None]
    squared = ((vectors - centres[inverse]) ** 2).sum(axis=1)
    spreads = np.bincount(inverse, weights=weights * squared, minlength=len(unique)) / total
    return KnownIdentities(
        ids=unique, centroids=centres.astype(np.float32), weights=total, spreads=spreads,
        tracks=np.bincount(inverse, minlength=len(unique)),
        embeddings=np.bincount(inverse, weights=counts, minlength=len(unique)).astype(np.int64))


def _columns(keys: list[Track], vectors: np.ndarray, counts: np.ndarray, firsts: np.ndarray,
             ids: np.ndarray) -> dict:
    unique, inverse = np.unique(ids, return_inverse=True)
    sums = np.zeros((len(unique), vectors.shape[1]), np.float64)
    np.add.at(sums, inverse, vectors.astype(np.float64) * counts[:, None])
    centres = sums / np.bincount(inverse, weights=counts, minlength=len(unique))[:, None]
    distance = np.linalg.norm(vectors - centres[inverse], axis=1).astype(np.float32)
    sizes = np.bincount(inverse, minlength=len(unique))
    # The representative: the identity's track with the most embeddings, the first one on a tie.
    order = np.lexsort((np.arange(len(ids)), -counts, inverse))
    representative = np.zeros(len(ids), bool)
    representative[order[np.r_[True, inverse[order][1:] != inverse[order][:-1]]]] = True
    return {"video_id": [k[0] for k in keys], "person": np.array([k[1] for k in keys], np.int16),
            "identity": ids, "tracks": counts.astype(np.int32),
            "identity_size": sizes[inverse].astype(np.int32), "representative": representative,
            "first_frame": firsts, "distance": distance}


def ensure_identities(run_root: Path, log: Log = lambda _: None) -> dict[Track, int] | None:
    """``(video_id, person) -> identity`` for the run, the table brought up to date first
    (rebuilt when missing, untrusted or behind the run); None when the run has no embeddings
    (said in a log line: splits and #IDs then fall back)."""
    try:
        table = update_identities(Path(run_root), log)
    except NoEmbeddingsError as err:
        log(str(err))
        return None
    return {(v, p): i for v, p, i in zip(table.column("video_id").to_pylist(),
                                         table.column("person").to_pylist(),
                                         table.column("identity").to_pylist(), strict=True)}
