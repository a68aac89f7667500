"""Decoding one shard sample into a training clip (docs/shards.md).

The JSON, the arrays with ``load_npy`` (pickles refused), and only the frames needed from the
mp4 with PyAV, from memory; every problem is a ``SampleError`` whose ``reason`` the stream
counts the sample under (it is skipped, never raised to the trainer).
"""

from __future__ import annotations

import io
import json
from collections.abc import Container, Iterator
from typing import Protocol

import numpy as np

from gaia.common.pixel_format import _exact
from gaia.schemas.shards import (
    N_LANDMARKS,
    REQUIRED_MEMBERS,
    SPEECH_ROWS_PER_FRAME,
    check_member,
    load_npy,
)


class ClipDecoding(Protocol):
    """What decoding reads of a stream's settings (``shard_stream.ClipStreamConfig`` is one,
    defined there, above this module): the split kept, the frames drawn, the image size."""

    @property
    def split(self) -> str | None: ...

    @property
    def max_frames(self) -> int: ...

    @property
    def frame_sampling(self) -> str: ...

    @property
    def image_size(self) -> int: ...


class SampleError(ValueError):
    """A sample that cannot be used; ``reason`` is the code it is counted under."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def checked_members(sample: dict) -> dict[str, bytes]:
    """A raw sample's members (WebDataset's ``__key__``/``__url__`` left out), each name checked
    against the shard spec; a refused one (a pickle, say) is ``SampleError("refused_member")``."""
    members = {name: blob for name, blob in sample.items() if not name.startswith("__")}
    for name in members:
        try:
            check_member(name)
        except ValueError as err:
            raise SampleError("refused_member", str(err)) from err
    return members


def _frame_indices(frames: int, config: ClipDecoding, rng: np.random.Generator) -> np.ndarray:
    count = min(frames, config.max_frames)
    if config.frame_sampling == "window":
        start = int(rng.integers(0, frames - count + 1))
        return np.arange(start, start + count)
    return np.sort(rng.choice(frames, size=count, replace=False))


def _decoded(blob: bytes, size: int, wanted: Container[int], last: int
             ) -> Iterator[tuple[int, np.ndarray, int, int]]:
    """``(index, frame, width, height)`` for the frames of an mp4 in memory whose index is in
    ``wanted``, up to ``last``, as uint8 ``(size, size, 3)`` RGB; SampleError when it does not
    decode or ends before ``last``. Frames not wanted are decoded but never converted."""
    import av
    from av.video.reformatter import VideoReformatter

    reformatter, flags = VideoReformatter(), _exact("AREA")
    seen = 0
    try:
        with av.open(io.BytesIO(blob), mode="r") as container:
            if not container.streams.video:
                raise SampleError("bad_mp4", "mp4 has no video stream")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            for seen, frame in enumerate(container.decode(stream), start=1):
                if seen - 1 in wanted:
                    yield seen - 1, reformatter.reformat(
                        frame, size, size, "rgb24", interpolation=flags,
                        threads=1).to_ndarray(), width, height
                if seen > last:
                    break
    except SampleError:
        raise
    except Exception as err:  # noqa: BLE001 - any decoder failure marks the sample corrupt
        raise SampleError("bad_mp4", f"mp4 does not decode: {type(err).__name__}: {err}") from err
    if seen <= last:
        raise SampleError("misaligned", f"mp4 has {seen} frames, the json needs {last + 1}")


def decode_frames(blob: bytes, indices: np.ndarray, size: int) -> tuple[np.ndarray, int, int]:
    """Frames ``indices`` (sorted) of an mp4 in memory as uint8 ``(n, size, size, 3)`` RGB, and
    the stream's width and height. Decoding stops after the last index.

    The frames are those of ``pixel_format.rgb_array`` byte for byte (the same bit-exact area
    resize), from one swscale context per clip on one thread: ``rgb_array`` makes a context,
    and a pool of threads, per frame, which cost more than decoding the frame did.
    """
    wanted, out = {int(i): n for n, i in enumerate(indices)}, [None] * len(indices)
    shape = (0, 0)
    for index, image, *found in _decoded(blob, size, wanted, int(indices[-1])):
        out[wanted[index]], shape = image, found
    return np.stack(out), shape[0], shape[1]


def frame_batches(blob: bytes, frames: int, size: int, batch: int) -> Iterator[np.ndarray]:
    """All ``frames`` frames of an mp4 in memory, the same pixels ``decode_frames`` gives, as
    uint8 ``(b, size, size, 3)`` batches of at most ``batch`` (bounded memory for long clips:
    encode-latents of a VAE without disentanglement encodes every frame)."""
    pending: list[np.ndarray] = []
    for _, image, _, _ in _decoded(blob, size, range(frames), frames - 1):
        pending.append(image)
        if len(pending) == batch:
            yield np.stack(pending)
            pending = []
    if pending:
        yield np.stack(pending)


def _array(members: dict, name: str, rows: int, tail: tuple[int, ...] | None) -> np.ndarray:
    try:
        array = load_npy(members[name])
    except Exception as err:  # noqa: BLE001 - pickles, npz, truncated files alike
        raise SampleError("bad_array", f"{name} is not a plain .npy array: {err}") from err
    if array.ndim < 1 or not np.issubdtype(array.dtype, np.floating):
        raise SampleError("bad_array", f"{name} has dtype {array.dtype}, shape {array.shape}")
    if (array.ndim != 2) if tail is None else (array.shape[1:] != tail):
        raise SampleError("bad_array", f"{name} has shape {array.shape}")
    if array.shape[0] != rows:
        raise SampleError("misaligned", f"{name} has {array.shape[0]} rows, expected {rows}")
    if not np.isfinite(array).all():
        raise SampleError("bad_array", f"{name} holds non-finite values")
    return array


def decode_sample(sample: dict, config: ClipDecoding,
                  rng: np.random.Generator) -> dict | None:
    """One raw WebDataset sample (member name -> bytes) to a decoded clip; None when its split
    is not ``config.split``; SampleError when it cannot be used.

    The clip: ``key``, ``url``, ``meta`` (the JSON), ``frame_index`` (int64 ``(n,)``, the
    frames kept), ``frames`` (uint8 ``(n, S, S, 3)``), ``landmarks`` (float32 ``(n, 68, 2)``,
    pixels of the ``S`` image), ``pose`` (float32 ``(n, 3)``), ``speech`` (float16
    ``(n, 2, D)``, or None without audio).
    """
    members = checked_members(sample)
    missing = [name for name in REQUIRED_MEMBERS if name not in members]
    if missing:
        raise SampleError("missing_member", f"missing members {missing}")
    try:
        meta = json.loads(members["json"].decode("utf-8"))
        frames = meta["frames"]
        if not isinstance(frames, int) or isinstance(frames, bool) or frames < 1:
            raise ValueError(f"frames is {frames!r}")
        if meta.get("key", sample.get("__key__")) != sample.get("__key__"):
            raise ValueError(f"json key {meta.get('key')!r} is not the sample key")
    except Exception as err:  # noqa: BLE001 - undecodable bytes, not an object, bad fields
        raise SampleError("bad_json", f"json unusable: {type(err).__name__}: {err}") from err
    if config.split is not None and meta.get("split") != config.split:
        return None
    landmarks = _array(members, "landmarks.npy", frames, (N_LANDMARKS, 2))
    pose = _array(members, "pose.npy", frames, (3,))
    speech = _array(members, "speech.npy", SPEECH_ROWS_PER_FRAME * frames, None) \
        if "speech.npy" in members else None
    index = _frame_indices(frames, config, rng)
    images, width, height = decode_frames(members["mp4"], index, config.image_size)
    # Pixel centres map through the resize: x' = (x + 0.5) * S / W - 0.5.
    scale = np.array([config.image_size / width, config.image_size / height], np.float32)
    return {
        "key": sample["__key__"], "url": sample.get("__url__", ""), "meta": meta,
        "frame_index": index.astype(np.int64), "frames": images,
        "landmarks": ((landmarks[index] + 0.5) * scale - 0.5).astype(np.float32),
        "pose": pose[index].astype(np.float32),
        "speech": None if speech is None else speech.reshape(frames, 2, -1)[index],
    }


