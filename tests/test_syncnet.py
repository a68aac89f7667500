"""SyncNet in syncnet_v2's published layout (issue 24): every state-dict key and shape and the
parameter count against a table written down from syncnet_python's source; the loader (strict
keys, the one allowed absence, what a wrong file is not); the scoring against hand-computed
cases (edge zero-padding, Sync-C/D, the offset's sign, the windows); the face framing; the
MFCC stack against python_speech_features on real speech."""

from __future__ import annotations

import wave

import numpy as np
import pytest
import torch

from gaia.common.installed import package_folders
from gaia.common.weights import MissingWeightsError
from gaia.pipeline.speech.mfcc import syncnet_mfcc
from gaia.pipeline.speech.syncnet import (
    SyncNet,
    clip_sync,
    embedding_distances,
    face_crops,
    frame_sync,
    landmark_boxes,
    load_syncnet,
    syncnet_distances,
)
from gaia.pipeline.speech.syncnet_crops import crop_track
from gaia.pipeline.speech.syncnet_scores import to_25fps

# joonson/syncnet_python, SyncNetModel.py, class S (num_layers_in_fc_layers=1024): each
# nn.Sequential's layers with their indices (ReLUs and pools hold indices, no tensors).
# conv/linear: the weight's shape (bias: its first dimension); bn: the channels.
PUBLISHED = [
    ("netcnnaud.0", "conv", (64, 1, 3, 3)), ("netcnnaud.1", "bn", 64),
    ("netcnnaud.4", "conv", (192, 64, 3, 3)), ("netcnnaud.5", "bn", 192),
    ("netcnnaud.8", "conv", (384, 192, 3, 3)), ("netcnnaud.9", "bn", 384),
    ("netcnnaud.11", "conv", (256, 384, 3, 3)), ("netcnnaud.12", "bn", 256),
    ("netcnnaud.14", "conv", (256, 256, 3, 3)), ("netcnnaud.15", "bn", 256),
    ("netcnnaud.18", "conv", (512, 256, 5, 4)), ("netcnnaud.19", "bn", 512),
    ("netfcaud.0", "linear", (512, 512)), ("netfcaud.1", "bn", 512),
    ("netfcaud.3", "linear", (1024, 512)),
    ("netfclip.0", "linear", (512, 512)), ("netfclip.1", "bn", 512),
    ("netfclip.3", "linear", (1024, 512)),
    ("netcnnlip.0", "conv", (96, 3, 5, 7, 7)), ("netcnnlip.1", "bn", 96),
    ("netcnnlip.4", "conv", (256, 96, 1, 5, 5)), ("netcnnlip.5", "bn", 256),
    ("netcnnlip.8", "conv", (256, 256, 1, 3, 3)), ("netcnnlip.9", "bn", 256),
    ("netcnnlip.11", "conv", (256, 256, 1, 3, 3)), ("netcnnlip.12", "bn", 256),
    ("netcnnlip.14", "conv", (256, 256, 1, 3, 3)), ("netcnnlip.15", "bn", 256),
    ("netcnnlip.18", "conv", (512, 256, 1, 6, 6)), ("netcnnlip.19", "bn", 512),
]
PARAMETERS = 13_631_616  # the sum below, by hand: audio 4,875,712 + fc 2 x 788,992 + lip 7,177,920


def published_state() -> dict[str, tuple[int, ...]]:
    """Every key of syncnet_v2's state dict with its shape, expanded from ``PUBLISHED``."""
    state = {}
    for name, kind, shape in PUBLISHED:
        if kind == "bn":
            state.update({f"{name}.{t}": (shape,) for t in
                          ("weight", "bias", "running_mean", "running_var")})
            state[f"{name}.num_batches_tracked"] = ()
        else:
            state.update({f"{name}.weight": shape, f"{name}.bias": (shape[0],)})
    return state


