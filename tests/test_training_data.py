"""Training data (docs/shards.md, docs/models.md, docs/practices.md): shard specs, decoded clips, VAE pairs, ranks,
epochs, resume and corrupt samples, on shards cut from real faces (the ``sample_shards``
fixture) and copies of them rewritten with tarfile."""

from __future__ import annotations

import io
import json
import pickle
import tarfile
from itertools import islice
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from gaia.common.pixel_format import rgb_array
from gaia.schemas.shards import load_npy
from gaia.training.data.pairs import collate_pairs, sample_pairs
from gaia.training.data.shard_stream import (
    ClipStream,
    ClipStreamConfig,
    assign_shards,
    expand_shards,
    shard_loader,
)

SHARD_SIZES = (1, 2, 3, 1, 2)  # five shards (odd), uneven


def read_tar(path: Path) -> list[tuple[str, dict[str, bytes]]]:
    """(key, {member: bytes}) in tar order."""
    samples: dict[str, dict[str, bytes]] = {}
    with tarfile.open(path) as tar:
        for info in tar.getmembers():
            key, member = info.name.split(".", 1)
            samples.setdefault(key, {})[member] = tar.extractfile(info).read()
    return list(samples.items())


def write_tar(path: Path, samples: list[tuple[str, dict[str, bytes]]]) -> Path:
    with tarfile.open(path, "w") as tar:
        for key, members in samples:
            for member, blob in members.items():
                info = tarfile.TarInfo(f"{key}.{member}")
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
    return path


def renamed(members: dict[str, bytes], key: str) -> tuple[str, dict[str, bytes]]:
    meta = json.loads(members["json"])
    meta["key"] = key
    return key, {**members, "json": json.dumps(meta).encode()}


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def originals(sample_shards) -> list[tuple[str, dict[str, bytes]]]:
    # The sample's clips, from however many shards the size target split them into.
    return [item for shard in sorted(sample_shards.glob("*.tar")) for item in read_tar(shard)]


@pytest.fixture(scope="module")
def shard_set(originals, tmp_path_factory) -> Path:
    """Five shards of 1, 2, 3, 1, 2 clips (copies of the real ones under new keys)."""
    folder = tmp_path_factory.mktemp("shard-set")
    count = 0
    for n, size in enumerate(SHARD_SIZES):
        samples = []
        for _ in range(size):
            key, members = originals[count % len(originals)]
            samples.append(renamed(members, f"{key}-c{count:02d}"))
            count += 1
        write_tar(folder / f"shard-{n:06d}.tar", samples)
    return folder


def config(shards, **kw) -> ClipStreamConfig:
    settings = {"image_size": 64, "shuffle_buffer": 4, "max_frames": 8, "pairs_per_clip": 2,
                "seed": 7} | kw
    return ClipStreamConfig(str(shards), **settings)


def all_keys(batches) -> list[str]:
    return [key for batch in batches for key in batch["key"]]


def assert_same_batches(left: list[dict], right: list[dict]) -> None:
    assert len(left) == len(right)
    for a, b in zip(left, right, strict=True):
        assert a["key"] == b["key"]
        for name in ("appearance", "target", "target_landmarks", "appearance_landmarks",
                     "frame_index"):
            assert torch.equal(a[name], b[name]), name


def test_expand_shards_forms(tmp_path):
    for n in range(5):
        (tmp_path / f"shard-{n:06d}.tar").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a shard")
    names = [f"{tmp_path}/shard-{n:06d}.tar" for n in range(5)]
    assert expand_shards(str(tmp_path)) == names
    assert expand_shards(f"{tmp_path}/shard-00000[1-3].tar") == names[1:4]
    assert expand_shards(f"{tmp_path}/shard-{{000002..000004}}.tar") == names[2:]
    assert expand_shards(f"{names[4]},{tmp_path}/shard-{{000000,000001}}.tar") == \
        [names[4], names[0], names[1]]
    assert expand_shards("pipe:cat a-{0..1}.tar, s3://bucket/b.tar") == \
        ["pipe:cat a-0.tar", "pipe:cat a-1.tar", "s3://bucket/b.tar"]
    (tmp_path / "empty").mkdir()
    for spec in (str(tmp_path / "empty"), f"{tmp_path}/*.tgz", f"{tmp_path}/shard-9.tar",
                 f"{tmp_path}/shard-{{000004..000005}}.tar", " , "):
        with pytest.raises(FileNotFoundError, match="no shards"):
            expand_shards(spec)


def test_assign_shards_and_pair_draws():
    urls = [f"s{n}" for n in range(5)]
    slots = [assign_shards(urls, slot, 4) for slot in range(4)]
    assert sorted(sum(slots, [])) == urls and len(slots[0]) == 2
    assert assign_shards(urls[:2], 3, 4) == ["s1"]  # fewer shards than slots: reused
    pairs = sample_pairs(8, 500, np.random.default_rng(0))
    assert pairs.shape == (500, 2) and (pairs[:, 0] != pairs[:, 1]).all()
    assert pairs.min() == 0 and pairs.max() == 7
    assert (sample_pairs(1, 3, np.random.default_rng(0)) == 0).all()
    with pytest.raises(ValueError):
        collate_pairs([])


