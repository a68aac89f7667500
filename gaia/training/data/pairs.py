"""Frame pairs for the VAE (paper section 4.1; docs/models.md) and their batches.

The appearance encoder sees frame ``i`` of a clip, the motion encoder the landmarks of frame
``j`` of the same clip, and the decoder reconstructs frame ``j``. Decoding an mp4 costs far more
than drawing from it, so every decoded clip gives ``pairs_per_clip`` pairs, drawn by a generator
seeded from the clip's place in the stream (``clip["seed"]``): the same clip at the same place
gives the same pairs, which is what makes a resumed loader repeat an uninterrupted one.

A batch (``collate_pairs``) is a dict:

========================  =====================================================================
``appearance``            float32 ``(B, 3, S, S)`` in ``[-1, 1]``: frame ``i``
``target``                float32 ``(B, 3, S, S)`` in ``[-1, 1]``: frame ``j``
``appearance_landmarks``  float32 ``(B, 68, 2)``: landmarks of frame ``i``, pixels of the S image
``target_landmarks``      float32 ``(B, 68, 2)``: landmarks of frame ``j``, idem
``key``                   list of ``B`` sample keys (both frames of a pair share one)
``frame_index``           int64 ``(B, 2)``: ``i`` and ``j`` as frame numbers of the clip
``clip_index``            int64 ``(B,)``: place of the clip in its worker's stream this epoch
``item_index``            int64 ``(B,)``: place of the pair among its clip's pairs
========================  =====================================================================

``pair_batches`` adds ``worker`` (the stream that made the batch) and ``skipped`` (samples
that stream skipped so far this epoch, by reason).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial

import numpy as np
import torch

from gaia.training.data.batching import ItemBatches


def sample_pairs(n_frames: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` (i, j) positions among ``n_frames`` decoded frames, int64 ``(count, 2)``.

    ``i`` is uniform and ``j`` uniform among the other frames (``i == j`` only when the clip
    has a single frame).
    """
    if n_frames < 1 or count < 1:
        raise ValueError(f"need at least one frame and one pair, got {n_frames}, {count}")
    first = rng.integers(0, n_frames, size=count)
    if n_frames == 1:
        return np.stack([first, first], axis=1).astype(np.int64)
    second = (first + rng.integers(1, n_frames, size=count)) % n_frames
    return np.stack([first, second], axis=1).astype(np.int64)


def clip_pairs(clip: dict, count: int) -> list[dict]:
    """The pairs of one decoded clip (``ClipStream``'s dicts), from ``clip["first_item"]`` on.

    Always draws all ``count`` pairs first, so skipping the first few (a resumed stream) leaves
    the rest unchanged.
    """
    rng = np.random.default_rng([*clip["seed"], 1])
    positions = sample_pairs(len(clip["frames"]), count, rng)
    frames, landmarks, index = clip["frames"], clip["landmarks"], clip["frame_index"]
    return [
        {
            "appearance": frames[i], "target": frames[j],
            "appearance_landmarks": landmarks[i], "target_landmarks": landmarks[j],
            "key": clip["key"], "frame_index": (int(index[i]), int(index[j])),
            "clip_index": clip["clip_index"], "item_index": n,
        }
        for n, (i, j) in enumerate(positions)
        if n >= clip.get("first_item", 0)
    ]


def _images(frames: Sequence[np.ndarray]) -> torch.Tensor:
    """uint8 ``(H, W, 3)`` frames to float32 ``(B, 3, H, W)`` in ``[-1, 1]``."""
    batch = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)
    return batch.float().div_(127.5).sub_(1.0).contiguous()


def collate_pairs(pairs: Sequence[dict]) -> dict:
    """Stack pairs (``clip_pairs``' dicts) into the batch described in the module docstring."""
    if not pairs:
        raise ValueError("no pairs to collate")
    return {
        "appearance": _images([p["appearance"] for p in pairs]),
        "target": _images([p["target"] for p in pairs]),
        "appearance_landmarks": torch.from_numpy(
            np.stack([p["appearance_landmarks"] for p in pairs]).astype(np.float32)),
        "target_landmarks": torch.from_numpy(
            np.stack([p["target_landmarks"] for p in pairs]).astype(np.float32)),
        "key": [p["key"] for p in pairs],
        "frame_index": torch.tensor([p["frame_index"] for p in pairs], dtype=torch.int64),
        "clip_index": torch.tensor([p["clip_index"] for p in pairs], dtype=torch.int64),
        "item_index": torch.tensor([p["item_index"] for p in pairs], dtype=torch.int64),
    }


def pair_batches(clips: Iterable[dict], batch_size: int, pairs_per_clip: int) -> ItemBatches:
    """Batches of ``batch_size`` pairs (``collate_pairs``), ``pairs_per_clip`` from each clip."""
    if pairs_per_clip < 1:
        raise ValueError(f"pairs_per_clip must be >= 1, got {pairs_per_clip}")
    return ItemBatches(clips, batch_size, partial(clip_pairs, count=pairs_per_clip),
                       collate_pairs)
