"""Records a later run trusts, corrupted: extract's manifest parts, encode-latents' parts, the
per-video status records of measure, and the run lock (issue 25, item 3).

Each is cut short, has bits flipped, or is replaced by valid JSON or Parquet of the wrong shape,
and the test says what that does: a resume that equals a clean run's outputs, with a log line
naming the file, or a one-line error naming it. Never silently wrong output, never a
traceback. The runs reuse the session's measured sample, shards and latents (copied, not
re-run), so the whole file stays within seconds of work.
"""

from __future__ import annotations

import json
import random
import shutil
import socket
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gaia.pipeline.extract.inspect_shards import inspect_shards
from gaia.pipeline.extract.job import (
    ExtractConfig,
    _drop_untrusted_parts,
    _part_problem,
    _recover_parts,
    run_extract,
)
from gaia.pipeline.latents.job import EncodeMismatchError, run_encode_latents
from gaia.pipeline.latents.merge import BadPartError, read_part
from gaia.pipeline.run_dir import RunDir
from gaia.pipeline.runner.out_lock import LOCK_NAME, OutputInUseError, hold_output, lock_holder
from gaia.schemas.checksum import RECORD_KEY, ROWS_KEY, seal

FLIPS = 24  # random single-bit flips tried per file (seeded: the same flips every run)


def flip_bit(path: Path, seed: int) -> None:
    """Flip one bit of ``path``, chosen by ``seed``."""
    data = bytearray(path.read_bytes())
    rng = random.Random(seed)
    data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(data))


def cut(path: Path) -> None:
    """Keep the first 60 % of ``path``, as a copy stopped mid-way would."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 3 // 5])


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def one_line_naming(err: BaseException, path: Path) -> bool:
    return str(path) in str(err) and "\n" not in str(err)


# -- extract: .manifest/SHARD.parquet and manifest.parquet ------------------------------------


@pytest.fixture()
def extract_run(sample_shards, tmp_path) -> Path:
    """A copy of the session's extracted run: its shards folder."""
    root = tmp_path / "run"
    shutil.copytree(sample_shards.parent.parent, root)
    return root / "shards" / "vae"


def test_a_flipped_bit_in_a_manifest_part_is_caught_or_changes_nothing(sample_shards,
                                                                      tmp_path):
    part = sorted((sample_shards / ".manifest").glob("*.parquet"))[0]
    rows = pq.read_table(part).to_pylist()
    shards = {f"{part.stem}.tar"}
    caught = 0
    for seed in range(FLIPS):
        copy = tmp_path / str(seed) / part.name
        copy.parent.mkdir()
        shutil.copy(part, copy)
        flip_bit(copy, seed)
        why = _part_problem(copy, shards)
        if why is None:  # a bit of the footer's statistics, say: the rows are whole
            assert pq.read_table(copy).to_pylist() == rows, seed
        caught += why is not None
    # The rest landed in bytes no reader uses (footer statistics, padding): how many depends
    # on the part's layout, so only a floor is asserted; each flip was checked above.
    assert caught >= FLIPS // 3


def _cut_part(part: Path) -> str:
    cut(part)
    return "unreadable"


def _flip_part(part: Path) -> str:
    """One flipped bit that leaves the file readable with other rows: only the checksum
    can tell."""
    rows = pq.read_table(part).to_pylist()
    flip_bit(part, next(s for s in range(1000) if _flip_reads_as_other_rows(part, s, rows)))
    return "checksum"


def _reshape_part(part: Path) -> str:
    """Valid Parquet of another shape: the keys alone, as a foreign writer might leave."""
    pq.write_table(pa.table({"key": pq.read_table(part).column("key")}), part)
    return "columns"


def _unseal_part(part: Path) -> str:
    """A part as an older version wrote it: right columns, no checksum."""
    pq.write_table(pq.read_table(part).replace_schema_metadata(None), part)
    return "no checksum"


@pytest.mark.parametrize("damage", [(_cut_part, _flip_part), (_reshape_part, _unseal_part)],
                         ids=["cut-flipped", "reshaped-unsealed"])
