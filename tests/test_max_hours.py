"""``--max-hours H`` (paper, tables 4-5: the same corpus at 0.1K, 0.5K and 1K hours): the same
clips every time, nested subsets, a total within one clip of H, all clips when H is more than
the data, the loaders reading only the chosen clips, and the run recording what it trained on."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from gaia.schemas.shards import FPS
from gaia.training.data.hours_subset import clip_order, select_hours

HOUR = 3600 * FPS  # frames


def fake_shards(folder: Path, clips: list[tuple[str, int, str]], per_shard: int = 5,
                manifest: bool = True) -> list[tuple[str, int, str, str]]:
    """Tar shards of JSON-only samples (all the subset reads) and their manifest; returns
    (key, frames, split, shard) per clip."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for start in range(0, len(clips), per_shard):
        name = f"shard-{start // per_shard:06d}.tar"
        with tarfile.open(folder / name, "w") as archive:
            for key, frames, split in clips[start:start + per_shard]:
                data = json.dumps({"key": key, "frames": frames, "split": split}).encode()
                info = tarfile.TarInfo(f"{key}.json")
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
                rows.append((key, frames, split, name))
    if manifest:
        table = pa.Table.from_pylist([{"key": k, "shard": s, "frames": f, "split": sp}
                                      for k, f, sp, s in rows])
        pq.write_table(table, folder / "manifest.parquet")
    return rows


@pytest.fixture()
def corpus(tmp_path) -> tuple[Path, list]:
    # 40 clips of 0.05 h to 0.24 h (4500 to 21600 frames): 29 train, 11 val.
    clips = [(f"clip_{n:03d}", 4500 + 450 * (n % 9) * 4, "val" if n % 4 == 3 and n < 44 else
              "train") for n in range(40)]
    return tmp_path / "shards", fake_shards(tmp_path / "shards", clips)


def test_the_same_clips_nested_and_within_one_clip_of_the_hours(corpus):
    folder, rows = corpus
    frames = {key: f for key, f, split, _ in rows if split == "train"}
    first, again = select_hours(str(folder), 1.0), select_hours(str(folder), 1.0)
    assert first.keys == again.keys and first.digest == again.digest
    assert first.source == "manifest" and first.split == "train"
    assert first.keys <= set(frames)  # train clips only
    total = sum(frames[k] for k in first.keys)
    assert first.hours == pytest.approx(total / HOUR)
    # Reaching H takes the last clip in: the sum passes H by less than that clip.
    last = max(first.keys, key=clip_order)
    assert total >= HOUR and total - frames[last] < HOUR
    # Exactly the first clips in hash order, so a smaller subset is inside a larger one.
    order = sorted(frames, key=clip_order)
    assert first.keys == set(order[:len(first.keys)])
    small = select_hours(str(folder), 0.3)
    assert small.keys < first.keys and not small.everything
    record = first.record()
    assert record["clips"] == len(first.keys) and record["max_hours"] == 1.0
    assert record["clips_available"] == len(frames) and record["hours"] >= 1.0
    # Only the shards that hold a chosen clip are read.
    chosen_shards = {shard for key, _, _, shard in rows if key in small.keys}
    assert {Path(url).name for url in small.shards} == chosen_shards


def test_more_hours_than_the_data_uses_everything_and_says_so(corpus):
    folder, rows = corpus
    train = {key for key, _, split, _ in rows if split == "train"}
    subset = select_hours(str(folder), 1000.0)
    assert subset.keys == train and subset.everything
    assert subset.hours == pytest.approx(subset.hours_available)
    assert "every clip is used" in subset.line()
    with pytest.raises(ValueError, match="positive"):
        select_hours(str(folder), 0.0)


def test_shards_without_a_manifest_are_read_for_their_json(corpus, tmp_path):
    folder, rows = corpus
    plain = tmp_path / "plain"
    fake_shards(plain, [(k, f, s) for k, f, s, _ in rows], manifest=False)
    listed, scanned = select_hours(str(folder), 0.7), select_hours(str(plain), 0.7)
    assert scanned.source == "scan" and scanned.keys == listed.keys
    assert scanned.hours == listed.hours


def test_loaders_read_only_the_chosen_clips(sample_shards, latent_shards):
    from gaia.training.data.latent_windows import WindowStreamConfig
    from gaia.training.data.shard_stream import ClipStreamConfig, shard_loader

    table = pq.read_table(sample_shards / "manifest.parquet").to_pylist()
    shortest = min(row["frames"] for row in table if row["split"] == "train")
    subset = select_hours(str(sample_shards), shortest / HOUR / 2)  # one clip
    assert len(subset.keys) == 1 and subset.clips_available > 1
    stream = ClipStreamConfig(shards=str(sample_shards), image_size=32, max_frames=2,
                              pairs_per_clip=2, shuffle_buffer=0, subset=subset)
    loader = shard_loader(stream, 2, rank=0, world_size=1, batches_per_epoch=3)
    keys = {key for batch in loader for key in batch["key"]}
    assert keys == set(subset.keys)
    # The same on latent shards: the windows come from the chosen clips only.
    latents = select_hours(str(latent_shards), 2 * shortest / HOUR)
    windows = WindowStreamConfig(shards=str(latent_shards), window_min=4, window_max=8,
                                 shuffle_buffer=0, subset=latents)
    loader = shard_loader(windows, 2, rank=0, world_size=1, batches_per_epoch=4)
    assert {key for batch in loader for key in batch["key"]} <= set(latents.keys)
    assert loader.state_dict()["setup"]["subset"] == latents.digest


def test_a_run_records_its_subset(latent_shards, tmp_path):
    from gaia.training.s2m.train import S2mTrainOptions, train_s2m

    lines: list[str] = []
    out = tmp_path / "run"
    train_s2m(S2mTrainOptions(
        config="s2m-tiny", shards=str(latent_shards), out=str(out), max_steps=1, batch_size=2,
        num_workers=0, batches_per_epoch=1, log_every=1, image_every=0, checkpoint_every=1,
        max_hours=0.001), log=lines.append)
    document = json.loads((out / "config.json").read_text())
    subset = document["data_subset"]
    assert subset["max_hours"] == 0.001 and subset["hours"] >= 0.001 and subset["clips"] >= 1
    assert subset["keys_sha256"] == select_hours(str(latent_shards), 0.001).digest
    assert yaml.safe_load((out / "config.yaml").read_text())["max_hours"] == 0.001
    assert any("--max-hours 0.001" in line for line in lines)
