"""Evaluation metrics against hand-computed cases (issues 13, 24): AKD by FOMM's definition
and the Euclidean one, on a hand-computed case and on isotropic Gaussian errors; Sync-C/D of
a known distance matrix; FID through torchmetrics equal to the Fréchet distance computed by
hand; FID's Inception-v3 in the published port's layout; LPIPS (alex) zero on identical
images; every metric without its weights file n/a with a message naming the file."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from gaia.evaluation.fid import fid_network, frechet_distance
from gaia.evaluation.inception import FidInception, load_inception
from gaia.evaluation.keypoints import KeypointScore, akd_euclidean, akd_fomm
from gaia.evaluation.lip_sync import clip_sync, syncnet_scorer
from gaia.evaluation.lpips_alex import AlexNetFeatures, metric_lpips


def test_akd_both_ways_on_a_hand_computed_case():
    real = np.array([[0.0, 0.0], [1.0, 1.0]])
    generated = np.array([[3.0, 4.0], [1.0, -1.0]])  # differences (3, 4) and (0, 2)
    assert akd_fomm(real, generated) == pytest.approx((3 + 4 + 0 + 2) / 4)
    assert akd_euclidean(real, generated) == pytest.approx((5 + 2) / 2)
    points = np.random.default_rng(0).uniform(0, 64, (68, 2))
    assert akd_fomm(points, points) == akd_euclidean(points, points) == 0.0
    assert akd_fomm(points, points + (3.0, 4.0)) == pytest.approx(3.5)
    assert akd_euclidean(points, points + (3.0, 4.0)) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="one shape"):
        akd_fomm(points, points[:10])


def test_euclidean_akd_reads_pi_over_2_of_fomms_on_isotropic_errors():
    """Mean of a Rayleigh variable over a half-normal's: sqrt(pi/2) / sqrt(2/pi) = pi/2."""
    rng = np.random.default_rng(1)
    real = rng.uniform(0, 256, (200, 68, 2))
    generated = real + rng.normal(0, 1.5, real.shape)
    fomm = np.mean([akd_fomm(a, b) for a, b in zip(real, generated, strict=True)])
    euclid = np.mean([akd_euclidean(a, b) for a, b in zip(real, generated, strict=True)])
    assert fomm == pytest.approx(1.5 * np.sqrt(2 / np.pi), rel=0.02)
    assert euclid / fomm == pytest.approx(np.pi / 2, rel=0.01)


def test_keypoint_score_reports_both_and_counts_misses():
    points = np.zeros((68, 2))
    score = KeypointScore(lambda image: None if image.mean() > 100 else points + (3.0, 4.0))
    dark, bright = np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 255, np.uint8)
    assert score.add_detections(points, dark) is not None
    assert score.add_detections(None, dark) is not None
    assert score.add_detections(points, bright) is None
    assert score.report() == {"akd": 3.5, "akd_euclidean": 5.0, "akd_frames": 1,
                              "akd_missed_real": 1, "akd_missed_generated": 1}


def test_sync_c_and_d_of_a_known_distance_matrix():
    lags = np.arange(-2, 3)
    # per lag, the mean over frames: 9, 8, 5, 7, 10 -> Sync-D 5 at lag 0, Sync-C 8 - 5 = 3
    distances = np.array([[8, 7, 4, 6, 9], [10, 9, 6, 8, 11]], float)
    assert clip_sync(lags, distances) == {"sync_c": 3.0, "sync_d": 5.0,
                                          "sync_offset_frames": 0}
    assert clip_sync(lags, distances[:, ::-1])["sync_offset_frames"] == 0
    assert clip_sync(lags, np.roll(distances, 1, axis=1))["sync_offset_frames"] == 1


def test_fid_through_torchmetrics_is_the_frechet_distance_of_the_features(tiny_features):
    rng = np.random.default_rng(0)
    real = rng.integers(0, 255, (40, 32, 32, 3), dtype=np.uint8)
    fake = (real * 0.5 + 60).astype(np.uint8)
    net = tiny_features
    value = frechet_distance([real[:25], real[25:]], [fake], net)  # batches do not matter
    with torch.no_grad():
        a, b = (net(torch.from_numpy(x).permute(0, 3, 1, 2)).double().numpy()
                for x in (real, fake))
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    by_hand = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(
        s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
    assert value == pytest.approx(by_hand, rel=1e-6) and value > 0
    assert frechet_distance([real], [real], net) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance([real[:1]], [fake], net) is None  # one frame: no covariance


def test_inception_has_the_published_ports_layout_and_loads_safely(tmp_path):
    model = FidInception()
    # torchvision's inception_v3 without aux logits, 1008 classes: the FID port's 23,850,960
    assert sum(p.numel() for p in model.parameters()) == 23_850_960
    keys = model.state_dict()
    assert "Conv2d_1a_3x3.conv.weight" in keys and "Mixed_7c.branch_pool.bn.running_var" in keys
    path = tmp_path / "pt_inception.pth"
    torch.save(keys, path)
    assert load_inception(path).provenance["sha256"]
    with torch.no_grad():
        features = load_inception(path)(torch.zeros(2, 3, 64, 64, dtype=torch.uint8))
    assert features.shape == (2, 2048)
    pickled = tmp_path / "pickled.pth"
    torch.save({"model": FidInception}, pickled)  # a class: only an unpickler could read it
    with pytest.raises(ValueError, match="safe loader refuses"):
        load_inception(pickled)
    network, note = fid_network(tmp_path / "absent.pth")
    assert network is None and "absent.pth" in note and "n/a" in note


def test_lpips_alex_is_zero_on_identical_images_and_na_without_alexnet(tmp_path):
    torch.manual_seed(0)
    alex = AlexNetFeatures()
    weights = {f"features.{i}.{n}": getattr(conv, n).detach()
               for conv, i in zip(alex.convs, (0, 3, 6, 8, 10), strict=True)
               for n in ("weight", "bias")}
    path = tmp_path / "alexnet.pth"
    torch.save(weights, path)
    lpips, note = metric_lpips("alex", path)
    assert note is None and lpips.provenance["kind"] == "lpips-alex"
    x, y = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    assert torch.allclose(lpips(x, x), torch.zeros(2))
    assert (lpips(x, y) > 0).all()
    missing, note = metric_lpips("alex", tmp_path / "none.pth")
    assert missing is None and "none.pth" in note and "alexnet-owt-7be5be79.pth" in note
    _, note = metric_lpips("vgg", tmp_path / "none.pth")
    assert "vgg16-397923af.pth" in note


def test_sync_without_syncnet_weights_is_na_with_the_file_named(tmp_path):
    model, note = syncnet_scorer(tmp_path / "syncnet.pt")
    assert model is None and "syncnet.pt" in note and "n/a" in note
    model, note = syncnet_scorer(None)
    assert model is None and "--syncnet-weights" not in note and "SyncNet" in note