def test_extract_resume_rebuilds_bad_manifest_parts_from_the_shards(extract_run, damage):
    out = extract_run
    clean = pq.read_table(out / "manifest.parquet").to_pylist()
    parts = sorted((out / ".manifest").glob("*.parquet"))
    assert len(parts) >= len(damage)
    said = [harm(part) for harm, part in zip(damage, parts, strict=False)]

    assert inspect_shards(out, decode_media=False).ok  # parts are resume records, not outputs
    lines: list[str] = []
    summary = run_extract(out.parent.parent, "vae",
                          config=ExtractConfig(shard_mb=0.5, val_fraction=0.0),
                          log=lines.append, use_ray=False)
    assert summary.clips_written == 0 and summary.clips_done_before == len(clean)
    assert pq.read_table(out / "manifest.parquet").to_pylist() == clean
    for part, why in zip(parts, said, strict=False):
        assert any(str(part) in line and why in line and "rebuilt" in line for line in lines), lines
    assert all(_part_problem(part, {p.name for p in out.glob("*.tar")}) is None
               for part in parts)
    assert inspect_shards(out, decode_media=False).ok


def _flip_reads_as_other_rows(part: Path, seed: int, rows: list[dict]) -> bool:
    copy = part.with_name(f"flip-{part.name}")
    shutil.copy(part, copy)
    flip_bit(copy, seed)
    try:
        return pq.read_table(copy).to_pylist() != rows
    except Exception:  # noqa: BLE001 - unreadable: caught before the checksum
        return False
    finally:
        copy.unlink()


def test_a_part_whose_shard_is_gone_is_dropped_and_its_clips_cut_again(extract_run):
    parts = sorted((extract_run / ".manifest").glob("*.parquet"))
    present = {p.name for p in extract_run.glob("*.tar")} - {f"{parts[0].stem}.tar"}
    lines: list[str] = []
    _drop_untrusted_parts(extract_run / ".manifest", present, lines.append)
    assert not parts[0].exists() and all(p.exists() for p in parts[1:])
    assert lines == [f"[extract] manifest part {parts[0]} describes {parts[0].stem}.tar, "
                     "which is gone: its clips are cut again"]


def test_a_shard_that_cannot_rebuild_its_part_is_refused_by_name(extract_run):
    shard = sorted(extract_run.glob("*.tar"))[0]
    (extract_run / ".manifest" / f"{shard.stem}.parquet").unlink()
    shard.write_bytes(b"not a tar file at all" * 40)
    with pytest.raises(ValueError, match="delete it and run again") as refused:
        _recover_parts(extract_run, extract_run / ".manifest")
    assert one_line_naming(refused.value, shard)


def test_inspect_reports_a_corrupt_manifest_without_a_traceback(extract_run):
    manifest = extract_run / "manifest.parquet"
    whole = manifest.read_bytes()
    table = pq.read_table(manifest)

    cut(manifest)
    assert any("manifest.parquet: unreadable" in p for p in inspect_shards(
        extract_run, decode_media=False).problems)

    pq.write_table(table.drop_columns(["frames"]), manifest)
    assert any("column frames" in p for p in inspect_shards(
        extract_run, decode_media=False).problems)

    # A column inspect does not compare with the samples, changed under the old checksum.
    start = pa.array([s + 1.0 for s in table.column("start_s").to_pylist()], pa.float64())
    changed = table.set_column(table.schema.get_field_index("start_s"),
                               table.schema.field("start_s"), start)
    pq.write_table(changed.replace_schema_metadata(table.schema.metadata), manifest)
    assert any("does not match its checksum" in p for p in inspect_shards(
        extract_run, decode_media=False).problems)

    rows = table.to_pylist()
    for seed in range(FLIPS):
        manifest.write_bytes(whole)
        flip_bit(manifest, seed)
        report = inspect_shards(extract_run, decode_media=False)
        if report.ok:
            assert pq.read_table(manifest).to_pylist() == rows, seed
    assert table.schema.metadata[ROWS_KEY]


# -- encode-latents: parts/SHARD.json, encode.json --------------------------------------------


@pytest.fixture()
def latent_run(latent_shards, tmp_path) -> Path:
    out = tmp_path / "latents"
    shutil.copytree(latent_shards, out)
    return out


def test_a_flipped_bit_in_a_latent_part_is_caught_or_changes_nothing(latent_shards, tmp_path):
    part = sorted((latent_shards / "parts").glob("*.json"))[0]
    content = read_part(part)
    caught = 0
    for seed in range(FLIPS):
        copy = tmp_path / part.name
        shutil.copy(part, copy)
        flip_bit(copy, seed)
        try:
            assert read_part(copy) == content, seed
        except BadPartError as err:
            assert one_line_naming(err, copy)
            caught += 1
    assert caught >= FLIPS - 2  # JSON text: nearly every bit is content


