"""VAE evaluation by the paper's protocols (appendix B.2, table 2) and cross-reenactment on real
faces: metrics of a vae-tiny trained for a few steps on real clips, against an untrained one;
AKD detector against detector with a known shift; the report page in headless Chromium; a
reenacted mp4 with the driving video's frames and audio; clear errors for unusable inputs."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from gaia.evaluation.vae import VaeEvalOptions, evaluate_vae, load_test_videos
from gaia.training.vae.train import VaeTrainOptions, train_vae

FPS = 25.0
STEPS = 30


@pytest.fixture(scope="module")
def trained_run(sample_shards, tmp_path_factory) -> Path:
    """A vae-tiny run folder trained for ``STEPS`` steps on the sample's real clips."""
    out = tmp_path_factory.mktemp("vae-eval") / "run"
    options = VaeTrainOptions(config="vae-tiny", shards=str(sample_shards), out=str(out),
                              max_steps=STEPS, batch_size=8, num_workers=0, perceptual="none",
                              log_every=5, image_every=0, batches_per_epoch=20,
                              overrides=("lr=2e-3", "disc_start=1000"))
    assert train_vae(options, log=lambda _: None) == STEPS
    return out


@pytest.fixture(scope="module")
def untrained_checkpoint(tmp_path_factory) -> Path:
    """A freshly initialised vae-tiny, saved in the trainer's checkpoint format."""
    from gaia.training.checkpoint import save_checkpoint
    from gaia.training.distributed import init_world
    from gaia.training.vae.config import load_vae_config
    from gaia.training.vae.task import VaeTask

    torch.manual_seed(0)
    task = VaeTask(load_vae_config("vae-tiny", perceptual="none"), None, init_world("cpu"))
    folder = tmp_path_factory.mktemp("vae-untrained")
    return save_checkpoint(folder, 0, {"task": task.state_dict()})


@pytest.fixture(scope="module")
def source_png(tmp_path_factory) -> Path:
    from gaia.samples.build import portrait

    path = tmp_path_factory.mktemp("reenact") / "portrait.png"
    cv2.imwrite(str(path), cv2.cvtColor(portrait(), cv2.COLOR_RGB2BGR))
    return path


def driving_clip(path: Path, seconds: float, speech: bool) -> Path:
    """The astronaut portrait swaying gently, with synthesized speech or silent."""
    from gaia.pipeline.media.video_writer import write_video
    from gaia.samples.build import portrait
    from gaia.samples.clips import portrait_motion
    from gaia.samples.speech import speech_of_duration

    frames = portrait_motion(portrait(), int(round(seconds * FPS)), seed=2)
    audio = speech_of_duration(seconds) if speech else None
    return write_video(path, frames, FPS, audio=audio, audio_rate=16000)


SMALL = VaeEvalOptions(split=None, max_frames=20, rounds=2, frames_per_round=12)


def test_protocol_metrics_on_real_clips(trained_run, untrained_checkpoint, sample_shards,
                                        tmp_path):
    from gaia.generation.reenact import CropLandmarks

    plan = tmp_path / "plan.json"
    metrics = evaluate_vae(trained_run, str(sample_shards), SMALL, detector=CropLandmarks(),
                           plan=plan)
    assert Path(metrics["checkpoint"]).name == f"step-{STEPS:08d}.pt"
    videos = metrics["test_videos"]
    assert len(videos) >= 2 and all(v["frames"] == 20 for v in videos)
    own = metrics["self_reconstruction"]
    # first frame as appearance, every other frame driving
    assert own["videos"] == len(videos) and own["frames"] == 19 * len(videos)
    assert math.isfinite(own["psnr"]) and 0 < own["l1"] < 1
    assert own["lpips"] is None and own["fid"] is None
    assert any(n.startswith("LPIPS") for n in metrics["notes"])
    assert any(n.startswith("FID") for n in metrics["notes"])
    # dlib finds nearly every real 64 px face; MSI lies in StableFace's (0, 2]
    assert own["akd_missed_real"] <= 0.1 * own["frames"] and 0 < own["msi_real"] <= 2
    cross = metrics["cross_reenactment"]
    assert cross["drives"] == 2 * len(videos) and cross["frames"] == 2 * 12 * len(videos)
    for row in metrics["per_video"]["cross_reenactment"]:
        assert row["source"] != row["key"]
        assert row["akd_frames"] + row["akd_missed_generated"] + row["akd_missed_real"] >= 12
    assert plan.is_file()

    # the plan file repeats the run: the same numbers again (posterior means)
    again = evaluate_vae(trained_run, str(sample_shards), SMALL, detector=CropLandmarks(),
                         plan=plan)
    assert again["self_reconstruction"] == own and again["cross_reenactment"] == cross
    with pytest.raises(ValueError, match="other test videos"):
        evaluate_vae(trained_run, str(sample_shards),
                     VaeEvalOptions(split=None, max_frames=10), plan=plan)
    untrained = evaluate_vae(untrained_checkpoint, str(sample_shards), SMALL)
    assert untrained["step"] == 0
    assert own["psnr"] > untrained["self_reconstruction"]["psnr"] + 3.0, (
        own["psnr"], untrained["self_reconstruction"]["psnr"])


