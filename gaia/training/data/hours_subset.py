"""A training subset of a given number of hours (paper, tables 4 and 5: the VAE and the s2m
model trained on 0.1K, 0.5K and 1K hours of the same corpus).

``select_hours`` lists the clips of a split in the training shards, orders them by a hash of
their key, and takes clips in that order until their durations (frames at the shards' 25 fps)
add up to at least the hours asked: the sum lands within one clip of the target. The order
depends on the keys alone: the same clips on every run, every rank and every DataLoader worker,
whatever the seed; and the subsets are nested (the 0.1K clips are among the 0.5K ones), so a
scaling table compares more data, not other data. Asking for more hours than the split holds
takes every clip and says so.

The clips come from ``manifest.parquet`` beside the shards (curation and encode-latents write
one: key, shard, frames, split); shards a manifest does not list are read for their samples'
JSON instead (slower: the whole shard is streamed). Only shards that hold a chosen clip are
read in training, and the stream skips the others' samples before shuffling
(``shard_stream.ClipStream``); it still reads the unchosen samples of those shards.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

from gaia.schemas.shards import FPS
from gaia.training.data.shard_read import shard_samples
from gaia.training.data.shard_urls import expand_shards

logger = logging.getLogger(__name__)

MANIFEST = "manifest.parquet"
SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class ClipSubset:
    """The clips a run trains on. keys: the chosen clips' keys. shards: the shard urls that
    hold them, in the spec's order. hours: their total; hours_asked: ``--max-hours``;
    hours_available / clips_available: the whole split. source: where the clip list came
    from (``manifest``, ``scan`` or both)."""

    keys: frozenset[str]
    shards: tuple[str, ...]
    hours: float
    hours_asked: float
    hours_available: float
    clips_available: int
    split: str | None
    source: str

    @property
    def everything(self) -> bool:
        """Whether the subset is the whole split (the hours asked are more than it holds)."""
        return len(self.keys) == self.clips_available

    @property
    def digest(self) -> str:
        """A short fingerprint of the chosen keys (a resumed run must read the same clips)."""
        return hashlib.sha256("\n".join(sorted(self.keys)).encode("utf-8")).hexdigest()[:16]

    def record(self) -> dict:
        """What a run's config.json records (not the keys: a corpus has millions)."""
        return {"max_hours": self.hours_asked, "hours": round(self.hours, 6),
                "clips": len(self.keys), "shards": len(self.shards),
                "hours_available": round(self.hours_available, 6),
                "clips_available": self.clips_available, "split": self.split,
                "everything": self.everything, "order": "sha256 of the clip key",
                "keys_sha256": self.digest, "source": self.source}

    def line(self) -> str:
        """One line for the run's log."""
        text = (f"--max-hours {self.hours_asked:g}: {len(self.keys)} of "
                f"{self.clips_available} clips, {self.hours:.4f} h of "
                f"{self.hours_available:.4f} h, in {len(self.shards)} shards")
        if self.everything:
            text += " (the data holds fewer hours than asked: every clip is used)"
        return text


def clip_order(key: str) -> str:
    """The rank of a clip in every subset: a hash of its key alone."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _name(url: str) -> str:
    return PurePosixPath(url.rstrip("/")).name


def _folder(url: str) -> str:
    return url.rstrip("/").rpartition("/")[0]


def _manifest_rows(folder: str) -> list[dict] | None:
    """The rows (key, shard, frames, split) of ``folder``'s manifest, or None without one."""
    import pyarrow.parquet as pq

    from gaia.common.storage import opened

    if folder.startswith(("pipe:", "http://", "https://")):
        return None
    try:
        with opened(f"{folder}/{MANIFEST}" if folder else MANIFEST) as handle:
            table = pq.read_table(handle, columns=["key", "shard", "frames", "split"])
    except (OSError, ValueError, KeyError) as err:
        logger.debug("no usable %s in %s: %s", MANIFEST, folder, err)
        return None
    return table.to_pylist()


def _scanned_rows(url: str) -> Iterator[dict]:
    """(key, shard, frames, split) of every sample of one shard, from its JSON member."""
    for sample in shard_samples(url, lambda err: logger.warning("reading %s: %s", url, err)):
        try:
            meta = json.loads(sample["json"].decode("utf-8"))
            yield {"key": sample["__key__"], "shard": _name(url),
                   "frames": int(meta["frames"]), "split": meta.get("split")}
        except (KeyError, ValueError, TypeError, AttributeError):
            continue  # the stream skips and counts it; it is no clip of the subset


def shard_clips(urls: list[str]) -> tuple[list[tuple[str, str, int, str | None]], str]:
    """``(key, url, frames, split)`` of every clip of the shards ``urls``, and where the list
    came from (module docstring)."""
    clips: list[tuple[str, str, int, str | None]] = []
    sources: set[str] = set()
    by_folder: dict[str, list[str]] = {}
    for url in urls:
        by_folder.setdefault(_folder(url), []).append(url)
    for folder, members in by_folder.items():
        rows = _manifest_rows(folder)
        names = {_name(url): url for url in members}
        listed: set[str] = set()
        if rows is not None:
            sources.add("manifest")
            for row in rows:
                url = names.get(row["shard"])
                if url is not None:  # a shard the spec leaves out is not trained on
                    listed.add(url)
                    clips.append((row["key"], url, int(row["frames"]), row["split"]))
        for url in members:
            if url not in listed:
                sources.add("scan")
                clips += [(r["key"], url, r["frames"], r["split"]) for r in _scanned_rows(url)]
    return clips, "+".join(sorted(sources))


def select_hours(spec: str, max_hours: float, split: str | None = "train") -> ClipSubset:
    """The clips of ``split`` (None: all) in the shards of ``spec`` (``expand_shards``) whose
    durations add up to ``max_hours`` (module docstring); ValueError when ``max_hours`` is not
    positive or the split holds no clip."""
    if not max_hours > 0:
        raise ValueError(f"--max-hours must be a positive number of hours, not {max_hours}")
    urls = expand_shards(spec)
    clips, source = shard_clips(urls)
    pool = sorted({key: (key, url, frames) for key, url, frames, clip_split in clips
                   if split is None or clip_split == split}.values(),
                  key=lambda clip: clip_order(clip[0]))
    if not pool:
        raise ValueError(f"--max-hours: no clip of split {split!r} in {spec}")
    target = max_hours * SECONDS_PER_HOUR * FPS  # in frames
    chosen, frames = [], 0
    for key, url, length in pool:
        if frames >= target:
            break
        chosen.append((key, url))
        frames += length
    shards = {url for _, url in chosen}
    return ClipSubset(
        keys=frozenset(key for key, _ in chosen),
        shards=tuple(url for url in urls if url in shards),
        hours=frames / FPS / SECONDS_PER_HOUR, hours_asked=float(max_hours),
        hours_available=sum(length for _, _, length in pool) / FPS / SECONDS_PER_HOUR,
        clips_available=len(pool), split=split, source=source)