def test_state_dict_is_the_published_layout_key_by_key():
    model = SyncNet()
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == published_state()
    by_table = sum(int(np.prod(s)) for k, s in published_state().items()
                   if k.endswith((".weight", ".bias")))
    assert sum(p.numel() for p in model.parameters()) == by_table == PARAMETERS


def test_both_streams_embed_a_window_in_1024_dimensions():
    model = SyncNet().eval()
    with torch.no_grad():
        assert model.audio(torch.randn(2, 1, 13, 20)).shape == (2, 1024)
        assert model.video(torch.rand(1, 3, 5, 224, 224) * 255).shape == (1, 1024)


@pytest.fixture(scope="module")
def published_file(tmp_path_factory):
    """A SyncNet with random weights and running statistics, saved as the 2018 file is: a
    plain state dict without BatchNorm's num_batches_tracked."""
    torch.manual_seed(0)
    model = SyncNet().eval()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    path = tmp_path_factory.mktemp("syncnet") / "syncnet_v2.model"
    torch.save({k: v for k, v in model.state_dict().items()
                if not k.endswith("num_batches_tracked")}, path)
    return model, path


def test_loads_the_published_file_strictly_and_records_it(published_file):
    model, path = published_file
    loaded = load_syncnet(path)
    assert loaded.provenance["layout"] == "syncnet_v2" and len(loaded.provenance["sha256"]) == 64
    assert loaded.provenance["file"] == str(path) and not loaded.training
    mfcc = torch.randn(3, 1, 13, 20)
    with torch.no_grad():
        assert torch.equal(loaded.audio(mfcc), model.audio(mfcc))


def test_a_wrong_file_says_what_it_is_not(published_file, tmp_path):
    model, _ = published_file
    with pytest.raises(MissingWeightsError, match="syncnet_v2.model"):
        load_syncnet(tmp_path / "nowhere.model")
    pickled = tmp_path / "module.model"
    torch.save(torch.nn.Linear(2, 2), pickled)  # a pickled object, not a state dict
    with pytest.raises(ValueError, match="safe loader refuses"):
        load_syncnet(pickled)
    audio_only = tmp_path / "audio.model"
    torch.save({k: v for k, v in model.state_dict().items() if "lip" not in k}, audio_only)
    with pytest.raises(ValueError, match=r"missing keys netcnnlip\.\*, netfclip\.\*"):
        load_syncnet(audio_only)
    old = tmp_path / "old.pt"
    torch.save({"audio_net.0.weight": torch.zeros(64, 1, 3, 3)}, old)
    with pytest.raises(ValueError, match="old SyncNet layout"):
        load_syncnet(old)
    resized = tmp_path / "resized.model"
    state = {k: v for k, v in model.state_dict().items() if "cnnlip" not in k}
    state["netfcaud.3.weight"] = torch.zeros(256, 512)
    state["netfcaud.3.bias"] = torch.zeros(256)
    torch.save(state, resized)
    with pytest.raises(ValueError, match=r"2 shapes differ \(e.g. netfcaud.3.weight "
                                         r"\(256, 512\) != \(1024, 512\)\)"):
        load_syncnet(resized)


def test_edge_lags_compare_with_zero_audio_embeddings():
    """calc_pdist: the audio embeddings are zero-padded by vshift at both ends."""
    video = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
    audio = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 4.0]])
    dists = embedding_distances(video, audio, vshift=1).numpy()
    # Row i, column j: |video[i] - audio[i + j - 1]|, audio[-1] and audio[3] being zeros.
    expected = [[1.0, 0.0, 1.0],  # the first column: |video[0]| against zeros
                [np.sqrt(5), np.sqrt(2), 2.0],
                [np.sqrt(13), 3.0, 5.0]]  # the last column: |video[2]| against zeros
    assert dists == pytest.approx(np.array(expected), abs=1e-4)


