"""Decoded clips and training batches streamed from WebDataset shards (docs/shards.md, docs/practices.md).

The stream config says what a sample becomes: ``ClipStreamConfig`` decodes video shards into
VAE pairs (``training.data.clip_decode``, ``pairs``), ``training.data.latent_windows.WindowStreamConfig`` reads latent
shards into diffusion windows. Everything else here is shared by both:

Built as docs/practices.md asks of WebDataset under DDP:

- Shards are shuffled with ``(seed, epoch)``, the same order on every rank, then dealt out
  explicitly by node (rank, world size) and by DataLoader worker: global slot
  ``rank + world_size * worker`` takes every ``slots``-th shard, so ranks and workers read
  disjoint shards (when there are fewer shards than slots, shards are reused and a warning
  says so).
- Samples are shuffled in a buffer of raw (undecoded) samples seeded with
  ``(seed, epoch, rank, worker)``, then decoded by ``training.data.clip_decode``.
- A sample that does not decode is skipped, logged and counted by reason, never raised:
  ``refused_member`` (a member whose suffix the spec forbids, such as ``KEY.pyd``; nothing is
  unpickled, no member is decoded), ``missing_member``, ``bad_json``, ``bad_array``,
  ``misaligned`` (row counts that disagree with the JSON or the mp4), ``bad_mp4``,
  ``bad_latents`` (a latent sample whose arrays do not read or agree), ``short_clip`` (a
  sound clip shorter than the diffusion windows, with ``short_clips: drop``: expected, so
  logged at debug level), ``bad_shard`` (a shard that does not open or read). Batches carry the counts;
  ``ShardLoader.skipped_total`` adds them up over the run's epochs (and across a resume), for
  the training loop's ``skipped/REASON`` metrics. A count is of samples met and skipped: a
  corrupt sample read again in a later pass or epoch counts again.
- Equal batches on every rank (open_clip's ``with_epoch``): each worker cycles over its
  shards as long as it is asked to, and the loader stops after ``batches_per_epoch``, so no
  rank runs out before another (a DDP hang).
- A subset (``--max-hours``, ``training.data.hours_subset``): the config's ``subset`` names the
  clips and the shards that hold them; only those shards are dealt out, and the other samples
  are dropped as they are read, before the shuffle buffer (never decoded, never counted).
- Resumable: ``ShardLoader.state_dict`` records the epoch, the batches yielded and each worker's
  place (clip and pair), and a loader given it recreates the epoch's streams and skips to that
  place: raw samples before it are read but not decoded (torchtitan's checkpointable loader).
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
import webdataset as wds
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from gaia.schemas.shards import (
    SPLITS,
)
from gaia.training.data.clip_decode import SampleError, decode_sample
from gaia.training.data.hours_subset import ClipSubset
from gaia.training.data.pairs import pair_batches
from gaia.training.data.shard_read import shard_samples
from gaia.training.data.shard_urls import expand_shards

__all__ = ["SKIP_REASONS", "ClipStream", "ClipStreamConfig", "ShardLoader", "assign_shards",
           "expand_shards", "shard_loader"]  # expand_shards: its home before shard_urls

logger = logging.getLogger(__name__)

# Every reason a sample is skipped for (the SampleError reasons of clip_decode and
# latent_windows, and bad_shard here): the training loop logs one count per reason, the same
# names on every rank.
SKIP_REASONS = ("refused_member", "missing_member", "bad_json", "bad_array", "misaligned",
                "bad_mp4", "bad_latents", "short_clip", "no_audio", "bad_shard")
# Skips asked for by the config or the model, not faults: counted like the others, logged
# quietly (a clip without audio is sound data, only not for a speech-driven model).
EXPECTED_SKIPS = ("short_clip", "no_audio")


@dataclass(frozen=True)
class ClipStreamConfig:
    """What to read and how (docs/shards.md, docs/models.md).

    shards: ``expand_shards`` spec. image_size: frames are resized to ``S x S`` and landmarks
    scaled to match. shuffle_buffer: raw samples held for shuffling (0 or 1: none). seed:
    non-negative; with the epoch, rank and worker it fixes every order and draw. split:
    ``train``, ``val`` or None (all), read from each sample's JSON. max_frames: frames decoded
    and held per clip (bounded memory). frame_sampling: ``spread`` (random frames over the
    whole clip) or ``window`` (a random run of consecutive frames). pairs_per_clip: (i, j)
    pairs drawn from each decoded clip. subset: the clips of ``--max-hours`` (None: all).
    """

    shards: str
    image_size: int = 256
    shuffle_buffer: int = 100
    seed: int = 0
    split: str | None = "train"
    max_frames: int = 16
    frame_sampling: str = "spread"
    pairs_per_clip: int = 4
    subset: ClipSubset | None = None

    def __post_init__(self) -> None:
        if self.split is not None and self.split not in SPLITS:
            raise ValueError(f"split {self.split!r} is not one of {list(SPLITS)} or None")
        if self.frame_sampling not in ("spread", "window"):
            raise ValueError(f"frame_sampling {self.frame_sampling!r}: spread or window")
        if min(self.image_size, self.max_frames, self.pairs_per_clip) < 1:
            raise ValueError("image_size, max_frames and pairs_per_clip must be >= 1")
        if self.seed < 0 or self.shuffle_buffer < 0:
            raise ValueError("seed and shuffle_buffer must be >= 0")

    @property
    def items_per_clip(self) -> int:
        return self.pairs_per_clip

    def decode(self, sample: dict, rng: np.random.Generator) -> dict | None:
        return decode_sample(sample, self, rng)

    def batches(self, clips: Iterable[dict], batch_size: int) -> IterableDataset:
        return pair_batches(clips, batch_size, self.pairs_per_clip)


class StreamConfig(Protocol):
    """What ``ClipStream`` and ``ShardLoader`` need from a kind of sample."""

    shards: str
    shuffle_buffer: int
    seed: int
    split: str | None

    @property
    def items_per_clip(self) -> int: ...

    def decode(self, sample: dict, rng: np.random.Generator) -> dict | None: ...

    def batches(self, clips: Iterable[dict], batch_size: int) -> IterableDataset: ...


def resolve_rank(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """(rank, world size): as given, else from torch.distributed when initialised, else (0, 1)."""
    dist = torch.distributed
    live = dist.is_available() and dist.is_initialized()
    rank = rank if rank is not None else (dist.get_rank() if live else 0)
    world_size = world_size if world_size is not None else (dist.get_world_size() if live else 1)
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
    return rank, world_size


def assign_shards(urls: list[str], slot: int, slots: int) -> list[str]:
    """The shards of one (rank, worker) slot: every ``slots``-th, from ``slot`` on.

    With fewer shards than slots each slot still gets one (``urls[slot % len(urls)]``), and
    some are read by several slots.
    """
    if not urls:
        raise ValueError("no shards to assign")
    if len(urls) < slots:
        return [urls[slot % len(urls)]]
    return urls[slot::slots]


def _seed(*entropy: int) -> int:
    return int(np.random.SeedSequence(list(entropy)).generate_state(1)[0])


class ClipStream(IterableDataset):
    """Decoded clips of one epoch, for this rank and DataLoader worker (module docstring).

    repeat: cycle over this worker's shards without end (training; the loader decides when
    the epoch ends), else one pass. worker_offset: DataLoader worker ``w`` plays the stream of
    worker ``(w + offset) % workers`` (a resumed loader starts at the worker that was next).
    cursors: per worker, ``{"clip": c, "pair": p, "skipped": {...}}`` to resume after pair
    ``p`` of clip ``c`` with those counts. Each clip also holds ``clip_index`` (its place in
    this worker's stream), ``first_item``, ``worker``, ``skipped`` (counts so far) and
    ``seed`` (entropy for its draws).
    """

    def __init__(self, config: StreamConfig, rank: int | None = None,
                 world_size: int | None = None, epoch: int = 0, repeat: bool = True,
                 worker_offset: int = 0, cursors: dict[int, dict] | None = None) -> None:
        self.config, self.epoch, self.repeat = config, epoch, repeat
        self.rank, self.world_size = resolve_rank(rank, world_size)
        self.worker_offset, self.cursors = worker_offset, dict(cursors or {})
        self.subset: ClipSubset | None = getattr(config, "subset", None)
        self.urls = list(self.subset.shards) if self.subset else expand_shards(config.shards)

    def epoch_shards(self) -> list[str]:
        """All shards in this epoch's order (the same on every rank)."""
        order = np.random.default_rng([self.config.seed, self.epoch]).permutation(len(self.urls))
        return [self.urls[i] for i in order]

    def worker_shards(self, worker: int, workers: int) -> list[str]:
        """This rank's ``worker``'s shards this epoch."""
        slots = self.world_size * workers
        if len(self.urls) < slots:
            logger.warning("%d shards for %d rank-worker slots: some shards are read by "
                           "several slots", len(self.urls), slots)
        return assign_shards(self.epoch_shards(), self.rank + self.world_size * worker, slots)

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        local, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        worker = (local + self.worker_offset) % workers
        cursor = self.cursors.get(worker, {})
        skipped = Counter(cursor.get("skipped", {}))
        entropy = (self.config.seed, self.epoch, self.rank, worker)
        shards = self.worker_shards(worker, workers)
        progress = {"read": 0, "pass_size": None}
        keys = self.subset.keys if self.subset else None

        def read(urls: Iterator[dict]) -> Iterator[dict]:
            for url in urls:  # one shard at a time: a truncated one ends its partial sample
                errors: list[Exception] = []
                for sample in shard_samples(url["url"], errors.append):
                    if keys is not None and sample.get("__key__") not in keys:
                        continue  # not in the --max-hours subset: as if not in the shard
                    progress["read"] += 1
                    yield sample
                if errors:  # the handler returned None: webdataset stopped reading the shard
                    skipped["bad_shard"] += 1
                    logger.warning("skipped the rest of shard %s: %s: %s", url["url"],
                                   type(errors[0]).__name__, errors[0])

        samples = read(self._urls(shards, entropy, progress))
        if self.config.shuffle_buffer > 1:
            size = self.config.shuffle_buffer
            samples = wds.shuffle(size, initial=size, rng=random.Random(_seed(*entropy)))(samples)
        first_clip, after_item = cursor.get("clip", -1), cursor.get("pair", -1)
        streak = 0  # samples in a row that gave no clip: a whole pass of them means none will
        for ordinal, sample in enumerate(samples):
            if ordinal < first_clip or (ordinal == first_clip
                                        and after_item + 1 >= self.config.items_per_clip):
                continue  # consumed before the state was saved: read, not decoded
            seed = [*entropy, ordinal]
            clip = self._decode(sample, seed, skipped)
            if clip is None:
                streak += 1
                size = progress["pass_size"]
                if size is not None and streak > 2 * size + self.config.shuffle_buffer:
                    raise RuntimeError(
                        f"rank {self.rank} worker {worker}: no usable sample (split "
                        f"{self.config.split!r}) in its shards {shards}; skipped {dict(skipped)}")
                continue
            streak = 0
            clip.update(clip_index=ordinal, worker=worker, skipped=dict(skipped), seed=seed,
                        first_item=after_item + 1 if ordinal == first_clip else 0)
            yield clip

    def _decode(self, sample: dict, seed: list[int], skipped: Counter) -> dict | None:
        try:
            return self.config.decode(sample, np.random.default_rng(seed))
        except SampleError as err:
            skipped[err.reason] += 1
            level = logging.DEBUG if err.reason in EXPECTED_SKIPS else logging.WARNING
            logger.log(level, "skipped sample %s from %s: %s: %s", sample.get("__key__"),
                       sample.get("__url__"), err.reason, err)
            return None

    def _urls(self, shards: list[str], entropy: tuple, progress: dict) -> Iterator[dict]:
        """This worker's shards: one pass, or passes without end, each in a new order."""
        passes = 0
        while True:
            start = progress["read"]
            order = shards if passes == 0 else [
                shards[i] for i in np.random.default_rng([*entropy, passes]).permutation(
                    len(shards))]
            for url in order:
                yield {"url": url}
            if not self.repeat:
                return
            if progress["read"] == start:
                hint = (" of the --max-hours subset (is the shards' manifest.parquet out of "
                        "date?)" if self.subset is not None else "")
                raise RuntimeError(f"no readable samples{hint} in shards {shards}")
            if progress["pass_size"] is None:
                progress["pass_size"] = progress["read"] - start
            passes += 1


class ShardLoader:
    """Batches of VAE pairs (``gaia.training.data.pairs``) for one rank, epoch after epoch.

    ``batches_per_epoch`` batches every epoch on every rank (shards are read again as needed);
    None: one pass over this rank's shards, for evaluation (ranks may then differ in count).
    Iterating continues the current epoch from where it stands, and starts the next one when
    the current one is complete. ``set_epoch(e)`` starts epoch ``e`` from its beginning
    unless ``e`` is the current epoch (so a resumed loader keeps its place).
    """

    def __init__(self, config: StreamConfig, batch_size: int, rank: int | None = None,
                 world_size: int | None = None, num_workers: int = 0, epoch: int = 0,
                 batches_per_epoch: int | None = None, pin_memory: bool = False) -> None:
        if batch_size < 1 or num_workers < 0 or (batches_per_epoch or 1) < 1:
            raise ValueError("batch_size and batches_per_epoch must be >= 1, num_workers >= 0")
        self.config, self.batch_size, self.num_workers = config, batch_size, num_workers
        self.rank, self.world_size = resolve_rank(rank, world_size)
        self.batches_per_epoch, self.pin_memory = batches_per_epoch, pin_memory
        expand_shards(config.shards)  # fail now, not in a worker, when nothing matches
        self._skipped_before: Counter = Counter()  # epochs before this one
        self._cursors: dict[int, dict] = {}
        self._start(epoch)

    def _start(self, epoch: int) -> None:
        self._skipped_before.update(self.skipped)  # the epoch left stays in the run's totals
        self.epoch, self.batches, self._exhausted = epoch, 0, False
        self._cursors = {}

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self._start(epoch)

    def __len__(self) -> int:
        if self.batches_per_epoch is None:
            raise TypeError("a one-pass ShardLoader (batches_per_epoch=None) has no length")
        return self.batches_per_epoch

    @property
    def complete(self) -> bool:
        """Whether this epoch's batches have all been yielded."""
        limit = self.batches_per_epoch
        return self._exhausted or (limit is not None and self.batches >= limit)

    @property
    def skipped(self) -> dict[str, int]:
        """Samples skipped this epoch by the streams behind the batches yielded, by reason."""
        total: Counter = Counter()
        for cursor in self._cursors.values():
            total.update(cursor["skipped"])
        return dict(total)

    @property
    def skipped_total(self) -> dict[str, int]:
        """Samples skipped since this loader's first epoch (kept across a resume), by reason."""
        return dict(self._skipped_before + Counter(self.skipped))

    def __iter__(self) -> Iterator[dict]:
        if self.complete:
            self._start(self.epoch + 1)
        workers = max(1, self.num_workers)
        # Batch k of an epoch comes from worker k % workers (DataLoader's round robin).
        offset = self.batches % workers if self.batches_per_epoch is not None else 0
        clips = ClipStream(self.config, self.rank, self.world_size, self.epoch,
                           repeat=self.batches_per_epoch is not None, worker_offset=offset,
                           cursors=self._cursors)
        dataset = self.config.batches(clips, self.batch_size)
        # A generator of its own: DataLoader draws a base seed each time it is iterated, and
        # from torch's global state that draw would shift every dropout mask after a resume
        # (the resumed run iterates at another point than the uninterrupted one).
        base = torch.Generator().manual_seed(_seed(self.config.seed, self.rank, self.epoch))
        loader = DataLoader(dataset, batch_size=None, num_workers=self.num_workers,
                            pin_memory=self.pin_memory, generator=base)
        batches = iter(loader)
        try:
            while not self.complete:
                try:
                    batch = next(batches)
                except StopIteration:
                    self._exhausted = True
                    return
                self._cursors[batch["worker"]] = {
                    "clip": int(batch["clip_index"][-1]), "pair": int(batch["item_index"][-1]),
                    "skipped": dict(batch["skipped"])}
                self.batches += 1
                yield batch
        finally:
            del batches  # stops the DataLoader's workers

    def state_dict(self) -> dict:
        """Plain data (JSON-friendly): where this rank's loader stands."""
        return {
            "epoch": self.epoch, "batches": self.batches, "exhausted": self._exhausted,
            "workers": [{"worker": w, **cursor} for w, cursor in sorted(self._cursors.items())],
            "skipped_before": dict(self._skipped_before), "setup": self._setup(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Resume at ``state``; the loader must be set up as the one that saved it."""
        if state["setup"] != self._setup():
            raise ValueError(f"loader state saved by {state['setup']}, this loader is "
                             f"{self._setup()}: resume with the same settings")
        self._start(int(state["epoch"]))
        self._skipped_before = Counter(state.get("skipped_before", {}))  # older states: none
        self.batches, self._exhausted = int(state["batches"]), bool(state["exhausted"])
        self._cursors = {int(c["worker"]): {"clip": int(c["clip"]), "pair": int(c["pair"]),
                                            "skipped": dict(c["skipped"])}
                         for c in state["workers"]}

    def _setup(self) -> dict:
        setup = {"rank": self.rank, "world_size": self.world_size,
                 "num_workers": self.num_workers, "batch_size": self.batch_size,
                 "batches_per_epoch": self.batches_per_epoch, "seed": self.config.seed,
                 "items_per_clip": self.config.items_per_clip}
        subset = getattr(self.config, "subset", None)
        if subset is not None:  # only then: states saved before subsets still match
            setup["subset"] = subset.digest
        return setup


def shard_loader(config: StreamConfig, batch_size: int, rank: int | None = None,
                 world_size: int | None = None, num_workers: int = 0, epoch: int = 0,
                 batches_per_epoch: int | None = None, pin_memory: bool = False) -> ShardLoader:
    """A ``ShardLoader``: ``batches_per_epoch`` batches of ``batch_size`` items (VAE pairs,
    diffusion windows) per epoch on this rank (given, else from torch.distributed), made by
    ``num_workers`` DataLoader workers."""
    return ShardLoader(config, batch_size, rank, world_size, num_workers, epoch,
                      batches_per_epoch, pin_memory)
