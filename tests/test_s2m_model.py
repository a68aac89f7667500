"""The speech-to-motion Conformer and its configs (paper, section 4.2 and appendix B.1).

Quick CPU tests on a random s2m-tiny model; the paper's sizes are only counted (meta device).
"""

from __future__ import annotations

import pytest
import torch

from gaia.training.s2m.config import (
    S2mConfig,
    available_s2m_configs,
    build_s2m_config,
    load_s2m_config,
)
from gaia.training.s2m.model import SpeechToMotion, count_parameters
from gaia.training.s2m.vp_sde import VPSchedule

LATENT, SPEECH = 16, 12
PAPER_PARAMETERS = {"s2m-small": 180e6, "s2m-base": 600e6, "s2m-large": 1.2e9}
# The totals and block counts in s2m_config's docstring table.
DOCSTRING_TOTALS = {"s2m-small": 55.6e6, "s2m-base": 608.1e6, "s2m-large": 1544.3e6}
DOCSTRING_BLOCKS = {"s2m-small": 45.8e6, "s2m-base": 571.0e6, "s2m-large": 1460.9e6}


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


# ----------------------------------------------------------------------------- shapes, conditions


@pytest.mark.parametrize("frames", [1, 7])
def test_shapes_for_odd_lengths_with_a_mask(frames):
    model = tiny_model()
    x = inputs(2, frames)
    mask = lengths_mask([frames, max(1, frames - 3)], frames)
    with torch.no_grad():
        x0 = model(**x, mask=mask)
        pose = model.predict_pose(x["speech"], x["reference"], mask)
    assert x0.shape == (2, frames, LATENT) and pose.shape == (2, frames, 3)
    assert torch.isfinite(x0).all() and torch.isfinite(pose).all()


def test_wrong_shapes_are_rejected_with_the_expected_shape():
    model = tiny_model()
    x = inputs(2, 5)
    with pytest.raises(ValueError, match="speech must have shape"):
        model(**{**x, "speech": x["speech"][:, :9]})
    with pytest.raises(ValueError, match="pose must have shape"):
        model(**{**x, "pose": x["pose"][:, :4]})
    with pytest.raises(ValueError, match="mask must have shape"):
        model(**x, mask=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="two rows per frame"):
        model.predict_pose(x["speech"][:, :9], x["reference"])


