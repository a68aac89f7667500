"""``gaia encode-latents`` (paper, section 4.2) on real clips: latent shards every reader
accepts, motion equal to a direct encoding, statistics over the train split, resume without
re-encoding, refusal of another VAE and of mixed speech features, bad samples and a truncated
shard recorded without stopping the job, and the Ray path equal to the in-process one."""

from __future__ import annotations

import io
import json
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from gaia.common.weights import file_sha256
from gaia.pipeline.latents.job import EncodeMismatchError, run_encode_latents
from gaia.schemas.latents import STATS_FIELDS, read_latent_sample, reference_frame
from gaia.schemas.shards import load_npy

TALKING, LISTENING, SILENT = "astronaut_talking_0000", "astronaut_listening_0000", \
    "astronaut_silent_0000"
MUTE, PICKLED = "astronaut_mute_0000", "astronaut_pickled_0000"


def read_tar(path: Path) -> dict[str, dict[str, bytes]]:
    """key -> member name -> bytes, in the tar's order."""
    samples: dict[str, dict[str, bytes]] = {}
    with tarfile.open(path) as archive:
        for member in archive.getmembers():
            key, _, name = member.name.partition(".")
            samples.setdefault(key, {})[name] = archive.extractfile(member).read()
    return samples


def write_tar(path: Path, samples: dict[str, dict[str, bytes]]) -> Path:
    with tarfile.open(path, "w") as archive:
        for key, members in samples.items():
            for name, blob in members.items():
                info = tarfile.TarInfo(f"{key}.{name}")
                info.size = len(blob)
                archive.addfile(info, io.BytesIO(blob))
    return path


def edited(members: dict[str, bytes], key: str | None = None, drop: tuple[str, ...] = (),
           **fields) -> dict[str, bytes]:
    """A copy of a source sample under another key, with JSON fields changed."""
    meta = json.loads(members["json"])
    meta.update(fields, **({"key": key} if key else {}))
    copy = {name: blob for name, blob in members.items() if name not in drop}
    copy["json"] = json.dumps(meta).encode()
    return copy


def save_vae(folder: Path, seed: int) -> Path:
    from gaia.training.checkpoint import save_checkpoint
    from gaia.training.vae.config import load_vae_config
    from gaia.training.vae.model import TwoEncoderVAE

    torch.manual_seed(seed)
    config = load_vae_config("vae-tiny", perceptual="none")
    model = TwoEncoderVAE(config)
    return save_checkpoint(folder, 0, {"task": {"model": model.state_dict(),
                                                "config": config.to_dict()}})


@pytest.fixture(scope="module")
def vae_file(tmp_path_factory) -> Path:
    return save_vae(tmp_path_factory.mktemp("vae-a"), seed=0)


@pytest.fixture(scope="module")
def inputs(sample_shards, tmp_path_factory) -> dict:
    """Input shards built from the sample's real clips: a good folder (one clip moved to the
    val split, one copy without audio), a pickle member, a truncated shard, other features."""
    source = {key: members for shard in sorted(sample_shards.glob("*.tar"))
              for key, members in read_tar(shard).items()}
    assert {TALKING, LISTENING, SILENT} <= set(source)
    root = tmp_path_factory.mktemp("latent-inputs")
    good, bad = root / "good", root / "bad"
    good.mkdir(), bad.mkdir()
    write_tar(good / "clips-a.tar", {TALKING: source[TALKING],
                                     LISTENING: edited(source[LISTENING], split="val")})
    write_tar(good / "clips-b.tar", {
        SILENT: source[SILENT],
        MUTE: edited(source[SILENT], MUTE, ("flac", "speech.npy"), has_audio=False)})
    pickled = {**edited(source[TALKING], PICKLED), "pyd": pickle.dumps({"payload": 1})}
    write_tar(bad / "val-only.tar", {LISTENING: edited(source[LISTENING], split="val")})
    write_tar(bad / "mixed.tar", {PICKLED: pickled, SILENT: source[SILENT]})
    whole = (good / "clips-a.tar").read_bytes()
    (bad / "cut.tar").write_bytes(whole[: int(len(whole) * 0.6)])
    provenance = json.loads(source[SILENT]["json"])["provenance"]
    other = {**provenance, "speech_features": {**provenance["speech_features"],
                                               "name": "wav2vec2"}}
    write_tar(bad / "other-features.tar", {MUTE: edited(source[SILENT], MUTE,
                                                        provenance=other)})
    return {"source": source, "good": good, "bad": bad}


