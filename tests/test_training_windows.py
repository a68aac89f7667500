"""Training windows of the s2m model (paper, appendix B.3: random lengths of 125-250
frames at random starts; issue 12, item 4): clips shorter than ``window_min`` give one whole
window or none (``short_clips``), no window is given twice, and a resumed loader repeats an
uninterrupted one.

Latent shards are synthetic here (random arrays in the ``gaia.schemas.latents`` layout): the
windows depend only on the clips' lengths.
"""

from __future__ import annotations

import json
import logging
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
import torch
import webdataset as wds

from gaia.schemas.latents import LATENT_SCHEMA_VERSION
from gaia.schemas.shards import dump_npy
from gaia.training.data.clip_decode import SampleError
from gaia.training.data.latent_windows import (
    WindowStreamConfig,
    clip_windows,
    draw_windows,
    window_pool,
)
from gaia.training.data.shard_stream import SKIP_REASONS, shard_loader

DIM, FEATURES = 4, 6


def clip(frames: int, seed: int = 0) -> dict:
    """A decoded clip of ``frames`` frames, as ``decode_latent_sample`` gives it."""
    rng = np.random.default_rng(seed)
    motion = rng.normal(size=(frames, DIM)).astype(np.float32)
    return {"motion": motion, "pose": np.zeros((frames, 3), np.float32),
            "speech": np.zeros((2 * frames, FEATURES), np.float16), "reference": motion[0],
            "key": f"clip{seed}", "clip_index": seed, "seed": (7, seed)}


def spans(windows: list[dict]) -> list[tuple[int, int]]:
    return [(w["start"], len(w["motion"])) for w in windows]


def raw_sample(key: str, frames: int) -> dict:
    """A latent-shard sample (members as bytes) of ``frames`` frames."""
    data = clip(frames, seed=frames)
    meta = {"key": key, "latent_schema_version": LATENT_SCHEMA_VERSION, "frames": frames,
            "fps": 25, "split": "train", "identity": "someone", "source_video": "v.mp4",
            "reference_frame": 0, "latent_shape": [DIM, 1, 1], "vae": {},
            "speech_features": {"name": "logmel"}}
    return {"__key__": key, "json": json.dumps(meta).encode(),
            **{f"{name}.npy": dump_npy(data[name])
               for name in ("motion", "reference", "speech", "pose")}}


@pytest.fixture(scope="module")
def mixed_shards(tmp_path_factory) -> Path:
    """Two shards of clips 60 (short), 400, 126 (3 distinct windows), 80 (short) and 300
    frames long."""
    folder = tmp_path_factory.mktemp("latent-windows")
    lengths = [[60, 400, 126], [80, 300]]
    for n, shard in enumerate(lengths):
        with wds.TarWriter(str(folder / f"latents-{n:06d}.tar")) as sink:
            for frames in shard:
                sink.write(raw_sample(f"c{frames:04d}", frames))
    return folder


def test_a_short_clip_gives_one_whole_window():
    config = WindowStreamConfig("unused", windows_per_clip=4)
    assert config.short_clips == "whole"
    windows = clip_windows(clip(60), config)
    assert spans(windows) == [(0, 60)]  # once, not windows_per_clip copies
    assert [w["item_index"] for w in windows] == [0]


def test_a_short_clip_is_dropped_and_counted_when_asked(mixed_shards, caplog):
    config = WindowStreamConfig(str(mixed_shards), short_clips="drop", shuffle_buffer=0)
    sample = raw_sample("short", 60)
    with pytest.raises(SampleError) as dropped:
        config.decode(sample, np.random.default_rng(0))
    assert dropped.value.reason == "short_clip" and "short_clip" in SKIP_REASONS
    assert config.decode(raw_sample("long", 400), np.random.default_rng(0)) is not None
    loader = shard_loader(config, 2, num_workers=0, batches_per_epoch=None)
    with caplog.at_level(logging.WARNING):
        keys = [key for batch in loader for key in batch["key"]]
    assert not {"c0060", "c0080"} & set(keys) and {"c0400", "c0126", "c0300"} <= set(keys)
    assert loader.skipped_total == {"short_clip": 2}
    assert not caplog.records  # asked for, not a fault: no warning
    whole = shard_loader(WindowStreamConfig(str(mixed_shards), shuffle_buffer=0), 2,
                         num_workers=0, batches_per_epoch=None)
    keys = [key for batch in whole for key in batch["key"]]
    assert keys.count("c0060") == keys.count("c0080") == 1 and whole.skipped_total == {}