def test_akd_is_detector_against_detector_with_a_known_shift(trained_run, sample_shards):
    """A stub detector that answers fixed points on the real frames and the same points
    shifted by (3, 4) on the model's outputs: AKD must be exactly 3.5 px by FOMM's definition
    (mean |dx|, |dy|) and 5 px Euclidean in both protocols, and a still track has the most
    stable MSI StableFace allows (1 / 0.5)."""
    videos, _ = load_test_videos(str(sample_shards), None, 64, SMALL.max_frames)
    real = {frame.tobytes() for video in videos for frame in video.frames}
    points = np.random.default_rng(0).uniform(10, 50, (68, 2))

    def stub(rgb: np.ndarray) -> np.ndarray:
        assert rgb.shape == (64, 64, 3) and rgb.dtype == np.uint8
        return points if rgb.tobytes() in real else points + (3.0, 4.0)

    metrics = evaluate_vae(trained_run, str(sample_shards), SMALL, detector=stub)
    for section in ("self_reconstruction", "cross_reenactment"):
        assert metrics[section]["akd"] == pytest.approx(3.5, rel=1e-12)
        assert metrics[section]["akd_euclidean"] == pytest.approx(5.0, rel=1e-12)
        assert metrics[section]["msi"] == pytest.approx(2.0)
    blind = evaluate_vae(trained_run, str(sample_shards), SMALL, detector=lambda _: None)
    assert blind["self_reconstruction"]["akd"] is None
    assert blind["self_reconstruction"]["akd_euclidean"] is None
    assert metrics["detector"] == "stub" and blind["detector"] == "<lambda>"
    assert metrics["run"]["parameters"] > 0 and metrics["run"]["model"]["name"] == "vae-tiny"
    assert blind["self_reconstruction"]["akd_missed_generated"] == 19 * len(videos)


def test_report_page_renders_in_headless_chromium(trained_run, sample_shards, tmp_path):
    from gaia.cli import main

    report = tmp_path / "eval" / "vae.html"
    assert main(["eval", "vae", "--vae", str(trained_run), "--shards", str(sample_shards),
                 "--split", "all", "--max-frames", "16", "--rounds", "1",
                 "--frames-per-round", "10", "--inception-weights", str(tmp_path / "no.pth"),
                 "--report", str(report)]) == 0
    data = json.loads(report.with_suffix(".json").read_text())
    assert data["cross_reenactment"]["fid"] is None
    assert any("no.pth" in n and "not found" in n for n in data["notes"])
    assert report.with_suffix(".plan.json").is_file()
    dom, screenshot = render_in_chromium(report, tmp_path)
    for table in (2, 7, 4):
        assert f'id="results-{table}"' in dom
    assert "Ours (this run)" in dom and "face-vid2vid" in dom and "GAIA (VoxCeleb2)" in dom
    assert "dlib's 68-point shape predictor" in dom  # the detector AKD and MSI use
    images = int(re.search(r'data-images="(\d+)"', dom).group(1))
    decoded = int(re.search(r'data-images-decoded="(\d+)"', dom).group(1))
    videos = len(data["test_videos"])
    assert images >= videos * 3 and decoded == images  # real, reconstructed, reenacted strips
    assert dom.count("<polyline") >= 2 * videos
    page = cv2.imread(str(screenshot))
    assert page is not None and page.shape[1] == 1200 and page.std() > 10


