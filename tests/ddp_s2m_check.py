"""One s2m training step on a fixed global batch, alone or under torchrun (not a test
file: ``test_train_s2m.py`` launches it). Rank 0 saves the step's gradients (averaged
over ranks by DDP, then clipped) to argv[1]. Gradients, not updated weights, are
compared: Adam's first step moves every weight by about the learning rate times the sign of
its gradient, so float rounding on near-zero gradients would flip whole steps.

Each rank takes its share of the same 4-window global batch, and the times and noise of each
window are fixed by the window, not drawn by the rank, so that the only difference between 1
and 2 processes is DDP's gradient averaging. Windows are all full length (no padding), so each
rank's masked mean weighs its windows as the single process does.
"""

import sys

import torch

from gaia.training.data.latent_stats import LatentStats
from gaia.training.distributed import barrier, close_world, init_world
from gaia.training.s2m.config import load_s2m_config
from gaia.training.s2m.task import S2mTask

D, F, T = 16, 12, 10


def main(out: str) -> None:
    world = init_world("cpu")
    torch.manual_seed(0)
    stats = LatentStats.from_state({
        "motion_mean": [0.0] * D, "motion_std": [1.0] * D, "pose_mean": [0.0] * 3,
        "pose_std": [10.0] * 3, "speech_mean": [0.0] * F, "speech_std": [1.0] * F,
        "latent_shape": [1, 4, 4]})
    task = S2mTask(load_s2m_config("s2m-tiny", lr=1e-3, warmup_steps=1), stats, world)
    data = torch.Generator().manual_seed(1)
    batch = {"motion": torch.randn(4, T, D, generator=data),
             "speech": torch.randn(4, 2 * T, F, generator=data),
             "pose": torch.randn(4, T, 3, generator=data) * 10,
             "reference": torch.randn(4, D, generator=data),
             "mask": torch.ones(4, T, dtype=torch.bool)}
    times = torch.rand(4, generator=data) * 0.9 + 0.05
    noise = torch.randn(4, T, D, generator=data)
    share = 4 // world.size
    mine = slice(world.rank * share, (world.rank + 1) * share)
    task.draw = lambda x0: (times[mine], noise[mine])
    task.train_step([{k: v[mine] for k, v in batch.items()}], step=0)
    if world.is_main:
        torch.save({f"grad.{name}": p.grad for name, p in task.network.named_parameters()},
                   out)
    # Every rank done before any tears gloo down: a rank leaving while the other still
    # writes can abort it (SIGABRT seen once under load).
    barrier(world)
    close_world(world)


if __name__ == "__main__":
    main(sys.argv[1])