def test_windows_vary_in_length_and_start_within_the_paper_range():
    config = WindowStreamConfig("unused", windows_per_clip=2)
    drawn = [span for seed in range(300) for span in spans(clip_windows(clip(400, seed),
                                                                           config))]
    starts, lengths = np.array(drawn).T
    assert lengths.min() >= 125 and lengths.max() <= 250
    assert (starts >= 0).all() and (starts + lengths <= 400).all()
    assert len(set(lengths)) > 80 and len(set(starts)) > 150  # of 126 lengths, 276 starts
    assert lengths.min() < 140 and lengths.max() > 235 and starts.max() > 250


@pytest.mark.parametrize(("frames", "count", "distinct"), [(125, 4, 1), (126, 8, 3),
                                                           (127, 4, 6), (127, 8, 6),
                                                           (130, 30, 21)])
def test_no_window_is_given_twice(frames, count, distinct):
    """A clip with room for fewer distinct windows than asked gives each once; one with room
    for more gives ``count``, all different."""
    config = WindowStreamConfig("unused", windows_per_clip=count)
    pool, chance = window_pool(frames, config)
    assert len(pool) == distinct and np.isclose(chance.sum(), 1.0)
    for seed in range(20):
        got = spans(clip_windows(clip(frames, seed), config))
        assert len(got) == min(count, distinct) == len(set(got))
        assert all(start + length <= frames and 125 <= length <= 250 for start, length in got)


def test_no_repeats_even_when_the_draws_collide():
    """Many windows of a clip with few distinct ones: the first draws collide, and the rest
    are drawn among the windows not given yet."""
    config = WindowStreamConfig("unused", window_min=3, window_max=5, windows_per_clip=6)
    for seed in range(50):
        got = [tuple(span) for span in draw_windows(7, config, 6, np.random.default_rng(seed))]
        assert len(got) == len(set(got)) == 6  # of 5 + 4 + 3 = 12 distinct


def test_usual_draws_are_unchanged_by_the_repeat_check():
    """Without a collision, the windows are the plain draws (a length, then a start), so runs
    made before the check draw the same windows."""
    config = WindowStreamConfig("unused", window_min=25, window_max=50, windows_per_clip=2)
    rng, plain = np.random.default_rng(3), np.random.default_rng(3)
    lengths = np.minimum(plain.integers(25, 51, size=2), 100)
    starts = plain.integers(0, 100 - lengths + 1)
    np.testing.assert_array_equal(draw_windows(100, config, 2, rng),
                                  np.stack([starts, lengths], axis=1))


def same(left: list[dict], right: list[dict]) -> None:
    assert len(left) == len(right)
    for a, b in zip(left, right, strict=True):
        assert a["key"] == b["key"] and torch.equal(a["start"], b["start"])
        for name in ("motion", "speech", "mask", "reference"):
            assert torch.equal(a[name], b[name]), name


@pytest.mark.parametrize("short_clips", ["whole", "drop"])
def test_resume_repeats_an_uninterrupted_loader(mixed_shards, short_clips):
    """Batches of 3 from clips giving 1, 3 or 4 windows: cuts land inside clips, after a
    short clip's only window and after a clip that gave fewer than ``windows_per_clip``."""
    config = WindowStreamConfig(str(mixed_shards), windows_per_clip=4, short_clips=short_clips,
                                shuffle_buffer=3, seed=5)
    whole_run = shard_loader(config, 3, num_workers=0, batches_per_epoch=8)
    reference = list(whole_run)
    for cut in range(1, 8):
        interrupted = shard_loader(config, 3, num_workers=0, batches_per_epoch=8)
        same(list(islice(interrupted, cut)), reference[:cut])
        resumed = shard_loader(config, 3, num_workers=0, batches_per_epoch=8)
        resumed.load_state_dict(json.loads(json.dumps(interrupted.state_dict())))
        same(list(resumed), reference[cut:])
        assert resumed.skipped_total == whole_run.skipped_total  # counted once, not twice
    windows = [(key, int(start)) for batch in reference
               for key, start in zip(batch["key"], batch["start"], strict=True)]
    assert ("c0060", 0) in windows if short_clips == "whole" else "c0060" not in dict(windows)
