"""Windows of motion latents, speech and pose from latent shards, for the diffusion model
(paper, section 4.2 and appendix B.1: training windows of 125-250 frames).

``WindowStreamConfig`` plugs latent shards (``gaia.schemas.latents``) into the shared streaming
loader (``training.data.shard_stream.ShardLoader``: sharding by rank and worker, shuffling, equal batches per
rank, exact resume). Every clip read gives ``windows_per_clip`` windows, each of a random length
in ``[window_min, window_max]`` (the whole clip when it is shorter) at a random start, drawn by
a generator seeded from the clip's place in the stream, so a resumed loader repeats an
uninterrupted one.

A batch (``collate_windows``) pads windows to the longest one:

==============  ===================================================================
``motion``      float32 ``(B, T, D)``: motion latents (raw; the task normalises)
``speech``      float32 ``(B, 2T, F)``: two speech-feature rows per frame
``pose``        float32 ``(B, T, 3)``: pitch, yaw, roll in degrees
``reference``   float32 ``(B, D)``: the reference frame's motion latent
``mask``        bool ``(B, T)``: True on the window's frames, False on padding
``key``         list of ``B`` sample keys; ``start`` int64 ``(B,)``: first frame
``clip_index``  int64 ``(B,)``; ``item_index`` int64 ``(B,)``: the loader's resume cursor
==============  ===================================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from torch.utils.data import IterableDataset

from gaia.schemas.latents import read_latent_sample
from gaia.schemas.shards import SPLITS
from gaia.training.data.batching import ItemBatches
from gaia.training.data.clip_decode import SampleError, checked_members

REFERENCE_KINDS = ("stored", "random")


@dataclass(frozen=True)
class WindowStreamConfig:
    """shards: ``training.data.shard_stream.expand_shards`` spec of latent shards. window_min, window_max:
    window lengths in frames. windows_per_clip: windows drawn from each clip read.
    reference: ``random`` (a random frame of the clip each time, as the paper trains (appendix
    B.3): any portrait may be given, in any pose) or ``stored`` (the shards' most frontal frame). shuffle_buffer, seed,
    split: as for video shards (``ClipStreamConfig``)."""

    shards: str
    window_min: int = 125
    window_max: int = 250
    windows_per_clip: int = 2
    reference: str = "random"
    shuffle_buffer: int = 100
    seed: int = 0
    split: str | None = "train"

    def __post_init__(self) -> None:
        if not 1 <= self.window_min <= self.window_max:
            raise ValueError(f"need 1 <= window_min <= window_max, got {self.window_min}, "
                             f"{self.window_max}")
        if self.windows_per_clip < 1 or self.seed < 0 or self.shuffle_buffer < 0:
            raise ValueError("windows_per_clip must be >= 1, seed and shuffle_buffer >= 0")
        if self.reference not in REFERENCE_KINDS:
            raise ValueError(f"reference must be one of {REFERENCE_KINDS}")
        if self.split is not None and self.split not in SPLITS:
            raise ValueError(f"split {self.split!r} is not one of {list(SPLITS)} or None")

    @property
    def items_per_clip(self) -> int:
        return self.windows_per_clip

    def decode(self, sample: dict, rng: np.random.Generator) -> dict | None:
        return decode_latent_sample(sample, self)

    def batches(self, clips: Iterable[dict], batch_size: int) -> IterableDataset:
        return ItemBatches(clips, batch_size, partial(clip_windows, config=self),
                           collate_windows)


def decode_latent_sample(sample: dict, config: WindowStreamConfig) -> dict | None:
    """A raw latent sample to a clip dict (``motion``, ``speech``, ``pose``, ``reference``,
    ``key``, ``meta``); None when its split is not ``config.split``; SampleError when it
    cannot be used (counted and skipped by the stream)."""
    members = checked_members(sample)
    try:
        data = read_latent_sample(members)
    except Exception as err:  # noqa: BLE001 - any unusable member marks the sample bad
        raise SampleError("bad_latents", f"{type(err).__name__}: {err}") from err
    meta = data["meta"]
    if config.split is not None and meta["split"] != config.split:
        return None
    if meta["key"] != sample.get("__key__", meta["key"]):
        raise SampleError("bad_latents", f"json key {meta['key']!r} is not the sample key")
    return {"key": meta["key"], "meta": meta, "motion": data["motion"],
            "speech": data["speech"], "pose": data["pose"], "reference": data["reference"]}


def draw_windows(frames: int, config: WindowStreamConfig, count: int,
                 rng: np.random.Generator) -> np.ndarray:
    """``count`` (start, length) windows within ``frames`` frames, int64 ``(count, 2)``."""
    lengths = np.minimum(rng.integers(config.window_min, config.window_max + 1, size=count),
                         frames)
    starts = rng.integers(0, frames - lengths + 1)
    return np.stack([starts, lengths], axis=1).astype(np.int64)


def clip_windows(clip: dict, config: WindowStreamConfig) -> list[dict]:
    """The windows of one clip from ``clip["first_item"]`` on (all are drawn first, so a
    resumed stream that skips some gets the same rest)."""
    rng = np.random.default_rng([*clip["seed"], 2])
    frames = len(clip["motion"])
    spans = draw_windows(frames, config, config.windows_per_clip, rng)
    references = rng.integers(0, frames, size=config.windows_per_clip)
    out = []
    for n, (start, length) in enumerate(spans):
        if n < clip.get("first_item", 0):
            continue
        stop = start + length
        reference = clip["reference"] if config.reference == "stored" \
            else clip["motion"][references[n]]
        out.append({"motion": clip["motion"][start:stop], "pose": clip["pose"][start:stop],
                    "speech": clip["speech"][2 * start:2 * stop], "reference": reference,
                    "key": clip["key"], "start": int(start), "clip_index": clip["clip_index"],
                    "item_index": n})
    return out


def collate_windows(windows: Sequence[dict]) -> dict:
    """Pad windows to the longest and stack them (module docstring)."""
    if not windows:
        raise ValueError("no windows to collate")
    longest = max(len(w["motion"]) for w in windows)
    count, dim = len(windows), windows[0]["motion"].shape[1]
    features = windows[0]["speech"].shape[1]
    motion = np.zeros((count, longest, dim), np.float32)
    speech = np.zeros((count, 2 * longest, features), np.float32)
    pose = np.zeros((count, longest, 3), np.float32)
    mask = np.zeros((count, longest), bool)
    for n, window in enumerate(windows):
        length = len(window["motion"])
        motion[n, :length] = window["motion"]
        speech[n, :2 * length] = window["speech"]
        pose[n, :length] = window["pose"]
        mask[n, :length] = True
    return {
        "motion": torch.from_numpy(motion), "speech": torch.from_numpy(speech),
        "pose": torch.from_numpy(pose), "mask": torch.from_numpy(mask),
        "reference": torch.from_numpy(np.stack([w["reference"] for w in windows]).astype(
            np.float32)),
        "key": [w["key"] for w in windows],
        "start": torch.tensor([w["start"] for w in windows], dtype=torch.int64),
        "clip_index": torch.tensor([w["clip_index"] for w in windows], dtype=torch.int64),
        "item_index": torch.tensor([w["item_index"] for w in windows], dtype=torch.int64),
    }
