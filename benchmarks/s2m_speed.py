"""Speech-to-motion speed on this machine, each figure against a reference from the same run.

- training: s2m-tiny optimizer steps per second on windows already in memory, against the
  window loader's supply (windows per second read from latent shards alone);
- generation: seconds of compute per second of talking video for the parts of
  ``gaia generate`` (motion sampling at N steps, VAE decoding, the whole command), against the
  video's duration (real-time factor; below 1 is faster than real time).

Latent shards and checkpoints are random (speed does not depend on what the weights know);
the portrait and speech are the demo's real ones. With a GPU (``--device cuda``) it also prints
peak memory; model-FLOPs utilisation is left to a GPU run (see the closing note of issue 6).

    python benchmarks/s2m_speed.py [--config s2m-tiny] [--steps 30] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import io
import json
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np


def make_latents(folder: Path, latent_shape: tuple[int, int, int], speech_dim: int,
                 clips: int = 16, frames: int = 250) -> Path:
    """Random latent shards in the spec's layout, with their stats.json."""
    from gaia.schemas.shards import FPS, SPEECH_ROWS_PER_FRAME, dump_npy

    rng = np.random.default_rng(0)
    dim = int(np.prod(latent_shape))
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(folder / "shard-000000.tar", "w") as tar:
        for n in range(clips):
            key = f"bench_{n:04d}"
            meta = {"key": key, "latent_schema_version": 1, "frames": frames, "fps": FPS,
                    "split": "train", "identity": str(n), "source_video": key,
                    "reference_frame": 0, "latent_shape": list(latent_shape), "vae": {},
                    "speech_features": {}}
            motion = rng.normal(size=(frames, dim)).astype(np.float32)
            members = {"motion.npy": dump_npy(motion), "reference.npy": dump_npy(motion[0]),
                       "speech.npy": dump_npy(rng.normal(
                           size=(SPEECH_ROWS_PER_FRAME * frames, speech_dim)).astype(np.float16)),
                       "pose.npy": dump_npy(rng.normal(size=(frames, 3)).astype(np.float32)),
                       "json": json.dumps(meta).encode()}
            for name, blob in members.items():
                info = tarfile.TarInfo(f"{key}.{name}")
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
    stats = {"motion_mean": [0.0] * dim, "motion_std": [1.0] * dim, "pose_mean": [0.0] * 3,
             "pose_std": [1.0] * 3, "speech_mean": [0.0] * speech_dim,
             "speech_std": [1.0] * speech_dim, "latent_shape": list(latent_shape), "vae": {},
             "speech_features": {"name": "logmel", "dim": speech_dim, "rate_hz": 50,
                                 "sha256": ""}}
    (folder / "stats.json").write_text(json.dumps(stats))
    return folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="s2m-tiny")
    parser.add_argument("--vae-config", default="vae-tiny")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--sample-steps", type=int, default=25)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    import torch

    from gaia.generation.generate import GenerateConfig, generate
    from gaia.samples.build import write_generation_inputs
    from gaia.training.checkpoint import save_checkpoint
    from gaia.training.data.latent_stats import LatentStats
    from gaia.training.data.latent_windows import WindowStreamConfig
    from gaia.training.data.shard_stream import shard_loader
    from gaia.training.distributed import init_world
    from gaia.training.s2m.config import load_s2m_config
    from gaia.training.s2m.sampler_config import SamplerConfig
    from gaia.training.s2m.task import S2mTask
    from gaia.training.vae.config import load_vae_config
    from gaia.training.vae.model import TwoEncoderVAE

    work = Path(tempfile.mkdtemp(prefix="gaia-s2m-bench-"))
    torch.manual_seed(0)
    world = init_world(args.device)
    vae_config = load_vae_config(args.vae_config, perceptual="none")
    config = load_s2m_config(args.config)
    latents = make_latents(work / "latents", vae_config.motion_latent_shape, 80)
    stats = LatentStats.load(latents)
    stream = WindowStreamConfig(shards=str(latents), window_min=config.window_min,
                                window_max=config.window_max)

    loader = iter(shard_loader(stream, args.batch_size, rank=0, world_size=1, num_workers=0,
                               batches_per_epoch=args.steps + 5))
    next(loader)
    started = time.perf_counter()
    batches = [next(loader) for _ in range(args.steps)]
    supply = args.steps * args.batch_size / (time.perf_counter() - started)

    task = S2mTask(config, stats, world)
    for batch in batches[:3]:
        task.train_step([batch], 0)  # warm-up
    if world.device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    for batch in batches:
        task.train_step([batch], 0)
    if world.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    appetite = args.steps * args.batch_size / seconds
    params = sum(p.numel() for p in task.network.parameters())
    print(f"{args.config} ({params / 1e6:.2f} M parameters, windows of "
          f"{config.window_min}-{config.window_max} frames, batch {args.batch_size}) on "
          f"{world.device}: {args.steps / seconds:.2f} steps/s = {appetite:.1f} windows/s")
    print(f"  loader supply {supply:.1f} windows/s alone: supply / appetite = "
          f"{supply / appetite:.1f}")
    if world.device.type == "cuda":
        print(f"  peak memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")

    # Generation: random checkpoints in the trainers' formats, real portrait and speech.
    vae = TwoEncoderVAE(vae_config)
    vae_file = save_checkpoint(work / "vae", 0, {"task": {"model": vae.state_dict(),
                                                          "config": vae_config.to_dict()}})
    save_checkpoint(work / "s2m", 0, {"task": task.state_dict()})
    portrait, speech = write_generation_inputs(work / "inputs", seconds=8.0)
    times: dict[str, float] = {}
    clock = {"last": 0.0}

    def progress(line: str) -> None:
        now = time.perf_counter()
        if "portrait cropped" in line:
            times["setup"] = now - clock["start"]
        elif "motion window" in line:
            times["sampling"] = now - clock["start"] - times["setup"]
        clock["last"] = now

    clock["start"] = time.perf_counter()
    record = generate(portrait, speech, vae_file, work / "s2m", work / "talk.mp4",
                      GenerateConfig(sampler=SamplerConfig(steps=args.sample_steps),
                                     device=args.device), progress=progress)
    total = time.perf_counter() - clock["start"]
    video_s = record["duration_s"]
    rest = total - times["setup"] - times["sampling"]
    print(f"generation of {video_s:.1f} s of video ({record['frames']} frames at "
          f"{vae_config.image_size} px, {args.sample_steps} sampling steps) on {world.device}:")
    print(f"  whole command {total / video_s:.3f} s per video second (real-time factor)")
    print(f"  of which loading + portrait + speech features {times['setup'] / video_s:.3f}, "
          f"motion sampling {times['sampling'] / video_s:.3f}, VAE decoding + mp4 "
          f"{rest / video_s:.3f} s per video second")


if __name__ == "__main__":
    main()
