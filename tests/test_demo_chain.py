"""The demo's whole chain through the ``gaia`` command, as a user runs it (``make demo``, at a
smaller size): sample -> curate run (Ray) -> train vae -> encode-latents (Ray) -> train
s2m -> generate. Each step is a separate process, so what one writes is all the next
reads. Slow (minutes on 2 cores, two Ray starts): ``make test-slow``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def gaia(*argv: str) -> str:
    done = subprocess.run([sys.executable, "-m", "gaia.cli", *argv], capture_output=True,
                          text=True, timeout=1200)
    assert done.returncode == 0, (argv, done.stderr[-3000:])
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return done.stdout


def test_the_demo_chain_makes_a_talking_video(tmp_path: Path):
    import av

    raw, inputs, run = tmp_path / "raw", tmp_path / "inputs", tmp_path / "run"
    vae, latents, s2m = tmp_path / "vae-tiny", tmp_path / "latents", tmp_path / "s2m-tiny"
    gaia("sample", str(raw), "--seconds", "4", "--generation-inputs", str(inputs))
    gaia("curate", "run", str(raw), "--out", str(run), "--preset", "vae", "--workers", "2")
    shards = run / "shards" / "vae"
    assert sorted(shards.glob("*.tar")), "curate run wrote no shard"
    gaia("train", "vae", "--config", "vae-tiny", "--shards", str(shards), "--out", str(vae),
         "--perceptual", "none", "--max-steps", "20", "--batch-size", "4", "--num-workers",
         "0", "--log-every", "10", "--image-every", "20", "--checkpoint-every", "20",
         "--set", "lr=2e-3", "--set", "disc_start=100000")
    assert (vae / "checkpoints" / "step-00000020.pt").is_file()
    gaia("encode-latents", "--vae", str(vae), "--shards", str(shards), "--out", str(latents))
    assert (latents / "stats.json").is_file()
    gaia("train", "s2m", "--config", "s2m-tiny", "--shards", str(latents), "--out",
         str(s2m), "--max-steps", "20", "--batch-size", "4", "--num-workers", "0",
         "--log-every", "10", "--image-every", "0", "--checkpoint-every", "20")
    talking = tmp_path / "talking.mp4"
    gaia("generate", "--image", str(inputs / "portrait.png"), "--audio",
         str(inputs / "speech.wav"), "--vae", str(vae), "--s2m", str(s2m), "--out",
         str(talking), "--steps", "4")

    record = json.loads(talking.with_suffix(".json").read_text())
    with av.open(str(talking)) as video:
        frames = sum(1 for _ in video.decode(video=0))
    with av.open(str(talking)) as sound:
        assert sound.streams.audio, "the talking video has no speech track"
    assert abs(frames - record["duration_s"] * record["fps"]) <= 1, (frames, record)
