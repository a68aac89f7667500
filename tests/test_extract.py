"""extract on real media: shards that a plain reader and `gaia inspect` accept, aligned streams,
crops centred on real faces, an identity split, and resume without duplicates or gaps."""

from __future__ import annotations

import io
import json
import shutil
import tarfile

import numpy as np
import pyarrow.parquet as pq
import pytest

from gaia.pipeline.extract.inspect_shards import inspect_shards
from gaia.pipeline.extract.job import ExtractConfig, run_extract, split_of
from gaia.schemas.shards import load_npy


@pytest.fixture(scope="module")
def extracted(measured_sample, tmp_path_factory):
    """The measured sample copied to its own run, extracted with the vae preset on Ray."""
    root = tmp_path_factory.mktemp("extract") / "run"
    shutil.copytree(measured_sample.root, root)
    config = ExtractConfig(shard_mb=0.35, val_fraction=0.5)
    lines: list[str] = []
    summary = run_extract(root, "vae", config=config, workers=2, log=lines.append)
    yield root, summary, config
    import ray

    ray.shutdown()


def samples(out) -> dict[str, dict[str, bytes]]:
    found: dict[str, dict[str, bytes]] = {}
    for shard in sorted(out.glob("*.tar")):
        with tarfile.open(shard) as archive:
            for member in archive.getmembers():
                key, _, name = member.name.partition(".")
                found.setdefault(key, {})[name] = archive.extractfile(member).read()
    return found


def test_shards_pass_inspect_and_match_the_manifest(extracted):
    root, summary, _ = extracted
    out = root / "shards" / "vae"
    report = inspect_shards(out)
    assert report.ok, report.problems
    manifest = pq.read_table(out / "manifest.parquet").to_pylist()
    assert summary.clips_written == len(manifest) == report.samples >= 3
    assert report.shards >= 2  # the small target size split them
    assert len({row["key"] for row in manifest}) == len(manifest)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["clips"] == len(manifest) and stats["funnel"]["clips"] == len(manifest)


def test_streams_are_aligned_in_length_and_time(extracted):
    import av

    root, _, _ = extracted
    for key, sample in samples(root / "shards" / "vae").items():
        meta = json.loads(sample["json"])
        with av.open(io.BytesIO(sample["mp4"])) as container:
            frames = sum(1 for _ in container.decode(video=0))
        assert frames == meta["frames"] == len(load_npy(sample["landmarks.npy"]))
        assert len(load_npy(sample["pose.npy"])) == frames
        assert meta["end_s"] - meta["start_s"] == pytest.approx(frames / 25.0)
        if meta["has_audio"]:
            import soundfile

            audio, rate = soundfile.read(io.BytesIO(sample["flac"]))
            assert rate == 16000 and len(audio) == frames * 640, key
            speech = load_npy(sample["speech.npy"])
            assert speech.shape[0] == 2 * frames and speech.dtype == np.float16
        else:
            assert "flac" not in sample and "speech.npy" not in sample


def test_crop_centres_real_faces(extracted):
    import av

    from gaia.pipeline.face.detect import FaceDetector

    root, _, _ = extracted
    found = 0
    for key, sample in samples(root / "shards" / "vae").items():
        if "astronaut" not in key:
            continue
        landmarks = load_npy(sample["landmarks.npy"])
        nose = landmarks[:, 30]
        assert np.all(np.abs(np.median(nose, axis=0) - 128) < 40), key
        with av.open(io.BytesIO(sample["mp4"])) as container:
            frame = next(container.decode(video=0)).to_ndarray(format="gray")
        boxes = FaceDetector()(frame)
        assert len(boxes) >= 1, key
        centre = (boxes[0, :2] + boxes[0, 2:]) / 2
        side = boxes[0, 2] - boxes[0, 0]
        assert np.all(np.abs(centre - 128) < 40) and 70 < side < 200, (key, boxes[0])
        found += 1
    assert found >= 2


def test_identity_split_and_provenance(extracted):
    root, _, config = extracted
    manifest = pq.read_table(root / "shards" / "vae" / "manifest.parquet").to_pylist()
    splits: dict[str, set[str]] = {}
    for row in manifest:
        splits.setdefault(row["identity"], set()).add(row["split"])
        assert row["split"] == split_of(row["identity"], config.val_fraction)
    assert all(len(s) == 1 for s in splits.values())  # no identity in both splits
    meta = json.loads(next(iter(samples(root / "shards" / "vae").values()))["json"])
    assert meta["provenance"]["speech_features"]["name"] == "logmel"
    assert meta["provenance"]["denoise"]["name"] == "none"
    assert len(meta["provenance"]["landmarks"]["sha256"]) == 64
    assert meta["untrained"] is False and meta["preset"] == "vae"


def test_a_plain_webdataset_reader_reads_them(extracted):
    import webdataset as wds

    root, _, _ = extracted
    urls = [str(p) for p in sorted((root / "shards" / "vae").glob("*.tar"))]
    keys = [sample["__key__"] for sample in wds.WebDataset(urls, shardshuffle=False)]
    manifest = pq.read_table(root / "shards" / "vae" / "manifest.parquet")
    assert sorted(keys) == sorted(manifest.column("key").to_pylist())


def test_resume_after_a_kill_has_no_duplicates_or_gaps(extracted):
    root, _, config = extracted
    out = root / "shards" / "vae"
    before = sorted(pq.read_table(out / "manifest.parquet").column("key").to_pylist())
    shards = sorted(out.glob("*.tar"))
    # Killed mid-way: the last shard never finished (only a partial file), and the one before
    # finished but its manifest part was never written.
    lost = shards[-1]
    lost.rename(out / f".{lost.name}.deadbeef.partial")
    (out / ".manifest" / f"{lost.stem}.parquet").unlink()
    (out / ".manifest" / f"{shards[0].stem}.parquet").unlink()
    lines: list[str] = []
    summary = run_extract(root, "vae", config=config, workers=2, log=lines.append)
    after = sorted(pq.read_table(out / "manifest.parquet").column("key").to_pylist())
    assert after == before
    assert summary.clips_written >= 1 and summary.clips_written < len(before)
    assert any("rebuilt the manifest of 1" in line for line in lines)
    assert inspect_shards(out).ok
