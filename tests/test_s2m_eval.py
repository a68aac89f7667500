"""``gaia eval s2m`` (paper, section 5: speech-to-motion results) on real clips' latents: finite,
counted, reproducible metrics; the pose given to the sampler matters; frame metrics are
skipped, never faked, for clips whose decoded frames rarely show a face; the CLI's JSON."""

from __future__ import annotations

import io
import itertools
import json
import math

import numpy as np
import pytest
import torch

from gaia.evaluation.s2m import (
    enough_faces,
    evaluate_s2m,
    format_s2m_metrics,
    latent_clips,
    source_clips,
)
from gaia.generation.reenact import to_model_pixels
from gaia.schemas.shards import FRAME_SIZE
from gaia.training.s2m.sampler_config import SamplerConfig

FAST = SamplerConfig(steps=3)
CLIPS = 2
LATENT_METRICS = ("motion_mse", "motion_mse_mean_baseline", "pose_error_pitch", "pose_error_yaw",
                  "pose_error_roll", "pose_error_overall")


class _PooledSyncNet(torch.nn.Module):
    """SyncNet's interface (``audio``, ``video`` -> embeddings) at a fraction of the published
    network's cost (13.6 M parameters on 224 px crops: tens of seconds here); the network
    itself is tested in tests/test_syncnet.py."""

    def __init__(self) -> None:
        super().__init__()
        self.audio_fc = torch.nn.Linear(13 * 20, 16)
        self.video_fc = torch.nn.Linear(3 * 5 * 4 * 4, 16)

    def audio(self, mfcc: torch.Tensor) -> torch.Tensor:
        return self.audio_fc(mfcc.flatten(1))

    def video(self, crops: torch.Tensor) -> torch.Tensor:
        pooled = torch.nn.functional.adaptive_avg_pool3d(crops / 255.0, (5, 4, 4))
        return self.video_fc(pooled.flatten(1))


@pytest.fixture(scope="module")
def run_s2m(vae_checkpoint, s2m_run, latent_shards):
    """``evaluate_s2m`` on the sample's latents (split all: the sample has no val clips)."""
    def run(**options):
        options = {"split": None, "clips": CLIPS, "sampler": FAST, **options}
        return evaluate_s2m(vae_checkpoint, s2m_run, str(latent_shards), **options)
    return run


@pytest.fixture(scope="module")
def seed0(run_s2m) -> dict:
    return run_s2m(seed=0, pose="data")


def test_latent_metrics_are_finite_counted_and_the_same_for_the_same_seed(run_s2m, seed0):
    counts = seed0["counts"]
    assert counts["clips"] == CLIPS and counts["frames"] > 4 * CLIPS
    for name in LATENT_METRICS:
        summary = seed0["metrics"][name]
        assert summary["n"] == CLIPS, name
        assert math.isfinite(summary["mean"]) and math.isfinite(summary["std"]), name
    assert seed0["metrics"]["motion_mse"]["mean"] > 0
    # Standardised latents: the mean-motion baseline is the real latents' mean square, near 1.
    assert 0.05 < seed0["metrics"]["motion_mse_mean_baseline"]["mean"] < 20
    # Without videos nothing about frames is made up, and the notes say why.
    assert seed0["metrics"]["msi"] is None and seed0["metrics"]["msi_real"] is None
    assert seed0["metrics"]["sync_d"] is None and seed0["metrics"]["fid"] is None
    notes = " ".join(seed0["notes"])
    assert "--videos" in notes and "SyncNet" in notes and "Inception" in notes
    assert seed0["provenance"]["seed"] == 0 and seed0["provenance"]["sampler"]["steps"] == 3

    assert run_s2m(seed=0, pose="data")["metrics"] == seed0["metrics"]
    other = run_s2m(pose="data", seed=1)["metrics"]
    assert other["motion_mse"]["mean"] != seed0["metrics"]["motion_mse"]["mean"]
    # The pose predictor reads no noise: its error does not depend on the seed.
    assert other["pose_error_overall"] == seed0["metrics"]["pose_error_overall"]


def test_the_pose_given_to_the_sampler_changes_the_motion(run_s2m, seed0):
    predicted = run_s2m(seed=0, pose="predicted")
    assert predicted["provenance"]["pose"] == "predicted"
    assert predicted["metrics"]["motion_mse"]["mean"] != seed0["metrics"]["motion_mse"]["mean"]
    assert predicted["metrics"]["pose_error_overall"] == seed0["metrics"]["pose_error_overall"]


def test_enough_faces_is_at_least_half_of_the_frames():
    assert enough_faces(50, 100) and enough_faces(100, 100)
    assert not enough_faces(49, 100) and not enough_faces(0, 0)


