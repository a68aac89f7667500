"""Shared fixtures: real-media clips (docs/test-media.md), built once per test session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

FPS = 25.0


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def astronaut_landmarks() -> np.ndarray:
    from gaia.pipeline.face.detect import primary_face_landmarks
    from gaia.samples.shipped import astronaut

    return primary_face_landmarks(astronaut())


def portrait_clip(path: Path, seconds: float, audio: np.ndarray | None,
                  image: np.ndarray | None = None, fps: float = FPS) -> Path:
    """A real face (the astronaut photo unless ``image``) moving gently, with ``audio``."""
    from gaia.pipeline.media.video_writer import write_video
    from gaia.samples.clips import portrait_motion
    from gaia.samples.shipped import astronaut

    image = astronaut() if image is None else image
    frames = portrait_motion(image, int(round(seconds * fps)), seed=1)
    return write_video(path, frames, fps, audio=audio, audio_rate=16000)


@pytest.fixture(scope="session")
def talking_clip(media_dir) -> Path:
    """6 s of the astronaut: 3 s of synthesized speech, then 3 s of silence."""
    from gaia.samples.speech import silence, speech_of_duration

    audio = np.concatenate([speech_of_duration(3.0), silence(3.0)])
    return portrait_clip(media_dir / "astronaut_speech_then_silence.mp4", 6.0, audio)


@pytest.fixture(scope="session")
def cartoon_clip(media_dir) -> Path:
    """About 3 s of Big Buck Bunny (no human face), re-encoded with speech."""
    import decord

    from gaia.pipeline.media.video_writer import write_video
    from gaia.samples.shipped import bigbuckbunny_path
    from gaia.samples.speech import speech_of_duration

    reader = decord.VideoReader(str(bigbuckbunny_path()))
    count = min(len(reader), 75)
    frames = reader.get_batch(list(range(count))).asnumpy()
    return write_video(media_dir / "cartoon.mp4", frames, FPS,
                       audio=speech_of_duration(count / FPS), audio_rate=16000)


@pytest.fixture(scope="session")
def portrait_png(tmp_path_factory) -> Path:
    """The astronaut portrait as a PNG file, as a user passes it to ``gaia generate``."""
    import cv2

    from gaia.samples.build import portrait

    path = tmp_path_factory.mktemp("portrait") / "astronaut.png"
    cv2.imwrite(str(path), cv2.cvtColor(portrait(), cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="session")
def measured_sample(tmp_path_factory):
    """The demo sample (4 s clips) measured into a run directory, in process (no Ray).

    Each status record also keeps the clip's expectation from the sample index.
    """
    from gaia.pipeline.measure.config import MeasureConfig
    from gaia.pipeline.measure.provenance import write_run_config
    from gaia.pipeline.measure.video import Models, measure_video
    from gaia.pipeline.run_dir import RunDir
    from gaia.samples.build import build_demo_sample

    root = tmp_path_factory.mktemp("sample-run")
    clips = build_demo_sample(root / "raw", seconds=4.0)
    run = RunDir(root / "run")
    run.make()
    config = MeasureConfig()
    write_run_config(run, config)
    models = Models.load(config)
    for clip in clips:
        if clip.kind in ("talk", "filter", "noface"):
            record = measure_video(str(clip.path), clip.path.stem, clip.path.parent.name,
                                   run.metrics, models, config)
            record["expectation"] = clip.expectation
            run.write_status(record)
    run.write_videos_table()
    return run


@pytest.fixture(scope="session")
def sample_shards(measured_sample, tmp_path_factory):
    """The measured sample cut into shards with the vae preset, in process (no Ray).

    Returns the shards folder (``.../shards/vae``): a few real clips of real faces with speech.
    """
    import shutil

    from gaia.pipeline.extract.job import ExtractConfig, run_extract

    root = tmp_path_factory.mktemp("shards") / "run"
    shutil.copytree(measured_sample.root, root)
    run_extract(root, "vae", config=ExtractConfig(shard_mb=0.5, val_fraction=0.0),
                log=lambda _: None, use_ray=False)
    return root / "shards" / "vae"


def save_vae_checkpoint(folder: Path, seed: int = 0, **overrides) -> Path:
    """A randomly initialised vae-tiny saved as `gaia train vae` saves it (step 0)."""
    import torch

    from gaia.training.checkpoint import save_checkpoint
    from gaia.training.vae.build import build_vae
    from gaia.training.vae.config import load_vae_config

    torch.manual_seed(seed)
    config = load_vae_config("vae-tiny", perceptual="none", **overrides)
    model = build_vae(config)  # disentangle=False: table 6's VAE without disentanglement
    folder.mkdir(parents=True, exist_ok=True)
    return save_checkpoint(folder, 0, {"task": {"model": model.state_dict(),
                                                "config": config.to_dict()}})


@pytest.fixture(scope="session")
def new_vae_checkpoint():
    """``save_vae_checkpoint`` for tests that need a VAE of their own (another seed)."""
    return save_vae_checkpoint


@pytest.fixture(scope="session")
def vae_checkpoint(tmp_path_factory) -> Path:
    return save_vae_checkpoint(tmp_path_factory.mktemp("vae-tiny") / "checkpoints")


@pytest.fixture(scope="session")
def latent_shards(sample_shards, vae_checkpoint, tmp_path_factory) -> Path:
    """The sample shards encoded with ``vae_checkpoint`` (in-process, no Ray)."""
    from gaia.pipeline.latents.job import run_encode_latents

    out = tmp_path_factory.mktemp("latents")
    run_encode_latents(vae_checkpoint, str(sample_shards), out, use_ray=False,
                       log=lambda _: None)
    return out


@pytest.fixture(scope="session")
def s2m_run(latent_shards, tmp_path_factory) -> Path:
    """s2m-tiny trained briefly on ``latent_shards`` (enough to exercise generation)."""
    from gaia.training.s2m.train import S2mTrainOptions, train_s2m

    out = tmp_path_factory.mktemp("s2m") / "run"
    train_s2m(S2mTrainOptions(
        config="s2m-tiny", shards=str(latent_shards), out=str(out), max_steps=20,
        batch_size=4, num_workers=0, batches_per_epoch=10, log_every=10, image_every=0,
        checkpoint_every=20), log=lambda _: None)
    return out


# The text-instructed model (appendix E): the sample's real clips with an instruction each.
INSTRUCTIONS = ("turn your head to the left", "please smile")


def with_instructions(source: Path, target: Path) -> list[str]:
    """Copy the shards of ``source`` to ``target`` with an ``instruction.json`` added to each
    sample (the instructions in turn, the clip 0.2 s after its cue); returns the texts given."""
    import io
    import tarfile

    from gaia.schemas.instruction import Instruction

    target.mkdir(parents=True)
    given = []
    for shard in sorted(source.glob("*.tar")):
        with tarfile.open(shard) as archive:
            members = [(m, archive.extractfile(m).read()) for m in archive.getmembers()]
        with tarfile.open(target / shard.name, "w") as out:
            for index, (member, blob) in enumerate(members):
                out.addfile(member, io.BytesIO(blob))
                key = member.name.split(".", 1)[0]
                if index + 1 < len(members) and members[index + 1][0].name.startswith(
                        f"{key}."):
                    continue  # a sample's members stay together: add it after its last
                text = INSTRUCTIONS[len(given) % len(INSTRUCTIONS)]
                blob = Instruction(text, 1.0, 1.8, 0.2, 6.8, len(given), "clip.srt",
                                   "imperative").to_bytes()
                given.append(text)
                info = tarfile.TarInfo(f"{key}.instruction.json")
                info.size = len(blob)
                out.addfile(info, io.BytesIO(blob))
    return given


@pytest.fixture(scope="session")
def text_encoder(tmp_path_factory) -> Path:
    """The small random CLIP text model with CLIP's real vocabulary (appendix E)."""
    from gaia.text.clip_text import write_tiny_text_encoder

    return write_tiny_text_encoder(tmp_path_factory.mktemp("clip") / "text")


