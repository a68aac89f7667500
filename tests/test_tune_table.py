"""The compact tune table (issue 14): codes decide every frame as the float measures do on
the grid's thresholds; tune from the table gives exactly the funnel tune from ``metrics/`` gives,
on the real measured sample and on synthetic runs with gaps and variable frame rates; a
threshold off the grid reads ``metrics/`` and says so; a stale or corrupt table is rebuilt."""

from __future__ import annotations

import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gaia.filters.registry import coded_columns, exact_columns
from gaia.filters.thresholds import load_thresholds
from gaia.pipeline.compact_table import build_tune_table
from gaia.pipeline.run_dir import RunDir
from gaia.pipeline.tune.fused import OffGrid
from gaia.pipeline.tune.table import funnel_for, parse_sweep, run_sweep
from gaia.schemas.tune_table import NAN_CODE, CodedColumn


def assert_same_funnel(a, b) -> None:
    """Frames and clips equal; seconds equal to float rounding (summation order)."""
    ja, jb = a.to_json(), b.to_json()
    for key in ("videos", "input_frames", "kept_frames", "clips", "dropped_frames_first",
                "dropped_frames_any"):
        assert ja[key] == jb[key], key
    for key in ("input_hours", "kept_hours"):
        assert ja[key] == pytest.approx(jb[key], rel=1e-12, abs=1e-15), key
    for key in ("dropped_hours_first", "dropped_hours_any"):
        assert ja[key].keys() == jb[key].keys()
        for reason, value in ja[key].items():
            assert value == pytest.approx(jb[key][reason], rel=1e-12), (key, reason)
    assert {k: (v["videos"], v["clips"]) for k, v in ja["by_source"].items()} == \
        {k: (v["videos"], v["clips"]) for k, v in jb["by_source"].items()}


@pytest.mark.parametrize("coded", coded_columns(), ids=lambda c: c.name)
def test_codes_compare_as_the_floats_do_on_every_grid_threshold(coded: CodedColumn):
    rng = np.random.default_rng(0)
    ks = rng.integers(0, 5000, 40)
    grid = coded.grid(ks)
    # values on, just below and just above grid points, and random ones
    raw = np.concatenate([grid, np.nextafter(grid, np.float32(-np.inf)),
                          np.nextafter(grid, np.float32(np.inf)),
                          rng.uniform(coded.low, coded.low + 5000 * coded.step, 400)]
                         ).astype(np.float32)
    if coded.transform == "abs180":
        raw = raw + np.float32(180.0)  # the filter reads |v - 180|
    values = coded.values(raw)
    codes = coded.encode(raw).astype(np.int64)
    for k in ks:
        threshold = float(coded.grid(k))
        assert coded.grid_index(threshold) == k
        t32 = np.float32(threshold)
        if coded.rounding == "ceil":
            assert np.array_equal(values > t32, codes > k)
        else:
            assert np.array_equal(values < t32, codes < k)
            assert np.array_equal(values >= t32, codes >= k)
    assert coded.encode(np.array([np.nan], np.float32))[0] == NAN_CODE
    assert coded.grid_index(coded.low + 0.5 * coded.step) is None  # off the grid


def test_table_and_metrics_give_the_same_funnel_on_the_measured_sample(measured_sample,
                                                                       tmp_path):
    run = tmp_path / "run"
    shutil.copytree(measured_sample.root, run)
    build_tune_table(run)
    for preset, overrides in ((None, []), ("vae", []), ("s2m", []),
                              ("s2m", ["jitter.max_box=0.2", "frontal.reading=image",
                                             "silence.hold_s=0.6", "segments.min_s=2"]),
                              ("s2m", ["silence.visible_speaker=false",
                                             "face_size.min_face_px=80.5"])):
        thresholds = load_thresholds(preset, overrides)
        table = funnel_for(run, thresholds, source="table")
        assert_same_funnel(table, funnel_for(run, thresholds, source="metrics"))
    sweep = parse_sweep("jitter.max_box=0.01:0.1:0.01")
    base = load_thresholds("vae")
    swept = run_sweep(run, base, sweep)
    kept = [f.kept_frames for _, f in swept]
    assert kept == sorted(kept)  # looser thresholds keep no less
    for (value, funnel) in swept:
        reference = funnel_for(run, load_thresholds(
            "vae", [f"jitter.max_box={value}"]), source="metrics")
        assert_same_funnel(funnel, reference)