def test_frame_metrics_are_skipped_for_clips_with_too_few_faces(run_s2m, seed0, latent_shards,
                                                                sample_shards):
    chosen, _ = latent_clips(str(latent_shards), None, CLIPS)
    first = source_clips(str(sample_shards), {chosen[0]["key"]})[chosen[0]["key"]]
    stored = np.load(io.BytesIO(first["landmarks.npy"]), allow_pickle=False)
    real = to_model_pixels(stored, FRAME_SIZE[0], 64)  # vae-tiny draws 64 px frames
    frames = [len(clip["motion"]) for clip in chosen]
    calls = itertools.count()

    def stub(image: np.ndarray) -> np.ndarray | None:
        """The first clip's real landmarks on 3 frames in 4; on the second clip a face on its
        first 40% of frames only: enough for MSI to be read, too few to be kept."""
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
        n = next(calls)
        if n < frames[0]:
            return None if n % 4 == 0 else real[n]
        return real[n - frames[0]] if n - frames[0] < 0.4 * frames[1] else None

    result = run_s2m(videos=str(sample_shards), landmark_fn=stub, pose="data")
    assert next(calls) == sum(frames)  # every decoded frame went to the detector once
    counts, metrics = result["counts"], result["metrics"]
    assert counts["frame_metrics_clips"] == 1 and counts["frame_metrics_skipped"] == 1
    assert counts["clips_without_video"] == 0
    assert metrics["msi"]["n"] == 1 and metrics["lip_sync"]["n"] == 1
    assert math.isfinite(metrics["msi"]["mean"]) and metrics["msi"]["mean"] > 0
    assert -1 <= metrics["lip_sync"]["mean"] <= 1
    found = metrics["face_found_fraction"]
    assert found["n"] == CLIPS and found["mean"] == pytest.approx(
        (0.75 + 0.4) / 2, abs=0.02)
    # The real landmarks are scored on every clip, whatever the detector did.
    assert metrics["msi_real"]["n"] == CLIPS and metrics["lip_sync_real"]["n"] == CLIPS
    assert math.isfinite(metrics["msi_real"]["mean"]) and metrics["msi_real"]["mean"] > 0
    assert any("fewer than 50%" in note for note in result["notes"])
    # The motion latents do not depend on videos: the same numbers as without them.
    assert metrics["motion_mse"] == seed0["metrics"]["motion_mse"]
    text = format_s2m_metrics(result)
    assert "1 clips, 1 skipped" in text and "n/a" in text  # Sync-D and FID


def test_cli_prints_json_with_the_metrics(vae_checkpoint, s2m_run, latent_shards, capsys):
    from gaia.cli import main

    code = main(["eval", "s2m", "--vae", str(vae_checkpoint), "--s2m", str(s2m_run),
                 "--latents", str(latent_shards), "--split", "all", "--clips", "1",
                 "--steps", "2", "--seed", "3", "--pose", "predicted", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert {"metrics", "counts", "provenance", "notes", "per_clip"} <= set(result)
    assert "strips" not in result  # pictures go to the report page, not the JSON
    assert {*LATENT_METRICS, "msi", "msi_real", "lip_sync", "lip_sync_real", "sync_d",
            "fid"} <= set(result["metrics"])
    assert result["counts"]["clips"] == 1 and result["metrics"]["motion_mse"]["n"] == 1
    assert result["provenance"]["seed"] == 3 and result["provenance"]["pose"] == "predicted"
    assert result["provenance"]["sampler"]["steps"] == 2


def test_sync_c_d_and_fid_are_read_from_the_decoded_frames(run_s2m, latent_shards,
                                                          sample_shards, tmp_path,
                                                          tiny_features):
    """With a SyncNet and an FID network (random weights: the path, not the values, is under
    test), every clip whose decoded frames show a face gets Sync-C/D; FID compares all decoded
    frames with the real ones; the report page shows the real and generated strips."""
    from gaia.evaluation.report import write_report

    chosen, _ = latent_clips(str(latent_shards), None, CLIPS)
    sources = source_clips(str(sample_shards), {c["key"] for c in chosen})
    tracks = [to_model_pixels(np.load(io.BytesIO(sources[c["key"]]["landmarks.npy"])),
                              FRAME_SIZE[0], 64) for c in chosen]
    calls = itertools.count()
    total = [len(c["motion"]) for c in chosen]

    def stub(image: np.ndarray) -> np.ndarray:
        n = next(calls)
        clip = int(n >= total[0])
        return tracks[clip][n - clip * total[0]]

    torch.manual_seed(0)
    syncnet = _PooledSyncNet().eval()
    result = run_s2m(videos=str(sample_shards), landmark_fn=stub, syncnet=syncnet,
                     fid_network=tiny_features)
    metrics = result["metrics"]
    assert metrics["sync_d"]["n"] == CLIPS and metrics["sync_d"]["mean"] > 0
    assert metrics["sync_c"]["mean"] >= 0  # the median minus the least distance
    # the real video's row of tables 3 and 8: the same SyncNet on the clips' real frames
    assert metrics["sync_d_real"]["n"] == CLIPS and metrics["sync_d_real"]["mean"] > 0
    assert isinstance(metrics["fid"], float) and metrics["fid"] >= 0
    assert result["fid_frames"] == sum(total)
    assert not any(note.startswith("Sync") for note in result["notes"])
    page, data = write_report(tmp_path / "s2m.html", result, "s2m")
    html = page.read_text()
    assert "Sync-D" in html and "MakeItTalk" in html and html.count("<img") >= CLIPS * 2
    assert f"{metrics['sync_d_real']['mean']:.3f}" in html and "8.548" in html
    assert json.loads(data.read_text())["metrics"]["sync_d"]["n"] == CLIPS


def test_cli_explains_a_split_without_clips(vae_checkpoint, s2m_run, latent_shards, capsys):
    from gaia.cli import main

    code = main(["eval", "s2m", "--vae", str(vae_checkpoint), "--s2m", str(s2m_run),
                 "--latents", str(latent_shards), "--split", "val"])
    assert code == 2
    assert "--split all" in capsys.readouterr().err


def test_unknown_pose_is_refused(run_s2m):
    with pytest.raises(ValueError, match="pose must be one of"):
        run_s2m(pose="fixed")

