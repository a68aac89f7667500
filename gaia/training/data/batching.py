"""Batches of training items drawn from a stream of decoded clips (shared by every sample kind).

A clip gives several items (VAE pairs, s2m windows): decoding a clip costs more than
drawing from it. Items are gathered into batches of ``batch_size`` across clip boundaries; a
finite stream ends with a last, possibly smaller, batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

from torch.utils.data import IterableDataset


class ItemBatches(IterableDataset):
    """``collate``d batches of the items ``items(clip)`` gives for each clip of ``clips``.

    Each batch also carries ``worker`` (the stream that made it) and ``skipped`` (samples that
    stream skipped so far this epoch, by reason) from the last clip in it: the loader's resume
    cursor.
    """

    def __init__(self, clips: Iterable[dict], batch_size: int,
                 items: Callable[[dict], list[dict]],
                 collate: Callable[[Sequence[dict]], dict]) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.clips, self.batch_size = clips, batch_size
        self.items, self.collate = items, collate

    def __iter__(self) -> Iterator[dict]:
        pending: list[dict] = []
        clip: dict = {}
        for clip in self.clips:
            for item in self.items(clip):
                pending.append(item)
                if len(pending) == self.batch_size:
                    yield self._batch(pending, clip)
                    pending = []
        if pending:
            yield self._batch(pending, clip)

    def _batch(self, items: list[dict], clip: dict) -> dict:
        batch = self.collate(items)
        batch["worker"] = int(clip.get("worker", 0))
        batch["skipped"] = dict(clip.get("skipped", {}))
        return batch