def test_batch_shapes_dtypes_ranges_and_scaled_landmarks(shard_set):
    raw = {key: members for shard in sorted(shard_set.glob("*.tar"))
           for key, members in read_tar(shard)}
    loader = shard_loader(config(shard_set), batch_size=6, batches_per_epoch=2)
    batches = list(loader)
    assert len(batches) == 2 and len(loader) == 2
    for batch in batches:
        for name in ("appearance", "target"):
            assert batch[name].shape == (6, 3, 64, 64) and batch[name].dtype == torch.float32
            assert batch[name].min() >= -1.0 and batch[name].max() <= 1.0
            assert batch[name].std() > 0.1  # real pictures, not a constant
        assert len(batch["key"]) == 6 and batch["frame_index"].shape == (6, 2)
        assert (batch["frame_index"][:, 0] != batch["frame_index"][:, 1]).all()
        for n, key in enumerate(batch["key"]):
            landmarks = load_npy(raw[key]["landmarks.npy"])  # 256-pixel crop coordinates
            i, j = batch["frame_index"][n].tolist()
            for name, frame in (("appearance_landmarks", i), ("target_landmarks", j)):
                got = batch[name][n]
                assert got.dtype == torch.float32 and got.shape == (68, 2)
                expected = (landmarks[frame] + 0.5) * 64 / 256 - 0.5
                np.testing.assert_allclose(got.numpy(), expected, atol=1e-4)
        assert batch["target_landmarks"].max() < 64  # a face inside the 64-pixel picture


def test_pairs_are_frames_of_the_same_clip(sample_shards, originals):
    """At full size, each pair's two pictures are frames i and j of the mp4 of its key."""
    frames = {}
    for key, members in originals:
        with av.open(io.BytesIO(members["mp4"])) as container:
            frames[key] = [rgb_array(f) for f in container.decode(video=0)]
    loader = shard_loader(config(sample_shards, image_size=256, pairs_per_clip=3),
                         batch_size=6, batches_per_epoch=2)
    for batch in loader:
        pictures = {name: ((batch[name] + 1) * 127.5).round().to(torch.uint8)
                    .permute(0, 2, 3, 1).numpy() for name in ("appearance", "target")}
        for n, key in enumerate(batch["key"]):
            i, j = batch["frame_index"][n].tolist()
            assert np.array_equal(pictures["appearance"][n], frames[key][i])
            assert np.array_equal(pictures["target"][n], frames[key][j])
            assert not np.array_equal(frames[key][i], frames[key][j])  # a moving face


def test_ranks_disjoint_and_equal_batch_counts(shard_set):
    cfg = config(shard_set)
    one_pass = [all_keys(shard_loader(cfg, 4, rank=r, world_size=2)) for r in (0, 1)]
    assert not set(one_pass[0]) & set(one_pass[1])
    assert len(set(one_pass[0]) | set(one_pass[1])) == sum(SHARD_SIZES)
    assert len(set(one_pass[0])) != len(set(one_pass[1]))  # uneven shards: uneven ranks
    for epoch in (0, 1):
        loaders = [shard_loader(cfg, 4, rank=r, world_size=2, epoch=epoch, batches_per_epoch=5)
                   for r in (0, 1)]
        keys = [all_keys(loader) for loader in loaders]
        assert [len(k) for k in keys] == [20, 20]  # 5 batches of 4 on both ranks
        assert not set(keys[0]) & set(keys[1])
        mine = {r: {key for shard in ClipStream(cfg, r, 2, epoch).worker_shards(0, 1)
                    for key, _ in read_tar(Path(shard))} for r in (0, 1)}
        assert set(keys[0]) <= mine[0] and set(keys[1]) <= mine[1]