def test_encode_latents_resume_encodes_shards_of_bad_parts_again(latent_run, sample_shards,
                                                                 vae_checkpoint):
    clean = snapshot(latent_run)
    parts = sorted((latent_run / "parts").glob("*.json"))
    assert len(parts) >= 2
    cut(parts[0])
    # Valid JSON of the wrong shape, with a checksum that matches it.
    parts[1].write_text(json.dumps(seal({"source_name": "x.tar", "samples": 5})))
    lines: list[str] = []
    summary = run_encode_latents(vae_checkpoint, str(sample_shards), latent_run,
                                 use_ray=False, log=lines.append)
    assert summary.shards_encoded == 2 and summary.shards_skipped == len(parts) - 2
    assert snapshot(latent_run) == clean
    for part, why in ((parts[0], "unreadable"), (parts[1], "has no vae")):
        assert any(str(part) in line and why in line and "encoded again" in line
                   for line in lines), lines


def test_a_changed_sum_in_a_latent_part_is_caught(latent_shards, tmp_path):
    part = sorted((latent_shards / "parts").glob("*.json"))[0]
    record = json.loads(part.read_text())
    record["stats"]["all"]["frames"] += 1  # still valid JSON: would skew stats.json
    changed = tmp_path / part.name
    changed.write_text(json.dumps(record))
    with pytest.raises(BadPartError, match="does not match its checksum"):
        read_part(changed)
    del record[RECORD_KEY]  # a part of an older version: no checksum, its shape is checked
    changed.write_text(json.dumps(record))
    assert read_part(changed) == record
    record["stats"]["train"] = {"motion_sum": [[1.0]], "motion_sumsq": [[1.0]]}
    changed.write_text(json.dumps(record))
    with pytest.raises(BadPartError, match="train statistics of the wrong shape"):
        read_part(changed)


def test_a_bad_part_of_a_shard_not_in_the_run_is_refused_by_name(latent_run, sample_shards,
                                                                 vae_checkpoint, capsys):
    from gaia.cli import main

    tars = sorted(sample_shards.glob("*.tar"))
    other = latent_run / "parts" / f"{tars[-1].stem}.json"
    other.write_text("[]")
    before = snapshot(latent_run)
    with pytest.raises(BadPartError, match="not among the shards of this run") as refused:
        run_encode_latents(vae_checkpoint, str(tars[0]), latent_run, use_ray=False,
                           log=lambda _: None)
    assert one_line_naming(refused.value, other)
    assert snapshot(latent_run) == before  # refused before any work

    (latent_run / "encode.json").write_text('{"vae": "cut sho')
    code = main(["encode-latents", "--vae", str(vae_checkpoint), "--shards", str(tars[0]),
                 "--out", str(latent_run), "--device", "cpu", "--workers", "1"])
    shown = capsys.readouterr().err.strip()
    assert code == 2 and shown.startswith("gaia: error: ") and "\n" not in shown
    assert str(latent_run / "encode.json") in shown and "Traceback" not in shown
    (latent_run / "encode.json").write_text('["a list"]')
    with pytest.raises(EncodeMismatchError, match="not an encode record"):
        run_encode_latents(vae_checkpoint, str(tars[0]), latent_run, use_ray=False,
                           log=lambda _: None)


# -- measure: status/VIDEO.json ----------------------------------------------------------------


def test_status_records_that_cannot_be_trusted_are_left_out_with_a_line(measured_sample,
                                                                       tmp_path):
    run = RunDir(tmp_path / "run")
    shutil.copytree(measured_sample.status, run.status)
    clean = measured_sample.finished()
    paths = sorted(run.status.glob("*.json"))
    assert len(paths) >= 4
    lines: list[str] = []
    cut(paths[0])
    paths[1].write_text("[1, 2, 3]")
    wrong_id = json.loads(paths[2].read_text())
    paths[2].write_text(json.dumps(seal({**wrong_id, "video_id": "another"})))
    wrong_type = json.loads(paths[3].read_text())
    paths[3].write_text(json.dumps(seal({**wrong_type, "num_frames": "many"})))
    found = run.finished(lines.append)
    assert found == {k: v for k, v in clean.items() if k not in {p.stem for p in paths[:4]}}
    for path, why in zip(paths[:4], ("is unreadable", "is not a JSON object",
                                     "names video 'another'", "has a wrong value for num_frames"),
                         strict=True):
        assert any(line.startswith(f"{path} {why}") and "measured again" in line
                   for line in lines), (path, lines)
    videos = run.write_videos_table().to_pylist()  # the rest, whatever the bad ones hold
    assert sorted(row["video_id"] for row in videos) == sorted(found)

    legacy = dict(clean[paths[0].stem])  # a record of an older version: no checksum
    paths[0].write_text(json.dumps(legacy))
    assert run.finished()[paths[0].stem] == legacy

    record = paths[4].read_text()
    for seed in range(FLIPS):
        paths[4].write_text(record)
        flip_bit(paths[4], seed)
        lines.clear()
        got = run.finished(lines.append).get(paths[4].stem)
        assert got == clean[paths[4].stem] or (got is None and str(paths[4]) in lines[-1])