def test_sync_c_d_and_the_offset_sign_by_hand():
    lags = np.arange(-2, 3)
    # Mean over windows per lag: 6, 4, 5, 2, 7 -> Sync-D 2 at lag +1; median 5 -> Sync-C 3.
    dists = np.array([[5, 3, 6, 1, 8], [7, 5, 4, 3, 6]], float)
    assert clip_sync(lags, dists) == {"sync_c": 3.0, "sync_d": 2.0, "sync_offset_frames": 1}
    # syncnet_python would print offset = vshift - argmin = 2 - 3 = -1: the sign is flipped.
    # An even number of lags: torch.median's lower middle value (3, not numpy's 4).
    assert clip_sync(np.arange(4), np.array([[1.0, 3.0, 5.0, 7.0]]))["sync_c"] == 2.0
    with pytest.raises(ValueError, match="windows"):
        clip_sync(lags, np.zeros((0, 5)))


def test_audio_late_by_three_windows_reads_plus_three():
    """The sound of video window i sits at audio window i + 3 (audio late): +3 by gaia's sign,
    for the clip and for every frame."""
    rng = np.random.default_rng(0)
    audio = torch.from_numpy(rng.normal(size=(40, 8))).float()
    video = torch.cat([audio[3:], torch.from_numpy(rng.normal(size=(3, 8))).float()])
    dists = embedding_distances(video, audio, vshift=5).numpy()
    lags = np.arange(-5, 6)
    assert clip_sync(lags, dists)["sync_offset_frames"] == 3
    offsets, confidence = frame_sync(lags, dists, window=9)
    assert len(offsets) == 45 and (offsets[:35] == 3).all() and (confidence[:35] > 1).all()


