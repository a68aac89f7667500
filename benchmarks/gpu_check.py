"""GPU check, one prepared script (issue 15, item 4): under 8 minutes on one NVIDIA H200.

For vae-small and s2m-small (``gaia/configs/training/``), on synthetic inputs of the shapes the
loaders give (speed does not depend on what the pixels or latents hold):

- the training step's rate (steps/s, samples/s) in bf16: the tasks' own ``torch.autocast``
  (``gaia.training.loop.autocast``: bf16 on CUDA, float32 on CPU), the optimizers included;
  the VAE step is the full one past ``disc_start`` (generator, adaptive GAN weight and
  discriminator), without LPIPS (its weights are not on the machine);
- peak GPU memory over the timed steps (``torch.cuda.max_memory_allocated``);
- model FLOPs utilisation: the FLOPs of one step counted by
  ``torch.utils.flop_counter.FlopCounterMode`` (matmuls and convolutions, forward and
  backward), times steps/s, over the H200's dense bf16 peak;

and encode-latents on the GPU: frames/s of the VAE's motion encoder in batch inference
(``LoadedVae.motion_latents``: landmarks rendered, then the encoder's posterior mean), in
float32 as ``gaia encode-latents`` runs it and under bf16 autocast.

``--smoke`` runs the same code on CPU in seconds (vae-tiny and s2m-tiny, tiny batches, two
steps) so the script is checked where no GPU is. Prints a JSON summary last (also to
``--json-out``).

    python benchmarks/gpu_check.py [--smoke] [--steps 20] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

# NVIDIA H200 SXM, dense BF16 tensor-core peak (the datasheet's 1,979 TFLOP/s is with 2:4
# sparsity): https://www.nvidia.com/en-us/data-center/h200/ (H200 datasheet, "BF16 Tensor Core").
H200_BF16_DENSE_FLOPS = 989e12


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _count_flops(step) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return int(counter.get_total_flops())


def _rate(step, steps: int, device, budget_s: float) -> tuple[float, int, float]:
    """(steps per second, steps timed, peak memory GB) after two warm-up steps."""
    import torch

    step()
    step()
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    done, started = 0, time.perf_counter()
    while done < steps and (done == 0 or time.perf_counter() - started < budget_s):
        step()
        done += 1
    _sync(device)
    elapsed = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else 0.0
    return done / elapsed, done, peak


def _landmarks(batch: int, size: int, generator):
    """Plausible points: a face's 68 landmarks spread over the middle of the image."""
    import torch

    return (0.25 + 0.5 * torch.rand(batch, 68, 2, generator=generator)) * size


def check_vae(name: str, batch: int, steps: int, world, budget_s: float) -> dict:
    """Training step figures of one VAE config on synthetic frame pairs."""
    import torch

    from gaia.training.vae.config import load_vae_config
    from gaia.training.vae.task import VaeTask

    config = load_vae_config(name, perceptual="none")
    size, generator = config.image_size, torch.Generator().manual_seed(0)
    data = {"appearance": torch.rand(batch, 3, size, size, generator=generator) * 2 - 1,
            "target": torch.rand(batch, 3, size, size, generator=generator) * 2 - 1,
            "appearance_landmarks": _landmarks(batch, size, generator),
            "target_landmarks": _landmarks(batch, size, generator)}
    data = {k: v.to(world.device) for k, v in data.items()}
    task = VaeTask(config, None, world)
    counter = iter(range(config.disc_start, 1 << 30))  # past disc_start: the full step
    step = lambda: task.train_step([data], next(counter))  # noqa: E731
    flops = _count_flops(step)
    rate, timed, peak = _rate(step, steps, world.device, budget_s)
    return _figures(name, batch, flops, rate, timed, peak, world.device, task.model)


def check_s2m(name: str, batch: int, steps: int, world, latent_shape, speech_dim: int,
              budget_s: float) -> dict:
    """Training step figures of one speech-to-motion config on synthetic windows."""
    import torch

    from gaia.training.data.latent_stats import LatentStats
    from gaia.training.s2m.config import load_s2m_config
    from gaia.training.s2m.task import S2mTask

    config = load_s2m_config(name)
    dim, frames = int(torch.tensor(latent_shape).prod()), config.window_max
    stats = LatentStats.from_state({
        "motion_mean": [0.0] * dim, "motion_std": [1.0] * dim, "pose_mean": [0.0] * 3,
        "pose_std": [1.0] * 3, "speech_mean": [0.0] * speech_dim,
        "speech_std": [1.0] * speech_dim, "latent_shape": list(latent_shape), "vae": {},
        "speech_features": {}})
    generator = torch.Generator().manual_seed(0)
    data = {"motion": torch.randn(batch, frames, dim, generator=generator),
            "speech": torch.randn(batch, 2 * frames, speech_dim, generator=generator),
            "pose": torch.randn(batch, frames, 3, generator=generator),
            "reference": torch.randn(batch, dim, generator=generator),
            "mask": torch.ones(batch, frames, dtype=torch.bool)}
    data = {k: v.to(world.device) for k, v in data.items()}
    task = S2mTask(config, stats, world)
    step = lambda: task.train_step([data], 1)  # noqa: E731
    flops = _count_flops(step)
    rate, timed, peak = _rate(step, steps, world.device, budget_s)
    figures = _figures(name, batch, flops, rate, timed, peak, world.device, task.model)
    figures.update(window_frames=frames, latent_dim=dim, speech_dim=speech_dim)
    return figures