def render_in_chromium(page: Path, folder: Path) -> tuple[str, Path]:
    """The page's DOM after load, and a screenshot, from Debian's headless Chromium."""
    import shutil
    import subprocess

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "make test installs Debian's chromium; run it through make"
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--user-data-dir={folder / 'chromium-profile'}", "--window-size=1200,1600"]
    shot = folder / "page.png"
    subprocess.run([*flags, f"--screenshot={shot}", page.as_uri()], check=True,
                   capture_output=True, timeout=120)
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], check=True,
                         capture_output=True, text=True, timeout=120).stdout
    return dom, shot


def test_reenact_writes_the_driving_videos_frames_and_audio(trained_run, source_png, tmp_path):
    import av
    import decord

    from gaia.generation.reenact import reenact

    driving = driving_clip(tmp_path / "driving.mp4", 1.0, speech=True)
    messages: list[str] = []
    out = reenact(source_png, driving, trained_run, tmp_path / "out.mp4",
                  progress=messages.append)
    frames = decord.VideoReader(str(out))
    assert len(frames) == len(decord.VideoReader(str(driving))) == 25
    assert frames[0].asnumpy().shape == (64, 64, 3)
    assert frames.get_avg_fps() == pytest.approx(FPS)
    with av.open(str(out)) as container:
        assert len(container.streams.audio) == 1
        assert container.streams.audio[0].rate == 16000
    assert any("face found in 25" in m for m in messages), messages

    silent = reenact(source_png, driving_clip(tmp_path / "silent.mp4", 0.4, speech=False),
                     trained_run, tmp_path / "silent_out.mp4", progress=lambda _: None)
    with av.open(str(silent)) as container:
        assert not container.streams.audio and container.streams.video[0].frames == 10


def test_reenact_refuses_unusable_inputs(trained_run, source_png, tmp_path):
    from gaia.cli import main
    from gaia.generation.reenact import reenact
    from gaia.pipeline.media.video_writer import write_video
    from gaia.samples.build import portrait

    driving = driving_clip(tmp_path / "driving.mp4", 0.4, speech=False)
    two = tmp_path / "two.png"
    cv2.imwrite(str(two), cv2.cvtColor(np.hstack([portrait(), portrait()]), cv2.COLOR_RGB2BGR))
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((320, 320, 3), 128, np.uint8))
    out = tmp_path / "out.mp4"
    quiet = {"progress": lambda _: None}
    with pytest.raises(ValueError, match="2 faces found in the portrait"):
        reenact(two, driving, trained_run, out, **quiet)
    with pytest.raises(ValueError, match="no face found in the portrait"):
        reenact(blank, driving, trained_run, out, **quiet)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    with pytest.raises(ValueError, match="cannot read the driving video"):
        reenact(source_png, broken, trained_run, out, **quiet)
    faceless = write_video(tmp_path / "faceless.mp4",
                           [np.full((240, 320, 3), 90, np.uint8)] * 10, FPS)
    with pytest.raises(ValueError, match="no face found in any frame of the driving video"):
        reenact(source_png, faceless, trained_run, out, **quiet)
    assert not out.exists()
    assert main(["reenact", "--source", str(blank), "--driving", str(driving),
                 "--vae", str(trained_run), "--out", str(out)]) == 2


def test_gaia_eval_vae_prints_json(trained_run, sample_shards, capsys):
    from gaia.cli import main

    assert main(["eval", "vae", "--vae", str(trained_run), "--shards", str(sample_shards),
                 "--split", "train", "--max-frames", "8", "--rounds", "1",
                 "--frames-per-round", "4", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["self_reconstruction"]["frames"] == 7 * len(metrics["test_videos"])
    assert metrics["split"] == "train" and "strips" not in metrics
    assert main(["eval", "vae", "--vae", str(trained_run), "--shards", str(sample_shards),
                 "--split", "val"]) == 2
    assert "0 test videos of split 'val'" in capsys.readouterr().err