@pytest.fixture(scope="session")
def instruct_latents(sample_shards, vae_checkpoint, text_encoder, tmp_path_factory):
    """The sample shards with ``INSTRUCTIONS`` added, encoded with ``text_encoder``: the
    folder, the texts given and the encode summary."""
    from gaia.pipeline.latents.job import run_encode_latents

    root = tmp_path_factory.mktemp("instruct")
    given = with_instructions(sample_shards, root / "shards")
    summary = run_encode_latents(vae_checkpoint, str(root / "shards"), root / "latents",
                                 use_ray=False, text_encoder=str(text_encoder),
                                 allow_untrained=True, log=lambda _: None)
    return root, given, summary


@pytest.fixture(scope="session")
def instruct_run(instruct_latents, tmp_path_factory) -> Path:
    """instruct-tiny trained 10 steps on ``instruct_latents`` (appendix E's model, tiny)."""
    from gaia.training.instruct.options import InstructTrainOptions
    from gaia.training.instruct.train import train_instruct

    out = tmp_path_factory.mktemp("instruct-run") / "run"
    train_instruct(InstructTrainOptions(
        config="instruct-tiny", shards=str(instruct_latents[0] / "latents"), out=str(out),
        max_steps=10, batch_size=4, num_workers=0, batches_per_epoch=10, log_every=10,
        image_every=0, checkpoint_every=10), log=lambda _: None)
    return out


@pytest.fixture(scope="session")
def read_metrics():
    """The rows of a training run's ``metrics.jsonl``."""
    import json

    def read(out: Path) -> list[dict]:
        return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]

    return read


@pytest.fixture(scope="session")
def one_and_two_processes():
    """Run a step-check script (``tests/ddp_*_check.py OUT``) alone and under a 2-process
    torchrun on CPU; returns what each saved (``torch.load``, weights only)."""
    import os
    import socket
    import subprocess
    import sys

    import torch

    tests = Path(__file__).resolve().parent

    def run(script: str, folder: Path) -> tuple[dict, dict]:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(tests.parent)}
        single, double = folder / "one.pt", folder / "two.pt"
        path = str(tests / script)
        subprocess.run([sys.executable, path, str(single)], env=env, check=True,
                       capture_output=True, timeout=300)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
             "--master_addr", "127.0.0.1", "--master_port", str(port), path, str(double)],
            env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        return torch.load(single, weights_only=True), torch.load(double, weights_only=True)

    return run


@pytest.fixture()
def tiny_features():
    """A small random feature network in FID's Inception's place (uint8 images -> 8 features):
    the FID plumbing under test, not the value of a real FID."""
    import torch

    class TinyFeatures(torch.nn.Module):
        num_features = 8

        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(1)
            self.conv = torch.nn.Conv2d(3, 8, 5, stride=4)

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return torch.tanh(self.conv(images.float() / 255)).mean(dim=(2, 3))

    return TinyFeatures().eval()


def headless_chromium(*flags: str):
    """A Selenium driver of Debian's headless Chromium (``make test`` installs it), with any
    extra command-line ``flags``; the caller quits it."""
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", *flags):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(
        shutil.which("chromedriver") or "/usr/bin/chromedriver"))
