"""Windows of motion latents, speech and pose from latent shards, for the s2m model
(paper, section 4.2 and appendix B.1: training windows of 125-250 frames).

``WindowStreamConfig`` plugs latent shards (``gaia.schemas.latents``) into the shared streaming
loader (``training.data.shard_stream.ShardLoader``: sharding by rank and worker, shuffling, equal batches per
rank, exact resume). Every clip read gives up to ``windows_per_clip`` windows, each of a random
length in ``[window_min, window_max]`` at a random start (appendix B.3), drawn by a generator
seeded from the clip's place in the stream, so a resumed loader repeats an uninterrupted one.
No window is given twice: a clip with room for fewer distinct (start, length) windows than
``windows_per_clip`` gives each of them once. A clip shorter than ``window_min`` has no window
of the paper's lengths; ``short_clips`` says what it gives: ``whole`` (one window of the whole
clip, padded and masked in the batch like any shorter window) or ``drop`` (none: the stream
skips it and counts it as ``short_clip``).

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
from gaia.schemas.shards import SPEECH_ROWS_PER_FRAME, SPLITS
from gaia.training.data.batching import ItemBatches
from gaia.training.data.clip_decode import SampleError, checked_members
from gaia.training.data.hours_subset import ClipSubset

REFERENCE_KINDS = ("stored", "random")
SHORT_CLIP_KINDS = ("whole", "drop")


@dataclass(frozen=True)
class WindowStreamConfig:
    """shards: ``training.data.shard_stream.expand_shards`` spec of latent shards. window_min, window_max:
    window lengths in frames. windows_per_clip: windows drawn from each clip read.
    reference: ``random`` (a random frame of the clip each time, as the paper trains (appendix
    B.3): any portrait may be given, in any pose) or ``stored`` (the shards' most frontal frame).
    short_clips: what a clip shorter than ``window_min`` gives (module docstring). ``whole`` by
    default: curation keeps clips from 3 s (75 frames, appendix A.1), and its shortest clips
    are still speech the model learns from; ``drop`` trains on the paper's lengths only.
    shuffle_buffer, seed, split, subset: as for video shards (``ClipStreamConfig``)."""

    shards: str
    window_min: int = 125
    window_max: int = 250
    windows_per_clip: int = 2
    reference: str = "random"
    short_clips: str = "whole"
    shuffle_buffer: int = 100
    seed: int = 0
    split: str | None = "train"
    subset: ClipSubset | None = None  # the clips of --max-hours (training.data.hours_subset)

    def __post_init__(self) -> None:
        if not 1 <= self.window_min <= self.window_max:
            raise ValueError(f"need 1 <= window_min <= window_max, got {self.window_min}, "
                             f"{self.window_max}")
        if self.windows_per_clip < 1 or self.seed < 0 or self.shuffle_buffer < 0:
            raise ValueError("windows_per_clip must be >= 1, seed and shuffle_buffer >= 0")
        if self.reference not in REFERENCE_KINDS:
            raise ValueError(f"reference must be one of {REFERENCE_KINDS}")
        if self.short_clips not in SHORT_CLIP_KINDS:
            raise ValueError(f"short_clips must be one of {SHORT_CLIP_KINDS}")
        if self.split is not None and self.split not in SPLITS:
            raise ValueError(f"split {self.split!r} is not one of {list(SPLITS)} or None")

    @property
    def items_per_clip(self) -> int:
        # The most a clip gives: the resume cursor counts windows against it. A clip that gave
        # fewer (short, or with room for fewer distinct windows) is read again on resume and
        # gives none past its last (clip_windows), so the resumed stream still repeats.
        return self.windows_per_clip

    def decode(self, sample: dict, rng: np.random.Generator) -> dict | None:
        return check_clip_length(decode_latent_sample(sample, self), self)

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


def check_clip_length(clip: dict | None, config: WindowStreamConfig) -> dict | None:
    """``clip``, or ``SampleError("short_clip")`` when it is shorter than ``window_min`` and
    ``short_clips`` is ``drop`` (raised at decode, so the stream counts it by reason)."""
    if clip is not None and config.short_clips == "drop" and len(clip["motion"]) < \
            config.window_min:
        raise SampleError("short_clip", f"{len(clip['motion'])} frames, under window_min "
                                        f"{config.window_min} (short_clips: drop)")
    return clip


def window_pool(frames: int, config: WindowStreamConfig) -> tuple[np.ndarray, np.ndarray]:
    """Every distinct (start, length) window of a clip, int64 ``(n, 2)``, and the chance that
    one draw (a uniform length, then a uniform start) picks each."""
    lengths = np.arange(config.window_min, min(config.window_max, frames) + 1, dtype=np.int64)
    starts_per_length = frames - lengths + 1
    first_of_length = np.repeat(np.cumsum(starts_per_length) - starts_per_length,
                                starts_per_length)
    starts = np.arange(int(starts_per_length.sum()), dtype=np.int64) - first_of_length
    spans = np.stack([starts, np.repeat(lengths, starts_per_length)], axis=1)
    chance = np.repeat(1.0 / (len(lengths) * starts_per_length), starts_per_length)
    return spans, chance / chance.sum()


def draw_windows(frames: int, config: WindowStreamConfig, count: int,
                 rng: np.random.Generator) -> np.ndarray:
    """Up to ``count`` distinct (start, length) windows within ``frames`` frames, int64
    ``(n, 2)``: one of the whole clip when it is shorter than ``window_min`` (module
    docstring), else each of a uniform length in ``[window_min, window_max]`` at a uniform
    start, as many as there are distinct ones when that is fewer than ``count``."""
    if frames < config.window_min:
        return np.array([[0, frames]], np.int64)
    lengths = np.minimum(rng.integers(config.window_min, config.window_max + 1, size=count),
                         frames)
    starts = rng.integers(0, frames - lengths + 1)
    spans = np.stack([starts, lengths], axis=1).astype(np.int64)
    _, first = np.unique(spans, axis=0, return_index=True)
    if len(first) == count:  # the usual case: the draws above, untouched
        return spans
    # A repeat: keep the first of each, and draw the rest among the windows not yet given,
    # each as likely as a fresh draw would make it (rare but for clips near window_min).
    kept = spans[np.sort(first)]
    pool, chance = window_pool(frames, config)
    free = ~(pool[:, None, :] == kept[None]).all(axis=2).any(axis=1)
    extra = min(count - len(kept), int(free.sum()))
    if extra:
        picked = rng.choice(np.flatnonzero(free), size=extra, replace=False,
                            p=chance[free] / chance[free].sum())
        kept = np.concatenate([kept, pool[picked]])
    return kept


def clip_windows(clip: dict, config: WindowStreamConfig) -> list[dict]:
    """The windows of one clip from ``clip["first_item"]`` on (all are drawn first, so a
    resumed stream that skips some gets the same rest; one past the last gives none)."""
    rng = np.random.default_rng([*clip["seed"], 2])
    frames = len(clip["motion"])
    spans = draw_windows(frames, config, config.windows_per_clip, rng)
    references = rng.integers(0, frames, size=len(spans))
    out = []
    for n, (start, length) in enumerate(spans):
        if n < clip.get("first_item", 0):
            continue
        stop = start + length
        reference = clip["reference"] if config.reference == "stored" \
            else clip["motion"][references[n]]
        rows = slice(SPEECH_ROWS_PER_FRAME * start, SPEECH_ROWS_PER_FRAME * stop)
        out.append({"motion": clip["motion"][start:stop], "pose": clip["pose"][start:stop],
                    "speech": clip["speech"][rows], "reference": reference,
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
    speech = np.zeros((count, SPEECH_ROWS_PER_FRAME * longest, features), np.float32)
    pose = np.zeros((count, longest, 3), np.float32)
    mask = np.zeros((count, longest), bool)
    for n, window in enumerate(windows):
        length = len(window["motion"])
        motion[n, :length] = window["motion"]
        speech[n, :SPEECH_ROWS_PER_FRAME * length] = window["speech"]
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