class _Probe(torch.nn.Module):
    """What reaches the network: the first channel of a window's first frame, and the first
    MFCC (log energy) of its first 10 ms."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def video(self, crops: torch.Tensor) -> torch.Tensor:
        return crops[:, 0, 0, :1, 0]

    def audio(self, mfcc: torch.Tensor) -> torch.Tensor:
        return mfcc[:, 0, 0, :1]


def test_windows_follow_the_lastframe_rule_in_bgr_with_4_mfccs_per_frame():
    n = 12
    crops = np.zeros((n, 224, 224, 3), np.uint8)
    crops[..., 0] = (10 * np.arange(n))[:, None, None]  # red
    crops[..., 2] = np.arange(n)[:, None, None]  # blue: the network's first channel
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, n * 640)
    probe = _Probe()
    lags, dists = syncnet_distances(probe, crops, audio, vshift=2)
    assert dists.shape == (n - 5, 5) and list(lags) == [-2, -1, 0, 1, 2]
    mfcc = syncnet_mfcc(audio)
    video = np.arange(n - 5)
    # Column vshift (lag 0): |blue of frame v - log energy of MFCC frame 4 v| (+ torch's eps).
    assert dists[:, 2] == pytest.approx(np.abs(video - mfcc[0, 4 * video]), abs=1e-3)
    # Audio shorter than the video: min(frames, samples // 640) - 5 windows.
    assert len(syncnet_distances(probe, crops, audio[: 9 * 640 + 639], vshift=2)[1]) == 4
    assert len(syncnet_distances(probe, crops[:5], audio, vshift=2)[1]) == 0


def test_per_frame_values_cover_every_video_frame():
    lags = np.array([-1, 0, 1])
    dists = np.array([[3.0, 1.0, 2.0], [1.0, 2.0, 3.0], [2.0, 3.0, 1.0]])
    offsets, confidence = frame_sync(lags, dists, window=1)
    # Frame t takes the window centred on it (t - 2); frames 0-1 the first, 4-7 the last.
    assert list(offsets) == [0, 0, 0, -1, 1, 1, 1, 1]
    assert list(confidence) == [1, 1, 1, 1, 1, 1, 1, 1]
    whole = clip_sync(lags, dists)
    offsets, confidence = frame_sync(lags, dists, window=99, n_frames=10)
    assert (offsets == whole["sync_offset_frames"]).all()
    assert confidence == pytest.approx(np.full(10, whole["sync_c"]))
    # 50 fps: frame f is the 25 fps frame f / 2 rounded half up.
    offsets, _ = frame_sync(lags, dists, window=1, n_frames=16, fps=50.0)
    assert list(offsets) == [0] * 5 + [-1, -1] + [1] * 9
    assert np.isnan(frame_sync(lags, np.zeros((0, 3)), n_frames=4)[0]).all()
    assert list(to_25fps(6, 50.0)) == [0, 2, 4] and list(to_25fps(6, 30.0)) == [0, 1, 2, 4, 5]


def test_landmark_boxes_add_the_forehead():
    points = np.zeros((2, 68, 2))
    points[0, :, 0] = np.linspace(10, 50, 68)
    points[0, :, 1] = np.linspace(20, 60, 68)
    points[1, 5] = np.nan
    boxes = landmark_boxes(points)
    assert boxes[0] == pytest.approx([10, 20 - 0.25 * 40, 50, 60])
    assert np.isnan(boxes[1]).all()


def test_crops_are_framed_as_crop_video():
    """Box (80, 80)-(120, 120): bs 20, so rows [80, 136) and columns [72, 128), 4x enlarged."""
    rows, cols = np.mgrid[0:200, 0:200]
    frame = np.stack([rows, cols, np.zeros_like(rows)], axis=-1).astype(np.uint8)
    crop = face_crops(frame[None], np.array([[80.0, 80.0, 120.0, 120.0]]))[0]
    assert crop.shape == (224, 224, 3)
    assert abs(int(crop[2, 2, 0]) - 80) <= 1 and abs(int(crop[2, 2, 1]) - 72) <= 1
    assert abs(int(crop[-3, -3, 0]) - 135) <= 1 and abs(int(crop[-3, -3, 1]) - 127) <= 1
    corner = face_crops(frame[None], np.array([[0.0, 0.0, 20.0, 20.0]]))[0]
    assert (corner[0, 0] == 110).all()  # grey outside the frame
    with pytest.raises(ValueError, match="no frame has a face box"):
        face_crops(frame[None], np.full((1, 4), np.nan))


def test_missing_boxes_are_interpolated_and_held():
    boxes = np.stack([np.arange(20.0)] * 4, axis=1) + [0, 0, 40, 40]  # moving 1 px a frame
    boxes[[0, 1, 7, 8, 19]] = np.nan
    track = crop_track(boxes)
    expected = np.arange(20.0) + 20
    expected[:2], expected[19] = 22, 38  # held before the first and after the last box
    assert track[:, 0] == pytest.approx(expected) and (track[:, 2] == 20).all()


def _sample_wav() -> np.ndarray:
    for folder in package_folders("pyannote"):
        path = folder / "audio" / "sample" / "sample.wav"
        if path.is_file():
            with wave.open(str(path), "rb") as file:
                assert file.getframerate() == 16000 and file.getsampwidth() == 2
                return np.frombuffer(file.readframes(file.getnframes()), "<i2")
    raise AssertionError("pyannote.audio's sample.wav is not installed (docs/test-media.md)")


def test_mfcc_is_python_speech_features_on_real_speech():
    """syncnet_python: python_speech_features.mfcc(audio, 16000) on the 16-bit samples."""
    from python_speech_features import mfcc

    samples = _sample_wav()  # 30 s of a real two-person conversation
    ours = syncnet_mfcc(samples.astype(np.float32) / 32768.0)
    theirs = mfcc(samples, 16000).T
    assert ours.shape == theirs.shape == (13, 2999)
    assert np.abs(ours - theirs).max() < 1e-6 * np.abs(theirs).max()
    short = samples[16000:16401]  # 401 samples: two frames, the second zero-padded
    assert syncnet_mfcc(short / 32768.0) == pytest.approx(mfcc(short, 16000).T, abs=1e-9)
