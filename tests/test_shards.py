"""Shards (docs/shards.md): written by ShardWriter, read by plain WebDataset, checked by
inspect_shards, which names every corruption. Samples are real media: the astronaut portrait
moving a little, with synthesized speech encoded to FLAC."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gaia.pipeline.cli.inspect import add_inspect_parser, handle_inspect
from gaia.pipeline.extract.inspect_shards import inspect_shards
from gaia.pipeline.extract.shard_writer import ShardInfo, ShardWriter
from gaia.schemas.shards import (
    MANIFEST_SCHEMA,
    SHARD_SCHEMA_VERSION,
    load_npy,
    manifest_row,
    validate_sample,
)

FPS = 25
CLIPS = ((20, True, "train"), (25, True, "train"), (15, False, "val"))  # frames, audio, split
SPEECH_DIM = 8


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _motion(n_frames: int, seed: int) -> np.ndarray:
    """Small per-frame shifts (dx, dy) in pixels: a person sitting and breathing."""
    t = np.arange(n_frames)
    return np.stack([1.5 * np.sin(t / 4 + seed), 1.0 * np.cos(t / 5 + seed)], axis=1)


def _frames(shifts: np.ndarray) -> list[np.ndarray]:
    import cv2

    from gaia.samples.build import portrait

    base = cv2.resize(portrait(), (256, 256), interpolation=cv2.INTER_AREA)
    return [cv2.warpAffine(base, np.float32([[1, 0, dx], [0, 1, dy]]), (256, 256),
                           borderMode=cv2.BORDER_REFLECT101) for dx, dy in shifts]


def _speech_features(audio: np.ndarray, n_rows: int) -> np.ndarray:
    """Log band energies of 20 ms hops: two 50 Hz rows per video frame, float16."""
    hops = audio[: n_rows * 320].reshape(n_rows, 320)
    power = np.abs(np.fft.rfft(hops, axis=1)) ** 2
    bands = np.array_split(power, SPEECH_DIM, axis=1)
    return np.log(np.stack([band.mean(axis=1) for band in bands], axis=1) + 1e-6).astype(
        np.float16)


def _landmarks(shifts: np.ndarray) -> np.ndarray:
    angles = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    ring = np.stack([128 + 60 * np.cos(angles), 140 + 75 * np.sin(angles)], axis=1)
    return (ring[None] + shifts[:, None, :]).astype(np.float32)


def build_sample(folder: Path, index: int, n_frames: int, with_audio: bool,
                 split: str) -> tuple[str, dict[str, bytes]]:
    import soundfile

    from gaia.pipeline.media.video_writer import write_video
    from gaia.samples.speech import speech_of_duration

    key = f"astronaut_{index:04d}"
    shifts = _motion(n_frames, seed=index)
    mp4 = write_video(folder / f"{key}.mp4", _frames(shifts), FPS)
    start = 2.0 * index
    members = {
        "mp4": mp4.read_bytes(),
        "landmarks.npy": npy(_landmarks(shifts)),
        "pose.npy": npy(np.column_stack([shifts[:, 1], shifts[:, 0], 0 * shifts[:, 0]])
                        .astype(np.float32)),
        "json": json.dumps({
            "key": key, "schema_version": SHARD_SCHEMA_VERSION, "source_video": "astronaut-0",
            "path": "raw/astronaut.mp4", "start_s": start, "end_s": start + n_frames / FPS,
            "frames": n_frames, "fps": FPS, "has_audio": with_audio,
            "identity": f"astronaut-{split}",  # one person per split, as extract writes
            "split": split, "provenance": {"landmarks": "synthetic ring", "gaia": "test"},
        }).encode(),
    }
    if with_audio:
        audio = speech_of_duration(n_frames / FPS, seed=index)
        flac = io.BytesIO()
        soundfile.write(flac, audio, 16000, format="FLAC")
        members["flac"] = flac.getvalue()
        members["speech.npy"] = npy(_speech_features(audio, 2 * n_frames))
    return key, members


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> dict[str, dict[str, bytes]]:
    folder = tmp_path_factory.mktemp("clips")
    built = [build_sample(folder, i, *clip) for i, clip in enumerate(CLIPS)]
    return dict(built)


def small_target(samples: dict[str, dict[str, bytes]]) -> int:
    """A target under two samples but over any one: one sample per shard."""
    return int(1.5 * max(sum(len(v) + 512 for v in m.values()) for m in samples.values()))


def write_shards(folder: Path, samples: dict[str, dict[str, bytes]],
                 target: int | None = None, manifest: bool = True) -> list[ShardInfo]:
    done: list[ShardInfo] = []
    rows = []

    def finished(info: ShardInfo) -> None:
        done.append(info)
        rows.extend(manifest_row(json.loads(samples[key]["json"]), info.name)
                    for key in info.keys)

    writer = ShardWriter(folder, target_bytes=target or small_target(samples),
                         on_shard_done=finished)
    with writer:
        for key, members in samples.items():
            writer.add(key, members)
    assert writer.shards == done
    if manifest:
        pq.write_table(pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA),
                       folder / "manifest.parquet")
    return done


def problems_of(folder: Path, decode_media: bool = True) -> str:
    report = inspect_shards(folder, decode_media=decode_media)
    assert not report.ok
    return "\n".join(report.problems)


def test_writer_splits_and_plain_webdataset_reads(tmp_path, samples):
    import webdataset as wds

    target = small_target(samples)
    infos = write_shards(tmp_path, samples, target)
    assert len(infos) >= 2
    assert [key for info in infos for key in info.keys] == list(samples)
    assert [info.name for info in infos] == [f"shard-{i:06d}.tar" for i in range(len(infos))]
    for info in infos:
        assert info.num_bytes == info.path.stat().st_size
        assert len(info.keys) == 1 or info.num_bytes <= target

    urls = [str(info.path) for info in infos]
    dataset = wds.WebDataset(urls, shardshuffle=False).map(
        lambda s: {k: load_npy(v) if k.endswith("npy") else v for k, v in s.items()})
    read = {sample["__key__"]: sample for sample in dataset}
    assert list(read) == list(samples)
    for key, sample in read.items():
        assert {k for k in sample if not k.startswith("__")} == set(samples[key])
        meta = json.loads(sample["json"])
        assert sample["landmarks.npy"].shape == (meta["frames"], 68, 2)
        assert sample["pose.npy"].dtype == np.float32
        if meta["has_audio"]:
            assert sample["speech.npy"].shape == (2 * meta["frames"], SPEECH_DIM)
            assert sample["speech.npy"].dtype == np.float16
        assert sample["mp4"] == samples[key]["mp4"]


def test_tar_members_are_key_member_and_deterministic(tmp_path, samples):
    infos = write_shards(tmp_path / "a", samples, manifest=False)
    again = write_shards(tmp_path / "b", samples, manifest=False)
    digest = [hashlib.sha256(info.path.read_bytes()).hexdigest() for info in infos]
    assert digest == [hashlib.sha256(info.path.read_bytes()).hexdigest() for info in again]

    expected = [f"{key}.{member}" for key, members in samples.items()
                for member in sorted(members)]
    names = []
    for info in infos:
        with tarfile.open(info.path) as tar:
            for member in tar.getmembers():
                assert (member.mtime, member.uid, member.gid, member.mode) == (0, 0, 0, 0o644)
                names.append(member.name)
    assert names == expected
    if shutil.which("tar"):
        listed = []
        for info in infos:
            out = subprocess.run(["tar", "-tf", str(info.path)], check=True,
                                 capture_output=True, text=True).stdout
            listed += out.split()
        assert listed == expected


def test_inspect_ok_with_manifest_and_stats(tmp_path, samples, capsys):
    infos = write_shards(tmp_path, samples)
    (tmp_path / "stats.json").write_text(json.dumps({"clips_kept": 3}))
    report = inspect_shards(tmp_path)
    assert report.ok, report.problems
    assert (report.shards, report.samples) == (len(infos), 3)
    assert report.frames == sum(clip[0] for clip in CLIPS)
    assert report.hours == pytest.approx(60 / 25 / 3600)
    assert report.by_split == {"train": 2, "val": 1}
    assert report.with_audio == 2 and report.manifest_rows == 3
    assert report.stats == {"clips_kept": 3}
    assert (report.identities, report.crossing) == (2, 0)
    assert inspect_shards(tmp_path, decode_media=False).ok

    (tmp_path / "stats.json").write_text("{not json")
    assert "stats.json: does not parse" in problems_of(tmp_path, decode_media=False)
    (tmp_path / "stats.json").unlink()

    args = argparse.Namespace(shards_dir=tmp_path, no_decode=False, json=False)
    assert handle_inspect(args) == 0
    out = capsys.readouterr().out
    assert "samples       3" in out and "(ok)" in out
    assert handle_inspect(argparse.Namespace(shards_dir=tmp_path, no_decode=True, json=True)) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] and document["samples"] == 3 and document["problems"] == []


@pytest.mark.parametrize("cut", ["mid_member", "at_header", "end_marker"])
def test_truncated_shard_is_named(tmp_path, samples, cut):
    infos = write_shards(tmp_path, samples)
    victim = infos[1].path
    with tarfile.open(victim) as tar:
        members = tar.getmembers()
    end = members[-1].offset_data + -(-members[-1].size // 512) * 512
    size = {"mid_member": members[0].offset_data + members[0].size // 2,
            "at_header": members[2].offset, "end_marker": end}[cut]
    victim.write_bytes(victim.read_bytes()[:size])
    problems = problems_of(tmp_path, decode_media=False)
    assert f"{victim.name}: " in problems and "truncated" in problems


def test_misaligned_landmarks_are_caught(tmp_path, samples):
    key = "astronaut_0001"
    bad = dict(samples)
    bad[key] = dict(samples[key], **{
        "landmarks.npy": npy(load_npy(samples[key]["landmarks.npy"])[:-1])})
    write_shards(tmp_path, bad)
    for decode in (True, False):
        problems = problems_of(tmp_path, decode_media=decode)
        assert f"{key}: landmarks.npy has shape (24, 68, 2), expected (25, 68, 2)" in problems


def test_json_frames_disagreeing_with_mp4_needs_decoding(tmp_path, samples):
    """Arrays and JSON agree on 21 frames; only decoding the mp4 shows it has 20."""
    key = "astronaut_0000"
    meta = json.loads(samples[key]["json"])
    meta.update(frames=21, end_s=meta["start_s"] + 21 / FPS)
    members = dict(samples[key])
    members.update({
        "json": json.dumps(meta).encode(),
        "landmarks.npy": npy(np.concatenate([load_npy(members["landmarks.npy"])] * 2)[:21]),
        "pose.npy": npy(np.concatenate([load_npy(members["pose.npy"])] * 2)[:21]),
        "speech.npy": npy(np.concatenate([load_npy(members["speech.npy"])] * 2)[:42]),
    })
    write_shards(tmp_path, {**samples, key: members})
    assert inspect_shards(tmp_path, decode_media=False).ok
    assert f"{key}: mp4 has 20 frames but json frames is 21" in problems_of(tmp_path)


def test_duplicate_key_across_shards(tmp_path, samples):
    write_shards(tmp_path, samples)
    key = "astronaut_0000"
    with ShardWriter(tmp_path) as again:
        again.add(key, samples[key])
    assert again.shards[0].name == "shard-000003.tar"
    problems = problems_of(tmp_path, decode_media=False)
    assert f"shard-000003.tar: {key}: duplicate key, also in shard-000000.tar" in problems


def test_manifest_row_missing_or_wrong(tmp_path, samples):
    write_shards(tmp_path, samples)
    rows = pq.read_table(tmp_path / "manifest.parquet").to_pylist()
    rows[0]["shard"] = "shard-000009.tar"
    pq.write_table(pa.Table.from_pylist(rows[:2], schema=MANIFEST_SCHEMA),
                   tmp_path / "manifest.parquet")
    problems = problems_of(tmp_path, decode_media=False)
    assert "astronaut_0002 (in shard-000002.tar) is missing from the manifest" in problems
    assert "astronaut_0000: shard is 'shard-000009.tar'" in problems


def test_pickle_member_and_object_array_are_violations(tmp_path, samples):
    key = "astronaut_0000"
    shard = tmp_path / "shard-000000.tar"
    members = dict(samples[key], pyd=b"\x80\x04K\x01.")
    buffer = io.BytesIO()
    np.save(buffer, np.array([None, {"a": 1}], dtype=object), allow_pickle=True)
    members["pose.npy"] = buffer.getvalue()
    with tarfile.open(shard, "w", format=tarfile.USTAR_FORMAT) as tar:
        for member in sorted(members):
            info = tarfile.TarInfo(f"{key}.{member}")
            info.size = len(members[member])
            tar.addfile(info, io.BytesIO(members[member]))
    problems = problems_of(tmp_path, decode_media=False)
    assert f"{key}: pickle-like member 'pyd' not allowed" in problems
    assert f"{key}: pose.npy is not a plain .npy array" in problems
    with pytest.raises(ValueError):
        load_npy(members["pose.npy"])


def test_writer_refuses_unsafe_keys_and_members(tmp_path, samples):
    members = samples["astronaut_0000"]
    with ShardWriter(tmp_path) as writer:
        for key in ("../evil", "a.b", "", "x/y"):
            with pytest.raises(ValueError):
                writer.add(key, members)
        for extra in ("pkl", "weights.pth", "x.pyd", "../escape.npy", "a/b.json"):
            with pytest.raises(ValueError):
                writer.add("fine_0000", {**members, extra: b"data"})
        writer.add("fine_0000", members)
        with pytest.raises(ValueError, match="already written"):
            writer.add("fine_0000", members)
    [info] = writer.shards
    assert info.keys == ("fine_0000",)


def test_index_continues_after_existing_shards(tmp_path, samples):
    write_shards(tmp_path, samples, manifest=False)
    shutil.copy(tmp_path / "shard-000002.tar", tmp_path / "shard-000007.tar")
    (tmp_path / "other-000042.tar").write_bytes(b"")
    leftover = tmp_path / ".shard-000008.tar.0123abcd.partial"
    leftover.write_bytes(b"half a shard")
    with ShardWriter(tmp_path, target_bytes=1) as writer:
        writer.add("next_0000", samples["astronaut_0000"])
        writer.add("next_0001", samples["astronaut_0001"])
    assert [info.name for info in writer.shards] == ["shard-000008.tar", "shard-000009.tar"]
    assert not leftover.exists()


def test_no_tar_under_final_name_until_shard_is_finished(tmp_path, samples):
    writer = ShardWriter(tmp_path, target_bytes=1 << 30)
    writer.add("astronaut_0000", samples["astronaut_0000"])
    writer.add("astronaut_0001", samples["astronaut_0001"])
    names = sorted(path.name for path in tmp_path.iterdir())
    assert not list(tmp_path.glob("*.tar"))
    assert len(names) == 1 and names[0].startswith(".shard-000000.tar.")
    assert names[0].endswith(".partial")
    [info] = writer.close()
    assert [path.name for path in tmp_path.iterdir()] == ["shard-000000.tar"]
    assert info.keys == ("astronaut_0000", "astronaut_0001")

    aborted = tmp_path / "aborted"
    with pytest.raises(RuntimeError), ShardWriter(aborted) as writer:
        writer.add("astronaut_0000", samples["astronaut_0000"])
        raise RuntimeError("killed mid-shard")
    assert list(aborted.iterdir()) == []


def test_target_bytes_is_exact(tmp_path, samples):
    """Two samples fill a shard of exactly their size on disk; one byte less splits them."""
    [both] = write_shards(tmp_path / "one", dict(list(samples.items())[:2]), target=1 << 30)
    infos = write_shards(tmp_path / "exact", samples, target=both.num_bytes)
    assert [info.keys for info in infos] == [both.keys, ("astronaut_0002",)]
    assert infos[0].num_bytes == both.num_bytes
    infos = write_shards(tmp_path / "less", samples, target=both.num_bytes - 1)
    assert infos[0].keys == both.keys[:1]


def test_sample_larger_than_target_goes_alone(tmp_path, samples):
    infos = write_shards(tmp_path, samples, target=1)
    assert [info.keys for info in infos] == [(key,) for key in samples]
    assert inspect_shards(tmp_path, decode_media=False).ok


def test_validate_sample_names_spec_problems(samples):
    members = dict(samples["astronaut_0002"])  # no audio
    assert validate_sample(members, key="astronaut_0002") == []
    meta = json.loads(members["json"])
    wrong = dict(members, flac=samples["astronaut_0000"]["flac"],
                 json=json.dumps({**meta, "schema_version": 99, "split": "test"}).encode())
    del wrong["pose.npy"]
    problems = validate_sample(wrong, decode_media=False)
    assert "missing member pose.npy" in problems
    assert "flac present but json has_audio is False" in problems
    assert any("schema_version 99" in p for p in problems)
    assert any("split 'test'" in p for p in problems)
    assert validate_sample({"json": b"[1, 2]"}, decode_media=False, key="k_0000")[-1] == \
        "json is a list, not an object"
    assert any("bad key" in p for p in validate_sample(members, key="../evil"))

    other = samples["astronaut_0001"]  # 25 frames where 20 are expected
    swapped = dict(samples["astronaut_0000"], flac=other["flac"], mp4=other["mp4"],
                   **{"speech.npy": other["speech.npy"]})
    problems = validate_sample(swapped)
    assert "mp4 has 25 frames but json frames is 20" in problems
    assert "flac lasts 1.000 s but 20 frames last 0.800 s" in problems
    assert "speech.npy has shape (50, 8), expected (40, D)" in problems
    assert len(problems) == 3


def test_cli_parser_registers_inspect(tmp_path, samples, capsys):
    write_shards(tmp_path, samples)
    (tmp_path / "shard-000001.tar").write_bytes(b"not a tar at all" * 100)
    parser = argparse.ArgumentParser(prog="gaia")
    add_inspect_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["inspect", str(tmp_path), "--no-decode"])
    assert args.handler(args) == 1
    out = capsys.readouterr().out
    assert "shard-000001.tar: unreadable or truncated tar" in out
    assert "astronaut_0001 is listed but in no shard" in out


def test_inspect_says_when_a_person_is_in_two_splits(tmp_path, samples):
    """The split is per person: a person whose clips are in train and in val is a problem
    (validation would see a training speaker), named with its splits."""
    renamed = {}
    for key, members in samples.items():
        meta = json.loads(members["json"])
        meta["identity"] = "person-0000007"
        renamed[key] = {**members, "json": json.dumps(meta).encode()}
    write_shards(tmp_path, renamed)
    report = inspect_shards(tmp_path, decode_media=False)
    assert (report.identities, report.crossing) == (1, 1)
    assert "identity person-0000007 is in more than one split (train, val)" in report.problems
