"""SyncNet option (Chung & Zisserman 2016): shapes with random weights, and the weight loader's
errors (docs/weights.md: a missing file named, a pickled file refused)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from gaia.common.weights import MissingWeightsError
from gaia.pipeline.speech.syncnet import (
    CROP,
    SyncNet,
    SyncNetConfig,
    load_syncnet,
    mfcc,
    syncnet_offsets,
)

TINY = SyncNetConfig(audio_channels=(4, 4, 8, 8, 8, 16), video_channels=(4, 8, 8, 8, 8, 16),
                     embedding=8)


def test_streams_embed_0_2_s_of_each():
    torch.manual_seed(0)
    model = SyncNet(TINY).eval()
    assert model.audio(torch.zeros(2, 1, 13, 20)).shape == (2, 8)
    assert model.video(torch.zeros(2, 5, CROP, CROP)).shape == (2, 8)
    full = SyncNet().eval()
    assert full.audio(torch.zeros(1, 1, 13, 20)).shape == (1, 256)


def test_mfcc_is_13_rows_at_100_hz():
    assert mfcc(np.random.default_rng(0).normal(size=16000).astype(np.float32)).shape == (13, 100)


def test_offsets_have_one_value_per_frame():
    torch.manual_seed(0)
    model = SyncNet(TINY).eval()
    crops = np.random.default_rng(0).integers(0, 255, (30, CROP, CROP), dtype=np.uint8)
    audio = np.random.default_rng(1).normal(size=int(1.2 * 16000)).astype(np.float32)
    offsets, confidence = syncnet_offsets(model, crops, audio, max_lag_s=0.2, window_s=0.4)
    assert offsets.shape == confidence.shape == (30,)
    assert np.all(np.abs(offsets) <= 5) and np.all(confidence >= 0)


class _Evil:
    """A class torch's safe loader does not know: a pickled object."""


def test_loader_names_the_missing_file_and_refuses_pickles(tmp_path):
    with pytest.raises(MissingWeightsError, match="nowhere.pt.*never downloaded"):
        load_syncnet(tmp_path / "nowhere.pt")

    bad = tmp_path / "pickled.pt"
    torch.save({"model": _Evil()}, bad, pickle_module=pickle)
    with pytest.raises(ValueError, match="pickled.pt.*not unpickled"):
        load_syncnet(bad, TINY)
    good = tmp_path / "tiny.pt"
    torch.save(SyncNet(TINY).state_dict(), good)
    model = load_syncnet(good, TINY)
    assert model.provenance["sha256"] and not model.training
    with pytest.raises(ValueError, match="does not fit"):
        load_syncnet(good)