@pytest.mark.parametrize("which", ["speech", "reference", "pose", "t"])
def test_each_condition_changes_the_prediction(which):
    model = tiny_model()
    x = inputs(2, 9)
    changed = dict(x)
    if which == "t":
        changed["t"] = torch.tensor([0.9, 0.05])
        x["t"] = torch.tensor([0.2, 0.6])
    else:
        changed[which] = torch.randn(x[which].shape, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        difference = (model(**x) - model(**changed)).abs().mean(dim=(1, 2))
    assert (difference > 1e-2).all(), difference


def test_pose_predictor_depends_on_speech_and_reference():
    model = tiny_model()
    x = inputs(1, 8)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        base = model.predict_pose(x["speech"], x["reference"])
        other_speech = model.predict_pose(torch.randn(x["speech"].shape, generator=g),
                                          x["reference"])
        other_reference = model.predict_pose(x["speech"],
                                             torch.randn(x["reference"].shape, generator=g))
    assert (base - other_speech).abs().mean() > 1e-2
    assert (base - other_reference).abs().mean() > 1e-2


# --------------------------------------------------------------------------------------- masking


def test_padded_frames_do_not_change_valid_outputs():
    model = tiny_model()
    frames, lengths = 9, [9, 5]
    x = inputs(2, frames)
    mask = lengths_mask(lengths, frames)
    g = torch.Generator().manual_seed(11)
    garbage = dict(x)
    for key in ("x_t", "pose"):
        garbage[key] = x[key].clone()
        garbage[key][1, 5:] = 100 * torch.randn(garbage[key][1, 5:].shape, generator=g)
    garbage["speech"] = x["speech"].clone()
    garbage["speech"][1, 10:] = 100 * torch.randn(garbage["speech"][1, 10:].shape, generator=g)
    with torch.no_grad():
        clean, dirty = model(**x, mask=mask), model(**garbage, mask=mask)
        pose_clean = model.predict_pose(x["speech"], x["reference"], mask)
        pose_dirty = model.predict_pose(garbage["speech"], garbage["reference"], mask)
    assert not torch.allclose(clean[1, 5:], dirty[1, 5:])  # the garbage did reach padded frames
    torch.testing.assert_close(dirty[mask], clean[mask], atol=1e-5, rtol=0)
    torch.testing.assert_close(pose_dirty[mask], pose_clean[mask], atol=1e-5, rtol=0)
    # Without the mask, the same garbage does change valid frames: the mask is doing the work.
    with torch.no_grad():
        unmasked = model(**garbage)
    assert (unmasked[1, :5] - clean[1, :5]).abs().max() > 1e-3


def test_padded_batch_matches_each_clip_alone():
    model = tiny_model()
    long, short = inputs(1, 11, seed=2), inputs(1, 6, seed=3)
    pad = 11 - 6
    g = torch.Generator().manual_seed(5)
    batch = {"t": torch.cat([long["t"], short["t"]]),
             "reference": torch.cat([long["reference"], short["reference"]])}
    for key, rows in (("x_t", pad), ("pose", pad), ("speech", 2 * pad)):
        filler = torch.randn((1, rows) + short[key].shape[2:], generator=g)
        batch[key] = torch.cat([long[key], torch.cat([short[key], filler], dim=1)])
    mask = lengths_mask([11, 6], 11)
    with torch.no_grad():
        together = model(**batch, mask=mask)
        pose_together = model.predict_pose(batch["speech"], batch["reference"], mask)
        for row, clip in ((0, long), (1, short)):
            n = clip["x_t"].shape[1]
            torch.testing.assert_close(together[row, :n], model(**clip)[0], atol=1e-5, rtol=0)
            alone = model.predict_pose(clip["speech"], clip["reference"])[0]
            torch.testing.assert_close(pose_together[row, :n], alone, atol=1e-5, rtol=0)


def test_a_clip_with_no_valid_frame_gives_finite_outputs():
    model = tiny_model()
    x = inputs(2, 4)
    mask = lengths_mask([4, 0], 4)
    with torch.no_grad():
        assert torch.isfinite(model(**x, mask=mask)).all()


# ------------------------------------------------------------------------------------- gradients


def test_gradient_reaches_every_parameter():
    model = tiny_model().train()
    x = inputs(2, 7)
    mask = lengths_mask([7, 4], 7)
    loss = model(**x, mask=mask).sum() + model.predict_pose(x["speech"], x["reference"],
                                                            mask).sum()
    loss.backward()
    missing = [name for name, p in model.named_parameters()
               if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing


def test_pose_predictor_shares_nothing_with_the_backbone():
    model = tiny_model()
    pose_ids = {id(p) for p in model.pose_predictor.parameters()}
    backbone = [p for name, p in model.named_parameters() if not name.startswith("pose_predictor")]
    assert pose_ids and not pose_ids & {id(p) for p in backbone}
    model(**inputs(1, 5)).sum().backward()
    assert all(p.grad is None for p in model.pose_predictor.parameters())
    assert all(p.grad is not None for p in backbone)


def test_gradient_checkpointing_gives_the_same_loss_and_gradients():
    plain = tiny_model().train()
    checkpointed = tiny_model(gradient_checkpointing=True).train()
    checkpointed.load_state_dict(plain.state_dict())
    x = inputs(2, 6)
    mask = lengths_mask([6, 3], 6)
    losses = []
    for model in (plain, checkpointed):
        loss = (model(**x, mask=mask) ** 2).mean()
        loss.backward()
        losses.append(loss.detach())
    torch.testing.assert_close(losses[0], losses[1])
    for (name, a), b in zip(plain.named_parameters(), checkpointed.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, msg=name)


def test_runs_under_bfloat16_autocast():
    model = tiny_model()
    x = inputs(2, 5)
    mask = lengths_mask([5, 3], 5)
    with torch.no_grad():
        full = model(**x, mask=mask)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = model(**x, mask=mask)
            pose = model.predict_pose(x["speech"], x["reference"], mask)
    assert torch.isfinite(half.float()).all() and torch.isfinite(pose.float()).all()
    assert (half.float() - full).abs().mean() < 0.1 * full.abs().mean()


# ------------------------------------------------------------------------------ configs and sizes


def test_presets_load_with_the_paper_sizes():
    assert {"s2m-tiny", "s2m-small", "s2m-base", "s2m-large"} <= set(available_s2m_configs())
    sizes = {name: (c.d_model, c.num_layers, c.num_heads) for name in
             ("s2m-small", "s2m-base", "s2m-large") for c in [load_s2m_config(name)]}
    assert sizes == {"s2m-small": (512, 6, 8), "s2m-base": (1280, 12, 16),
                     "s2m-large": (2048, 12, 16)}
    tiny = load_s2m_config("s2m-tiny")
    assert (tiny.name, tiny.d_model, tiny.window_min, tiny.window_max) == ("s2m-tiny", 64, 25, 50)
    assert build_s2m_config(tiny.to_dict()) == tiny
    assert tiny.schedule == VPSchedule(0.1, 20.0)


@pytest.mark.parametrize("name", sorted(PAPER_PARAMETERS))
def test_parameter_counts_match_the_docstring_table(name):
    counts = count_parameters(load_s2m_config(name))
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total")
    assert "pose_predictor" in counts
    assert counts["total"] == pytest.approx(DOCSTRING_TOTALS[name], rel=0.01)
    assert counts["blocks"] == pytest.approx(DOCSTRING_BLOCKS[name], rel=0.01)
    if name != "s2m-small":  # small's d and L cannot give the paper's 180M (see the docstring)
        ratio = counts["total"] / PAPER_PARAMETERS[name]
        assert 1 / 1.5 < ratio < 1.5, ratio


def test_config_errors_name_what_to_fix(tmp_path):
    with pytest.raises(ValueError, match="unknown s2m config key 'dmodel'"):
        load_s2m_config("s2m-tiny", dmodel=64)
    with pytest.raises(ValueError, match="s2m config num_layers must be a number"):
        load_s2m_config("s2m-tiny", num_layers="six")
    bad = tmp_path / "bad.yaml"
    bad.write_text("d_model: 64\nwindow_mni: 20\n", encoding="utf-8")
    with pytest.raises(ValueError, match="'window_mni'"):
        load_s2m_config(bad)
    with pytest.raises(ValueError, match="s2m-base, s2m-large, s2m-small, s2m-tiny"):
        load_s2m_config("s2m-huge")
    with pytest.raises(ValueError, match="window_min <= window_max"):
        load_s2m_config("s2m-tiny", window_min=60, window_max=50)
    with pytest.raises(ValueError, match="divide by num_heads"):
        S2mConfig(d_model=100, num_heads=8)
    with pytest.raises(ValueError, match="conv_kernel must be odd"):
        S2mConfig(conv_kernel=8)
    with pytest.raises(ValueError, match="ema_decay"):
        S2mConfig(ema_decay=1.0)