def _figures(name, batch, flops, rate, timed, peak, device, model) -> dict:
    achieved = flops * rate
    figures = {"config": name, "batch": batch, "steps_timed": timed, "steps_per_s": rate,
               "samples_per_s": rate * batch, "flops_per_step": flops,
               "achieved_tflops": achieved / 1e12, "peak_memory_gb": peak,
               "parameters_m": sum(p.numel() for p in model.parameters()) / 1e6}
    if device.type == "cuda":
        figures["mfu"] = achieved / H200_BF16_DENSE_FLOPS
    print(f"  {name}: batch {batch}, {rate:.2f} steps/s ({rate * batch:.1f} samples/s), "
          f"{flops / 1e12:.3f} TFLOP per step, {achieved / 1e12:.1f} TFLOP/s"
          + (f", MFU {figures['mfu']:.1%}" if "mfu" in figures else "")
          + f", peak memory {peak:.2f} GB", flush=True)
    return figures


def check_encode(name: str, batch: int, world, budget_s: float) -> dict:
    """Frames/s of the motion encoder in batch inference (float32, and bf16 autocast)."""
    import torch

    from gaia.inference.vae import LoadedVae
    from gaia.training.vae.config import load_vae_config
    from gaia.training.vae.model import TwoEncoderVAE

    config = load_vae_config(name, perceptual="none")
    model = TwoEncoderVAE(config).to(world.device).eval()
    vae = LoadedVae(model, config, Path("synthetic"), 0, world.device)
    points = _landmarks(batch, config.image_size, torch.Generator().manual_seed(0))
    figures = {"config": name, "batch_frames": batch}
    cuda = world.device.type == "cuda"
    for precision in ("float32", "bf16") if cuda else ("float32",):
        def encode(precision=precision):
            if precision == "bf16":
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    return vae.motion_latents(points)
            return vae.motion_latents(points)
        with torch.no_grad():
            rate, _, peak = _rate(encode, 50, world.device, budget_s)
        figures[f"{precision}_frames_per_s"] = rate * batch
        figures[f"{precision}_peak_memory_gb"] = peak
        print(f"  encode-latents ({name} motion encoder, {precision}): {rate * batch:.0f} "
              f"frames/s, batch {batch}", flush=True)
    return figures


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny configs on CPU, seconds")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per model")
    parser.add_argument("--vae-batch", type=int, default=16)
    parser.add_argument("--s2m-batch", type=int, default=32)
    parser.add_argument("--encode-batch", type=int, default=256)
    parser.add_argument("--budget-s", type=float, default=60.0,
                        help="at most this long timing one model (at least one step)")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)

    import torch

    from gaia.training.distributed import init_world

    started = time.perf_counter()
    if args.smoke:
        world = init_world("cpu")
        vae_name, s2m_name, steps = "vae-tiny", "s2m-tiny", 2
        vae_batch, s2m_batch, encode_batch = 2, 2, 8
    else:
        if not torch.cuda.is_available():
            raise SystemExit("gpu_check: no CUDA device (use --smoke to check it on CPU)")
        world = init_world("cuda")
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
        vae_name, s2m_name, steps = "vae-small", "s2m-small", args.steps
        vae_batch, s2m_batch, encode_batch = args.vae_batch, args.s2m_batch, args.encode_batch
    device = world.device
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"gpu_check on {name} (torch {torch.__version__}), smoke={args.smoke}", flush=True)
    torch.manual_seed(0)
    summary: dict = {"device": name, "torch": torch.__version__, "smoke": args.smoke,
                     "peak_bf16_dense_flops": H200_BF16_DENSE_FLOPS}
    summary["vae"] = check_vae(vae_name, vae_batch, steps, world, args.budget_s)
    # The motion latent's shape is the VAE's: s2m-small learns vae-small's latents.
    with torch.no_grad():
        from gaia.training.vae.config import load_vae_config
        from gaia.training.vae.model import TwoEncoderVAE

        vae_config = load_vae_config(vae_name, perceptual="none")
        size = vae_config.image_size
        probe = TwoEncoderVAE(vae_config).encode_motion(
            torch.zeros(1, vae_config.landmark_channels, size, size)).mode()
    speech_dim = 80 if args.smoke else 768  # log-mel; wav2vec 2.0 base's hidden size
    summary["s2m"] = check_s2m(s2m_name, s2m_batch, steps, world, tuple(probe.shape[1:]),
                               speech_dim, args.budget_s)
    summary["encode_latents"] = check_encode(vae_name, encode_batch, world, args.budget_s)
    summary["wall_s"] = time.perf_counter() - started
    text = json.dumps(summary, indent=1)
    print(text)
    if args.json_out:
        args.json_out.write_text(text + "\n")
    return summary


if __name__ == "__main__":
    main()
