"""One VAE training step on a fixed global batch, run alone or under torchrun (not a test file:
``test_train_vae.py`` launches it). Rank 0 saves the updated weights to argv[1].

Each rank takes its share of the same 4-pair global batch. Posterior sampling is replaced by
the posterior mean here, so that the only difference between 1 and 2 processes is DDP's
gradient averaging, which is what the test checks.
"""

import sys

import torch

from gaia.training.distributed import barrier, close_world, init_world
from gaia.training.vae.config import load_vae_config
from gaia.training.vae.model import DiagonalGaussian
from gaia.training.vae.task import VaeTask, unwrap

DiagonalGaussian.sample = lambda self, generator=None: self.mode()


def main(out: str) -> None:
    world = init_world("cpu")
    torch.manual_seed(0)
    config = load_vae_config("vae-tiny", perceptual="none", lr=1e-3, image_size=32)
    task = VaeTask(config, None, world)
    data = torch.Generator().manual_seed(1)
    size = config.image_size
    batch = {
        "appearance": torch.rand(4, 3, size, size, generator=data) * 2 - 1,
        "target": torch.rand(4, 3, size, size, generator=data) * 2 - 1,
        "target_landmarks": torch.rand(4, 68, 2, generator=data) * size,
        "key": [f"k{i}" for i in range(4)],
    }
    share = 4 // world.size
    mine = {k: v[world.rank * share:(world.rank + 1) * share] for k, v in batch.items()}
    task.train_step([mine], step=0)
    if world.is_main:
        torch.save(unwrap(task.model).state_dict(), out)
    # Every rank done before any tears gloo down: a rank leaving while the other still
    # writes can abort it (SIGABRT seen once under load).
    barrier(world)
    close_world(world)


if __name__ == "__main__":
    main(sys.argv[1])