@pytest.fixture(scope="module")
def encoded(inputs, vae_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("latents") / "out"
    lines: list[str] = []
    summary = run_encode_latents(vae_file, str(inputs["good"]), out, use_ray=False,
                                 device="cpu", batch_frames=32, log=lines.append)
    return out, summary, lines


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def latent_arrays(out: Path) -> dict[str, dict]:
    found = {}
    for shard in sorted(out.glob("*.tar")):
        for key, members in read_tar(shard).items():
            found[key] = read_latent_sample(members)
    return found


def test_latents_are_readable_exact_and_normalised_over_train(encoded, inputs, vae_file):
    from gaia.inference.vae import LoadedVae

    out, summary, lines = encoded
    latents = latent_arrays(out)
    assert set(latents) == {TALKING, LISTENING, SILENT}  # the clip without audio is skipped
    assert summary.clips_encoded == 3 and summary.clips_skipped == {"no_audio": 1}
    assert summary.shards_encoded == 2 and summary.frames == 300
    part = json.loads((out / "parts" / "clips-b.json").read_text())
    assert {s["key"]: s["status"] for s in part["samples"]} == {SILENT: "ok", MUTE: "no_audio"}
    assert sum("clips-a.tar:" in line for line in lines) == 1

    source = inputs["source"][TALKING]
    vae = LoadedVae.load(vae_file, "cpu")
    points = (load_npy(source["landmarks.npy"]) + 0.5) * 64 / 256 - 0.5  # crop px -> 64 px
    with torch.no_grad():  # all frames in one batch; the job encoded batches of 32
        direct = vae.model.encode_motion(vae.landmark_image(torch.from_numpy(points))).mode()
    talking = latents[TALKING]
    np.testing.assert_allclose(talking["motion"], direct.flatten(1).numpy(), atol=1e-5)
    assert talking["motion"].shape == (100, 64) and talking["motion"].dtype == np.float32
    index = reference_frame(talking["pose"])
    assert talking["meta"]["reference_frame"] == index
    np.testing.assert_array_equal(talking["reference"], talking["motion"][index])
    np.testing.assert_array_equal(talking["speech"], load_npy(source["speech.npy"]))
    np.testing.assert_array_equal(talking["pose"], load_npy(source["pose.npy"]))
    assert talking["meta"]["vae"]["sha256"] == file_sha256(vae_file)

    stats = json.loads((out / "stats.json").read_text())
    assert set(STATS_FIELDS) <= set(stats) and stats["split"] == "train"
    train = [latents[TALKING], latents[SILENT]]  # LISTENING is in val: left out
    assert stats["frames"] == 200 and stats["clips"] == 2 and stats["latent_shape"] == [4, 4, 4]
    for name in ("motion", "pose", "speech"):
        rows = np.concatenate([sample[name] for sample in train]).astype(np.float64)
        np.testing.assert_allclose(stats[f"{name}_mean"], rows.mean(0), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(stats[f"{name}_std"], np.maximum(rows.std(0), 1e-6),
                                   rtol=1e-6, atol=1e-9)
    assert stats["speech_features"] == talking["meta"]["speech_features"]
    manifest = pq.read_table(out / "manifest.parquet").to_pylist()
    assert [(r["key"], r["shard"], r["split"]) for r in manifest] == [
        (LISTENING, "clips-a.tar", "val"), (SILENT, "clips-b.tar", "train"),
        (TALKING, "clips-a.tar", "train")]


def test_resume_encodes_nothing_twice_and_refuses_another_vae(encoded, inputs, vae_file,
                                                              tmp_path):
    out, _, _ = encoded
    before = snapshot(out)
    (out / ".clips-a.tar.0123abcd.partial").write_bytes(b"half a shard")  # a killed writer
    again = run_encode_latents(vae_file, str(inputs["good"]), out, use_ray=False,
                               device="cpu", batch_frames=32, log=lambda _: None)
    assert again.shards_skipped == 2 and again.shards_encoded == 0 and again.clips_encoded == 0
    assert snapshot(out) == before  # the partial file is gone, nothing else changed

    # Killed after a shard's tar was renamed, before its part: that shard alone is redone.
    (out / "parts" / "clips-a.json").unlink()
    redo = run_encode_latents(vae_file, str(inputs["good"]), out, use_ray=False,
                              device="cpu", batch_frames=32, log=lambda _: None)
    assert redo.shards_encoded == 1 and redo.shards_skipped == 1 and redo.clips_encoded == 2
    assert snapshot(out) == before

    other = save_vae(tmp_path / "vae-b", seed=1)
    with pytest.raises(EncodeMismatchError, match="another VAE"):
        run_encode_latents(other, str(inputs["good"]), out, use_ray=False, device="cpu",
                           log=lambda _: None)
    assert snapshot(out) == before


def test_bad_samples_and_a_truncated_shard_are_recorded_not_fatal(inputs, vae_file,
                                                                  tmp_path):
    spec = f"{inputs['bad']}/mixed.tar,{inputs['bad']}/cut.tar,{inputs['good']}/clips-b.tar"
    out = tmp_path / "out"
    summary = run_encode_latents(vae_file, spec, out, use_ray=False, device="cpu",
                                 log=lambda _: None)
    assert summary.shards_encoded == 2 and summary.shards_failed == 1
    mixed = json.loads((out / "parts" / "mixed.json").read_text())
    status = {s["key"]: s for s in mixed["samples"]}
    assert status[PICKLED]["status"] == "failed" and "pickle" in status[PICKLED]["reason"]
    assert status[SILENT]["status"] == "ok" and mixed["error"] is None
    assert set(read_tar(out / "mixed.tar")) == {SILENT}
    cut = json.loads((out / "parts" / "cut.json").read_text())
    assert cut["error"], "the truncated shard's part must say why it stopped"
    assert set(latent_arrays(out)) >= {SILENT}
    assert (out / "stats.json").is_file()

    # A read error is not a completion record: only the truncated shard is tried again.
    again = run_encode_latents(vae_file, spec, out, use_ray=False, device="cpu",
                               log=lambda _: None)
    assert again.shards_skipped == 2 and again.shards_failed == 1


def test_mixed_speech_features_are_refused(inputs, vae_file, tmp_path):
    spec = f"{inputs['good']}/clips-b.tar,{inputs['bad']}/other-features.tar"
    out = tmp_path / "out"
    with pytest.raises(EncodeMismatchError, match="different speech features"):
        run_encode_latents(vae_file, spec, out, use_ray=False, device="cpu",
                           log=lambda _: None)
    assert not (out / "stats.json").exists()


def test_stats_fall_back_to_all_clips_without_a_train_split(inputs, vae_file, tmp_path):
    out = tmp_path / "out"
    summary = run_encode_latents(vae_file, str(inputs["bad"] / "val-only.tar"), out,
                                 use_ray=False, device="cpu", log=lambda _: None)
    stats = json.loads((out / "stats.json").read_text())
    assert summary.stats_split == stats["split"] == "all"
    assert stats["clips"] == 1 and stats["frames"] == 100
    motion = latent_arrays(out)[LISTENING]["motion"].astype(np.float64)
    np.testing.assert_allclose(stats["motion_mean"], motion.mean(0), rtol=1e-9, atol=1e-9)


def test_cli_on_ray_writes_the_same_latents(encoded, inputs, vae_file, tmp_path, capsys):
    import ray

    from gaia.cli import main

    out = tmp_path / "ray-out"
    try:
        code = main(["encode-latents", "--vae", str(vae_file.parent), "--shards",
                     str(inputs["good"] / "clips-a.tar"), "--out", str(out), "--workers", "1",
                     "--device", "cpu", "--json"])
    finally:
        ray.shutdown()
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["shards_encoded"] == 1 and summary["clips_encoded"] == 2
    on_ray, here = latent_arrays(out), latent_arrays(encoded[0])
    assert set(on_ray) == {TALKING, LISTENING}
    for key, sample in on_ray.items():
        for name in ("motion", "reference", "speech", "pose"):
            np.testing.assert_allclose(sample[name], here[key][name], atol=1e-5)
        assert sample["meta"] == here[key]["meta"]