def test_measure_resume_measures_videos_of_bad_records_again(tmp_path):
    from gaia.pipeline.measure.job import run_measure
    from gaia.samples.shipped import carphone_path

    raw = tmp_path / "raw" / "spk"
    raw.mkdir(parents=True)
    (raw / "empty.mp4").write_bytes(b"")
    (raw / "notes.mkv").write_text("not a video")
    (raw / "other.mp4").write_bytes(b"")
    shutil.copy(carphone_path(), raw / "carphone.mp4")
    out = tmp_path / "run"
    run_measure([str(raw.parent)], out, use_ray=False, log=lambda _: None)
    clean = {row["video_id"]: row for row in pq.read_table(out / "videos.parquet").to_pylist()}
    metrics = snapshot(out / "metrics")
    by_name = {row["path"].rsplit("/", 1)[-1]: out / "status" / f"{video}.json"
               for video, row in clean.items()}

    cut(by_name["carphone.mp4"])
    record = json.loads(by_name["empty.mp4"].read_text())
    by_name["empty.mp4"].write_text(json.dumps({**record, "num_frames": 7}))  # old checksum
    by_name["notes.mkv"].write_text(json.dumps({"video_id": by_name["notes.mkv"].stem}))
    lines: list[str] = []
    summary = run_measure([str(raw.parent)], out, use_ray=False, log=lines.append)
    assert (summary.skipped, summary.measured_now) == (1, 3)
    for name in ("carphone.mp4", "empty.mp4", "notes.mkv"):
        assert any(line.startswith(f"[measure] {by_name[name]} ") for line in lines), name
    again = {row["video_id"]: row for row in pq.read_table(out / "videos.parquet").to_pylist()}
    timing = ("elapsed_s", "cpu_s")
    assert {video: {k: v for k, v in row.items() if k not in timing}
            for video, row in again.items()} == {
        video: {k: v for k, v in row.items() if k not in timing} for video, row in clean.items()}
    assert snapshot(out / "metrics") == metrics  # carphone's measured again to the same bytes
    assert RunDir(out).finished().keys() == clean.keys()


# -- the run lock: OUT/.gaia.lock ---------------------------------------------------------------


def test_a_bad_lock_record_is_taken_over_or_refused_by_name(tmp_path):
    """The flock, not the record, keeps two runs apart: a record that does not read as an
    object is taken over (the flock was free, so its run is gone); one that names another
    host, whatever else it holds, is refused naming the file, since that host's run cannot
    be checked from here."""
    here = socket.gethostname()
    whole = json.dumps({"host": here, "pid": 2**22 + 12345, "started": "2024-01-01T00:00:00Z",
                        "command": "gaia curate measure"})
    taken = [b"", whole.encode()[:20], b"\xff\xfe\x00garbage", b"[1, 2]", b"null",
             json.dumps({"host": here, "pid": "not a pid"}).encode()]
    refused = [json.dumps({"host": "elsewhere", "pid": 1}).encode(),
               json.dumps({"host": ["a", "list"]}).encode(), b'{"pid": 4242}']
    flips = []
    for seed in range(FLIPS):
        path = tmp_path / "flip"
        path.write_text(whole)
        flip_bit(path, seed)
        flips.append(path.read_bytes())
    for case, data in enumerate(taken + refused + flips):
        out = tmp_path / f"out{case}"
        out.mkdir()
        (out / LOCK_NAME).write_bytes(data)
        try:
            with hold_output(out, command="the test"):
                assert lock_holder(out)["command"] == "the test"
            assert data not in refused, data
        except OutputInUseError as err:
            assert data not in taken, data
            assert one_line_naming(err, out / LOCK_NAME) and "delete" in str(err)
            assert (out / LOCK_NAME).read_bytes() == data  # left as it was
