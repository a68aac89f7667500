"""The speech-to-motion ablation switches (paper, tables 6 and 9; ``S2mConfig``): each builds
the model it names, keeps masking exact, and trains; bad values are refused by key.

Quick CPU tests on random s2m-tiny models; s2m-small is only counted (meta device).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gaia.training.data.latent_stats import LatentStats
from gaia.training.distributed import init_world
from gaia.training.s2m.config import S2mConfig, load_s2m_config
from gaia.training.s2m.model import ConvModule, CrossAttention, SpeechToMotion, count_parameters
from gaia.training.s2m.task import S2mTask
from gaia.training.s2m.vp_sde import x0_loss

LATENT, SPEECH = 16, 12
ABLATIONS = {
    "default": {},
    "no_pose": {"use_pose": False},
    "no_diffusion": {"diffusion": False},
    "transformer": {"backbone": "transformer"},
    "speech_attention": {"speech_condition": "attention"},
    "reference_add": {"reference_condition": "add"},
    "all": {"use_pose": False, "diffusion": False, "backbone": "transformer",
            "speech_condition": "attention", "reference_condition": "add"},
}


def tiny_model(seed: int = 0, **overrides) -> SpeechToMotion:
    torch.manual_seed(seed)
    return SpeechToMotion(load_s2m_config("s2m-tiny", **overrides), LATENT, SPEECH).eval()


def inputs(batch: int, frames: int, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"x_t": torch.randn(batch, frames, LATENT, generator=g),
            "t": 1e-3 + (1 - 1e-3) * torch.rand(batch, generator=g),
            "speech": torch.randn(batch, 2 * frames, SPEECH, generator=g),
            "reference": torch.randn(batch, LATENT, generator=g),
            "pose": torch.randn(batch, frames, 3, generator=g)}


def lengths_mask(lengths: list[int], frames: int) -> torch.Tensor:
    return torch.arange(frames)[None, :] < torch.tensor(lengths)[:, None]


def other(x: torch.Tensor, seed: int = 7) -> torch.Tensor:
    return torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))


def names(model: nn.Module) -> list[str]:
    return [name for name, _ in model.named_parameters()]


def block_modules(model: SpeechToMotion, kind: type) -> list[nn.Module]:
    return [m for m in model.blocks.modules() if isinstance(m, kind)]


# ------------------------------------------------------------------------- defaults unchanged


def test_defaults_are_the_papers_model():
    config = S2mConfig()
    assert (config.use_pose, config.diffusion, config.backbone, config.speech_condition,
            config.reference_condition) == (True, True, "conformer", "add", "attention")
    model = tiny_model()
    parts = {name.split(".")[0] for name in names(model)}
    assert {"input_proj", "time_embed", "pose_embed"} <= parts
    block = names(model.blocks[0])
    assert not [n for n in block if n.startswith(("speech_attn", "reference_proj", "ff."))]
    assert len(block_modules(model, ConvModule)) == len(model.blocks)
    assert len(block_modules(model, CrossAttention)) == len(model.blocks)


# ------------------------------------------------------------------------------------ use_pose


def test_without_pose_there_is_no_pose_condition():
    plain, no_pose = tiny_model(), tiny_model(use_pose=False)
    assert no_pose.pose_embed is None
    assert not [n for n in names(no_pose) if n.startswith("pose_embed")]
    assert [n for n in names(plain) if n.startswith("pose_embed")]
    assert no_pose.pose_predictor is not None  # the pose predictor is still there
    x = inputs(2, 9)
    changed = {**x, "pose": other(x["pose"])}
    with torch.no_grad():
        base = no_pose(**x)
        torch.testing.assert_close(no_pose(**changed), base, atol=0, rtol=0)
        torch.testing.assert_close(no_pose(**{**x, "pose": None}), base, atol=0, rtol=0)
        assert (plain(**x) - plain(**changed)).abs().mean() > 1e-2


# ----------------------------------------------------------------------------------- diffusion


def test_without_diffusion_the_model_regresses_from_the_conditions():
    model = tiny_model(diffusion=False)
    assert model.input_proj is None and model.time_embed is None
    assert not [n for n in names(model) if n.split(".")[0] in ("input_proj", "time_embed")
                or ".time_proj." in n]
    x = inputs(2, 9)
    mask = lengths_mask([9, 6], 9)
    with torch.no_grad():
        regressed = model.regress(x["speech"], x["reference"], x["pose"], mask)
        assert regressed.shape == (2, 9, LATENT) and torch.isfinite(regressed).all()
        # x_t and t do not enter: forward gives the regression whatever they are.
        for seed in (2, 3):
            noisy = {**inputs(2, 9, seed=seed), **{k: x[k] for k in ("speech", "reference",
                                                                     "pose")}}
            torch.testing.assert_close(model(**noisy, mask=mask), regressed, atol=0, rtol=0)
        for which in ("speech", "reference", "pose"):
            changed = {k: x[k] for k in ("speech", "reference", "pose")}
            changed[which] = other(x[which])
            assert (model.regress(**changed, mask=mask) - regressed).abs().mean() > 1e-2, which
    with pytest.raises(ValueError, match="diffusion=False"):
        tiny_model().regress(x["speech"], x["reference"], x["pose"])
    with pytest.raises(ValueError, match="two rows per frame"):
        model.regress(x["speech"][:, :9], x["reference"], x["pose"])
    with pytest.raises(ValueError, match="pose must have shape"):
        model.regress(x["speech"], x["reference"], x["pose"][:, :4])


def synthetic_batch(frames: int = 10, batch: int = 4) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {"motion": torch.randn(batch, frames, LATENT, generator=g),
            "speech": torch.randn(batch, 2 * frames, SPEECH, generator=g),
            "pose": torch.randn(batch, frames, 3, generator=g) * 10,
            "reference": torch.randn(batch, LATENT, generator=g),
            "mask": lengths_mask([frames, frames, frames - 3, frames - 5], frames)}


def tiny_task(**overrides) -> S2mTask:
    torch.manual_seed(0)
    stats = LatentStats.from_state({
        "motion_mean": [0.0] * LATENT, "motion_std": [1.0] * LATENT, "pose_mean": [0.0] * 3,
        "pose_std": [10.0] * 3, "speech_mean": [0.0] * SPEECH, "speech_std": [1.0] * SPEECH,
        "latent_shape": [1, 4, 4]})
    config = load_s2m_config("s2m-tiny", lr=3e-3, warmup_steps=1, **overrides)
    return S2mTask(config, stats, init_world("cpu"))


def test_training_without_diffusion_is_the_masked_mse_of_the_regression():
    task = tiny_task(diffusion=False)
    batch = synthetic_batch()
    inputs_ = task.inputs(batch)
    noise_state = task.noise.get_state()
    task.model.eval()
    with torch.no_grad():
        _, parts = task.losses(task.model, inputs_)
        regressed = task.network.regress(inputs_["speech"], inputs_["reference"],
                                         inputs_["pose"], inputs_["mask"])
    # No noising: the loss is the regression's masked MSE, and no times or noise are drawn.
    torch.testing.assert_close(parts["x0_mse"], x0_loss(regressed, inputs_["x0"],
                                                         inputs_["mask"]))
    assert torch.equal(task.noise.get_state(), noise_state)
    losses = [task.train_step([batch], step)["loss"] for step in range(8)]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.8 * losses[0], losses
    grid = task.image_grid(batch)  # the EMA model's regression, no sampling needed
    assert grid.shape[0] == 3 and torch.isfinite(grid).all()


# ------------------------------------------------------------------------------------ backbone


def test_transformer_blocks_have_no_convolution_and_fewer_parameters():
    model = tiny_model(backbone="transformer")
    assert not block_modules(model, ConvModule)
    assert not block_modules(model, nn.Conv1d)
    block = names(model.blocks[0])
    assert not [n for n in block if n.startswith(("ff1.", "ff2.", "conv.", "norm."))]
    assert [n for n in block if n.startswith("ff.")]
    assert len(block_modules(model, CrossAttention)) == len(model.blocks)
    transformer = count_parameters(load_s2m_config("s2m-small", backbone="transformer"))
    conformer = count_parameters(load_s2m_config("s2m-small"))
    assert transformer["blocks"] < conformer["blocks"]
    assert transformer["total"] < conformer["total"]
    x = inputs(2, 7)
    with torch.no_grad():
        assert (model(**x) - tiny_model()(**x)).abs().mean() > 1e-2


# ------------------------------------------------------------------------------ the conditions


def test_speech_by_attention_reaches_distant_frames():
    model = tiny_model(speech_condition="attention", num_layers=1)
    block = model.blocks[0]
    assert block.cond_proj is None and isinstance(block.speech_attn, CrossAttention)
    assert not [n for n in names(model) if ".cond_proj." in n]
    captured = []
    handle = block.speech_attn.register_forward_hook(lambda m, a, out: captured.append(out))
    frames = 16
    x = inputs(1, frames)
    far = dict(x)
    far["speech"] = x["speech"].clone()
    far["speech"][:, -4:] = other(far["speech"][:, -4:])  # the last two frames' speech only
    with torch.no_grad():
        near_out, far_out = model(**x), model(**far)
    handle.remove()
    # The speech encoder sees a few frames either side, and in this one block nothing before
    # the speech attention sees speech: frame 0 gets the last frames' speech by attention.
    assert (captured[0][0, 0] - captured[1][0, 0]).abs().max() > 1e-4
    assert (near_out[0, 0] - far_out[0, 0]).abs().max() > 1e-4


def test_reference_by_addition_has_no_reference_attention():
    model = tiny_model(reference_condition="add")
    assert not block_modules(model, CrossAttention)
    assert all(block.cross_attn is None and block.reference_proj is not None
               for block in model.blocks)
    x = inputs(2, 9)
    with torch.no_grad():
        difference = (model(**x) - model(**{**x, "reference": other(x["reference"])}))
    assert (difference.abs().mean(dim=(1, 2)) > 1e-2).all()


@pytest.mark.parametrize("which", ["speech", "reference", "pose", "t"])
def test_every_condition_still_matters_with_both_conditions_swapped(which):
    model = tiny_model(speech_condition="attention", reference_condition="add")
    x = inputs(2, 9)
    changed = {**x, which: torch.tensor([0.9, 0.05]) if which == "t" else other(x[which])}
    if which == "t":
        x["t"] = torch.tensor([0.2, 0.6])
    with torch.no_grad():
        difference = (model(**x) - model(**changed)).abs().mean(dim=(1, 2))
    assert (difference > 1e-2).all(), difference


# ---------------------------------------------------------------------- every switch: masking


@pytest.mark.parametrize("ablation", sorted(ABLATIONS))
def test_padded_frames_do_not_change_valid_outputs(ablation):
    model = tiny_model(**ABLATIONS[ablation])
    frames = 9
    x = inputs(2, frames)
    mask = lengths_mask([9, 5], frames)
    g = torch.Generator().manual_seed(11)
    garbage = dict(x)
    for key, start in (("x_t", 5), ("pose", 5), ("speech", 10)):
        garbage[key] = x[key].clone()
        garbage[key][1, start:] = 100 * torch.randn(garbage[key][1, start:].shape, generator=g)
    with torch.no_grad():
        clean, dirty = model(**x, mask=mask), model(**garbage, mask=mask)
        unmasked = model(**garbage)
    if ablation != "all":  # there a frame's own inputs are only keys, masked when padded
        assert not torch.allclose(clean[1, 5:], dirty[1, 5:])  # garbage reached padded frames
    torch.testing.assert_close(dirty[mask], clean[mask], atol=1e-5, rtol=0)
    assert (unmasked[1, :5] - clean[1, :5]).abs().max() > 1e-3  # the mask is doing the work


@pytest.mark.parametrize("ablation", sorted(ABLATIONS))
def test_padded_batch_matches_each_clip_alone(ablation):
    model = tiny_model(**ABLATIONS[ablation])
    long, short = inputs(1, 11, seed=2), inputs(1, 6, seed=3)
    g = torch.Generator().manual_seed(5)
    batch = {"t": torch.cat([long["t"], short["t"]]),
             "reference": torch.cat([long["reference"], short["reference"]])}
    for key, rows in (("x_t", 5), ("pose", 5), ("speech", 10)):
        filler = torch.randn((1, rows) + short[key].shape[2:], generator=g)
        batch[key] = torch.cat([long[key], torch.cat([short[key], filler], dim=1)])
    mask = lengths_mask([11, 6], 11)
    with torch.no_grad():
        together = model(**batch, mask=mask)
        for row, clip in ((0, long), (1, short)):
            n = clip["x_t"].shape[1]
            torch.testing.assert_close(together[row, :n], model(**clip)[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("ablation", sorted(ABLATIONS))
def test_gradient_reaches_every_parameter(ablation):
    # DDP needs every parameter used; checkpointing must give the same gradients.
    plain = tiny_model(**ABLATIONS[ablation]).train()
    checkpointed = tiny_model(**ABLATIONS[ablation], gradient_checkpointing=True).train()
    x = inputs(2, 7)
    mask = lengths_mask([7, 4], 7)
    for model in (plain, checkpointed):
        loss = (model(**x, mask=mask) ** 2).mean() + model.predict_pose(
            x["speech"], x["reference"], mask).sum()
        loss.backward()
    missing = [name for name, p in plain.named_parameters()
               if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing
    for (name, a), b in zip(plain.named_parameters(), checkpointed.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, msg=name)


@pytest.mark.parametrize("ablation", ["no_diffusion", "speech_attention", "all"])
def test_runs_under_bfloat16_autocast(ablation):
    model = tiny_model(**ABLATIONS[ablation])
    x = inputs(2, 5)
    mask = lengths_mask([5, 3], 5)
    with torch.no_grad():
        full = model(**x, mask=mask)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = model(**x, mask=mask)
    assert torch.isfinite(half.float()).all()
    assert (half.float() - full).abs().mean() < 0.1 * full.abs().mean()


@pytest.mark.parametrize("ablation", ["transformer", "speech_attention", "all"])
def test_a_task_step_lowers_the_loss(ablation):
    task = tiny_task(**ABLATIONS[ablation])
    batch = synthetic_batch()
    losses = [task.train_step([batch], step)["x0_mse"] for step in range(8)]
    assert losses[-1] < losses[0], losses


# ------------------------------------------------------------------------------------- configs


@pytest.mark.parametrize(("key", "value", "allowed"), [
    ("backbone", "lstm", "'conformer', 'transformer'"),
    ("speech_condition", "concat", "'add', 'attention'"),
    ("reference_condition", "Add", "'attention', 'add'"),
])
def test_bad_switch_values_name_the_key_and_the_choices(key, value, allowed):
    with pytest.raises(ValueError, match=f"{key} must be one of {allowed}, not '{value}'"):
        S2mConfig(**{key: value})
    with pytest.raises(ValueError, match=f"{key} must be one of {allowed}"):
        load_s2m_config("s2m-tiny", **{key: value})


@pytest.mark.parametrize("key", ["use_pose", "diffusion"])
def test_flags_must_be_booleans(key):
    with pytest.raises(ValueError, match=f"{key} must be true or false"):
        S2mConfig(**{key: 1})
    with pytest.raises(ValueError, match=f"s2m config {key} must be true or false"):
        load_s2m_config("s2m-tiny", **{key: "no"})
    assert getattr(load_s2m_config("s2m-tiny", **{key: False}), key) is False