def synthetic_run(root, videos: int, seed: int):
    """Random measures with gaps, turned faces, silences and a variable-rate video."""
    from gaia.pipeline.measures import DERIVED
    from gaia.schemas.metrics import METRICS_SCHEMA

    run = RunDir(root)
    run.metrics.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    names = sorted(({c.source for c in coded_columns()} | set(exact_columns()) | {"time_s"})
                   - set(DERIVED))  # derived when read, never stored
    rows = []
    for v in range(videos):
        n = int(rng.integers(50, 2000))
        fps = 25.0 if v % 3 else 30000 / 1001
        times = np.arange(n) / fps
        if v % 4 == 1:  # variable frame rate: jittered times
            times = np.cumsum(rng.uniform(0.02, 0.06, n)) - 0.02
        state = np.repeat(rng.integers(0, 5, n // 20 + 1), 20)[:n]
        columns = {
            "time_s": times,
            "num_faces": np.where(state == 4, 0, np.where(state == 3, 2, 1)).astype(np.int8),
            "frontal_angle_deg": 180 + rng.normal(0, 12, n), "frontal_angle_image_deg":
                180 + rng.normal(0, 20, n), "yaw_deg": rng.normal(0, 25, n),
            "jitter_landmarks": np.abs(rng.normal(0.03, 0.03, n)),
            "jitter_box": np.abs(rng.normal(0.04, 0.04, n)),
            "occlusion": rng.uniform(0, 0.6, n), "identity_distance": rng.uniform(0, 0.8, n),
            # A hand over the mouth for a stretch now and then, none the rest of the time.
            "hand_cover": np.where(np.repeat(rng.random(n // 20 + 1) < 0.1, 20)[:n],
                                   rng.uniform(0, 1, n), 0.0),
            "face_px": rng.uniform(30, 300, n), "sharpness": rng.uniform(0, 0.5, n),
            "cut_score": rng.uniform(0, 0.7, n),
            "speech_prob": np.where(state == 2, 0.05, rng.uniform(0.3, 1, n)),
            "sync_confidence": rng.normal(0.5, 0.3, n),
            "sync_agreement": rng.uniform(0, 1, n),
            # SyncNet measured on the first video only (the others read null: no weights).
            "syncnet_confidence": rng.normal(4, 2, n) if v == 0 else np.full(n, np.nan),
            "syncnet_lag_frames": np.abs(rng.normal(0, 5, n)).round() if v == 0
            else np.full(n, np.nan), "mouth_motion": rng.uniform(0, .06, n),
            # Read by no built-in filter (a plug-in's): steady over stretches, as heads are.
            "pitch_deg": np.repeat(rng.normal(0, 15, n // 20 + 1), 20)[:n] + rng.normal(0, 1, n),
        }
        gaps = rng.random(n) < 0.05
        for name in columns:
            if name not in ("time_s", "num_faces") and columns[name].dtype.kind == "f":
                columns[name] = np.where(gaps, np.nan, columns[name])
        if v == 2:
            columns["speech_prob"][:] = np.nan  # no audio
        fields = [METRICS_SCHEMA.field(name) for name in names]
        arrays = [pa.array(np.asarray(columns[f.name]).astype(f.type.to_pandas_dtype()),
                           type=f.type, from_pandas=True) for f in fields]
        pq.write_table(pa.Table.from_arrays(arrays, schema=pa.schema(fields)),
                       run.metrics / f"v{v:03d}.parquet")
        rows.append({"video_id": f"v{v:03d}", "path": f"/s/{v}.mp4", "source": f"s{v % 3}",
                     "status": "ok", "fps": fps})
    pq.write_table(pa.Table.from_pylist(rows), run.videos)
    return root


def test_table_and_metrics_agree_on_synthetic_runs_with_gaps_and_variable_rates(tmp_path):
    run = synthetic_run(tmp_path / "syn", 12, seed=3)
    build_tune_table(run)
    for preset in (None, "vae", "s2m"):
        thresholds = load_thresholds(preset, ["segments.min_s=1", "segments.max_s=4"])
        assert_same_funnel(funnel_for(run, thresholds, source="table", workers=2),
                           funnel_for(run, thresholds, source="metrics"))


def test_off_grid_reads_metrics_and_a_broken_table_is_rebuilt(measured_sample, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(measured_sample.root, run)
    shutil.rmtree(run / "tune", ignore_errors=True)
    messages: list[str] = []
    thresholds = load_thresholds("s2m")
    first = funnel_for(run, thresholds, log=messages.append)  # builds the table
    assert (run / "tune" / "videos.arrow").is_file() and not any("rebuild" in m for m in messages)
    off = load_thresholds("s2m", ["jitter.max_box=0.08123"])
    with pytest.raises(OffGrid, match="jitter.max_box"):
        funnel_for(run, off, source="table")
    funnel_for(run, off, log=messages.append)
    assert any("not on the tune table's grid" in m for m in messages)
    part = next((run / "tune").glob("part-*.arrow"))
    part.write_bytes(part.read_bytes()[:100])  # a torn file
    messages.clear()
    assert_same_funnel(funnel_for(run, thresholds, log=messages.append), first)
    assert any("rebuilding the tune table" in m for m in messages)
    metrics = next((run / "metrics").glob("*.parquet"))
    metrics.touch()  # re-measured: the table is stale
    messages.clear()
    funnel_for(run, thresholds, log=messages.append)
    assert any("changed after the tune table" in m for m in messages)


def _flip_bit(path, rng) -> None:
    data = bytearray(path.read_bytes())
    at = int(rng.integers(len(data)))
    data[at] ^= 1 << int(rng.integers(8))
    path.write_bytes(bytes(data))


def test_changed_bytes_and_impossible_rows_rebuild_the_table(measured_sample, tmp_path):
    """A table in a shared bucket is not trusted: a flipped bit in a part file or in the index,
    or an index row pointing past its file (the compiled pass would read out of bounds), is
    found before the pass runs; the table is rebuilt with a message and the funnel is right."""
    from gaia.pipeline.compact_table import read_index, write_index

    run = tmp_path / "run"
    shutil.copytree(measured_sample.root, run)
    shutil.rmtree(run / "tune", ignore_errors=True)
    thresholds = load_thresholds("s2m")
    reference = funnel_for(run, thresholds, source="metrics")
    funnel_for(run, thresholds)  # builds the table
    rng = np.random.default_rng(5)
    for target in ("part", "part", "index", "index"):
        path = next((run / "tune").glob("part-*.arrow")) if target == "part" \
            else run / "tune" / "videos.arrow"
        _flip_bit(path, rng)
        messages: list[str] = []
        assert_same_funnel(funnel_for(run, thresholds, log=messages.append), reference)
        assert any("rebuilding the tune table" in m for m in messages), (target, messages)
    rows = read_index(run)
    rows[-1]["row"] = 10**9  # a well-formed index (its checksum recomputed) that lies
    columns = {name: [r[name] for r in rows] for name in rows[0]}
    write_index(run / "tune", columns)
    messages = []
    assert_same_funnel(funnel_for(run, thresholds, log=messages.append), reference)
    assert any("outside the file" in m for m in messages), messages