def test_epoch_changes_order_seed_repeats_it(shard_set):
    cfg = config(shard_set)
    first = list(shard_loader(cfg, 4, epoch=0, batches_per_epoch=3))
    again = list(shard_loader(cfg, 4, epoch=0, batches_per_epoch=3))
    assert_same_batches(first, again)
    loader = shard_loader(cfg, 4, epoch=0, batches_per_epoch=3)
    loader.set_epoch(1)
    second = list(loader)
    assert [(k, f) for b in first for k, f in zip(b["key"], b["frame_index"].tolist(),
                                                  strict=True)] != \
        [(k, f) for b in second for k, f in zip(b["key"], b["frame_index"].tolist(),
                                                strict=True)]
    assert_same_batches(second, list(shard_loader(cfg, 4, epoch=1, batches_per_epoch=3)))
    next_epoch = list(loader)  # a complete epoch moves on by itself
    assert loader.epoch == 2 and len(next_epoch) == 3


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_yields_the_same_next_batches(shard_set, workers):
    cfg = config(shard_set)
    reference = list(shard_loader(cfg, 4, num_workers=workers, batches_per_epoch=6))
    if workers:
        assert {b["worker"] for b in reference} == {0, 1}
    interrupted = shard_loader(cfg, 4, num_workers=workers, batches_per_epoch=6)
    assert_same_batches(list(islice(interrupted, 3)), reference[:3])
    state = json.loads(json.dumps(interrupted.state_dict()))
    assert state["epoch"] == 0 and state["batches"] == 3
    resumed = shard_loader(cfg, 4, num_workers=workers, batches_per_epoch=6)
    resumed.load_state_dict(state)
    resumed.set_epoch(0)  # the trainer's usual call keeps the place in the current epoch
    assert_same_batches(list(resumed), reference[3:])
    assert_same_batches(list(interrupted), reference[3:])  # iterating again continues too
    other = shard_loader(cfg, 4, num_workers=workers + 1, batches_per_epoch=6)
    with pytest.raises(ValueError, match="same settings"):
        other.load_state_dict(state)


def test_corrupt_and_pickled_samples_are_skipped_and_counted(originals, tmp_path, caplog):
    marker = tmp_path / "unpickled"

    class Evil:
        def __reduce__(self):
            return (Path.mkdir, (marker,))

    (k0, good0), (k1, good1), (k2, good2) = originals[:3]
    frames = json.loads(good0["json"])["frames"]
    landmarks = load_npy(good1["landmarks.npy"])
    samples = [
        (k0, good0),
        ("short_landmarks", {**renamed(good1, "short_landmarks")[1],
                             "landmarks.npy": npy(landmarks[:-1])}),
        ("garbage_mp4", {**renamed(good2, "garbage_mp4")[1], "mp4": b"\x00garbage" * 500}),
        ("pickled", {**renamed(good0, "pickled")[1], "pyd": pickle.dumps(Evil())}),
        ("object_pose", {**renamed(good1, "object_pose")[1],
                         "pose.npy": npy(np.array([Evil()] * frames, dtype=object))}),
        ("bad_json", {**renamed(good2, "bad_json")[1], "json": b"{not json"}),
        (k1, good1),
    ]
    write_tar(tmp_path / "shard-000000.tar", samples)
    write_tar(tmp_path / "shard-000001.tar", [(k2, good2)])
    cut = write_tar(tmp_path / "shard-000002.tar", [renamed(good0, "whole"),
                                                   renamed(good1, "cut")])
    with tarfile.open(cut) as tar:  # cut inside the second sample's mp4
        end = tar.getmember("cut.mp4").offset_data + 100
    cut.write_bytes(cut.read_bytes()[:end])
    loader = shard_loader(config(tmp_path / "*.tar", split=None), batch_size=2)
    keys = set(all_keys(loader))
    assert keys == {k0, k1, k2, "whole"}
    assert loader.skipped == {"misaligned": 1, "bad_mp4": 1, "refused_member": 1,
                              "bad_array": 1, "bad_json": 1, "bad_shard": 1,
                              "missing_member": 1}  # the cut sample's first members
    assert not marker.exists()  # nothing was unpickled
    assert "pickled" in caplog.text and "refused_member" in caplog.text
    looping = shard_loader(config(tmp_path, split=None), batch_size=2, batches_per_epoch=8)
    assert len(list(looping)) == 8 and looping.skipped["bad_mp4"] >= 1


def test_skipped_totals_add_up_over_epochs_and_survive_a_resume(originals, tmp_path):
    (k0, good0), (k1, good1) = originals[:2]
    write_tar(tmp_path / "shard-000000.tar", [
        (k0, good0), ("garbage_mp4", {**renamed(good1, "garbage_mp4")[1], "mp4": b"\x00" * 999}),
        (k1, good1)])
    loader = shard_loader(config(tmp_path, split=None, shuffle_buffer=0), batch_size=2,
                          batches_per_epoch=3)
    per_epoch = []
    for _ in range(2):
        list(loader)
        per_epoch.append(loader.skipped.get("bad_mp4", 0))
    assert per_epoch[0] >= 1 and per_epoch[1] >= 1  # each epoch meets it again
    assert loader.skipped_total == {"bad_mp4": sum(per_epoch)}
    resumed = shard_loader(config(tmp_path, split=None, shuffle_buffer=0), batch_size=2,
                           batches_per_epoch=3)
    resumed.load_state_dict(loader.state_dict())
    assert resumed.skipped_total == loader.skipped_total
    list(resumed)  # a third epoch adds to the totals
    assert resumed.skipped_total["bad_mp4"] == sum(per_epoch) + resumed.skipped["bad_mp4"]


def test_no_usable_sample_raises_instead_of_hanging(sample_shards):
    loader = shard_loader(config(sample_shards, split="val"), 2, batches_per_epoch=2)
    with pytest.raises(RuntimeError, match="no usable sample"):
        list(loader)
