"""Settings read from a file cannot make a model of any size (issue 25): a checkpoint whose
config asks for a wider VAE than its tensors is refused after a meta-device build, before any
allocation, with the first difference named."""

from __future__ import annotations

import resource

import pytest
import torch

from gaia.training.meta_build import build_matching


def test_a_checkpoint_whose_config_lies_about_its_size_is_refused(tmp_path):
    from gaia.inference.vae import LoadedVae
    from gaia.training.checkpoint import save_checkpoint
    from gaia.training.vae.build import build_vae
    from gaia.training.vae.config import load_vae_config

    config = load_vae_config("vae-tiny", perceptual="none")
    model = build_vae(config)
    lying = dict(config.to_dict(), channels=4096, image_size=1024)  # ~100 GB if built
    path = save_checkpoint(tmp_path, 0, {"task": {"model": model.state_dict(),
                                                 "config": lying}})
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ValueError, match="its settings make .* its weights hold"):
        LoadedVae.load(path, device="cpu")
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 300, f"peak memory grew {grown_mb:.0f} MB"
    honest = save_checkpoint(tmp_path / "ok", 0, {"task": {"model": model.state_dict(),
                                                          "config": config.to_dict()}})
    assert LoadedVae.load(honest, device="cpu").config.channels == config.channels


def test_build_matching_names_missing_and_extra_keys():
    state = torch.nn.Linear(3, 2).state_dict()
    with pytest.raises(ValueError, match="missing .*unexpected"):
        build_matching(lambda: torch.nn.Conv1d(3, 2, 1), {"other": state["weight"]}, "w.pt")
    built = build_matching(lambda: torch.nn.Linear(3, 2), state, "w.pt")
    assert built.weight.shape == (2, 3) and built.weight.device.type == "cpu"
