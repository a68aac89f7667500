"""wav2vec 2.0 speech features as the model and the training clips want them (paper, section 4;
issue 12, item 6): the waveform is normalised when the model's preprocessor config says so,
and long audio is extracted in windows of the clip length curation extracts, so a frame sees
as much audio at generation as in training.

The model is a tiny random wav2vec 2.0 (as in ``test_audio_features``); the speech is eSpeak's.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from gaia.common.weights import UNTRAINED_MARKER
from gaia.pipeline.media.loudness import normalize_loudness
from gaia.pipeline.speech.features import (
    CONTEXT_OVERLAP_S,
    CONTEXT_S,
    HOP,
    PREPROCESSOR_FILE,
    context_windows,
    frame_count,
    load_speech_features,
)
from gaia.samples.speech import speech_of_duration

RATE = 16000


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    """One random tiny wav2vec 2.0, in three folders: without a preprocessor config, and with
    ``do_normalize`` true and false."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    torch.manual_seed(0)
    config = Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=64, conv_dim=(16,) * 7,
                            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    root = tmp_path_factory.mktemp("wav2vec2-preprocessor")
    folders = {name: root / name for name in ("none", "true", "false")}
    Wav2Vec2Model(config).save_pretrained(folders["none"])
    (folders["none"] / UNTRAINED_MARKER).write_text("random init, for tests\n")
    for name in ("true", "false"):
        shutil.copytree(folders["none"], folders[name])
        Wav2Vec2FeatureExtractor(do_normalize=name == "true").save_pretrained(folders[name])
    return folders


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return normalize_loudness(speech_of_duration(4.0, RATE, seed=5))


def extractor(folder: Path):
    return load_speech_features("wav2vec2", str(folder), allow_untrained=True)


def transformers_features(folder: Path, audio: np.ndarray) -> np.ndarray:
    """The hidden states transformers' own preprocessor and model give (the reference)."""
    import torch
    from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2Model

    inputs = Wav2Vec2FeatureExtractor.from_pretrained(str(folder))(
        audio, sampling_rate=RATE, return_tensors="pt").input_values
    model = Wav2Vec2Model.from_pretrained(str(folder), local_files_only=True).eval()
    with torch.inference_mode():
        return model(inputs).last_hidden_state[0].numpy()


def test_normalisation_follows_the_preprocessor_config(model_dirs, speech):
    on, off = extractor(model_dirs["true"]), extractor(model_dirs["false"])
    assert on.provenance["normalize"] is True and off.provenance["normalize"] is False
    assert on.provenance["preprocessor"] == off.provenance["preprocessor"] == PREPROCESSOR_FILE
    quiet = speech * 0.1  # a scale normalisation removes and the raw waveform keeps
    normalised, raw = on.frames(quiet), off.frames(quiet)
    assert np.abs(normalised - raw).mean() > 0.05 * np.abs(raw).mean()
    for folder, ours in (("true", normalised), ("false", raw)):  # each as transformers does it
        np.testing.assert_allclose(ours, transformers_features(model_dirs[folder], quiet),
                                   rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(on.frames(speech), normalised, atol=1e-3)  # scale-free
    assert np.abs(off.frames(speech) - raw).mean() > 0.05 * np.abs(raw).mean()


def test_without_a_preprocessor_config_the_input_is_normalised(model_dirs, speech):
    """transformers' default (``Wav2Vec2FeatureExtractor(do_normalize=True)``), and what
    these features always did; the provenance says it was a default."""
    default = extractor(model_dirs["none"])
    assert default.provenance["normalize"] is True
    assert default.provenance["preprocessor"].startswith("default")
    np.testing.assert_array_equal(default.frames(speech), extractor(model_dirs["true"]).frames(
        speech))


def test_a_preprocessor_for_other_audio_is_refused(model_dirs, tmp_path):
    folder = tmp_path / "eight-khz"
    shutil.copytree(model_dirs["true"], folder)
    config = json.loads((folder / PREPROCESSOR_FILE).read_text())
    (folder / PREPROCESSOR_FILE).write_text(json.dumps({**config, "sampling_rate": 8000}))
    with pytest.raises(ValueError, match="sampling_rate 8000"):
        extractor(folder)


@pytest.mark.parametrize("samples", [399, 400, 48000, 160000, 160001, 960000, 960123])
def test_context_windows_cover_every_frame_once(samples):
    window, overlap = int(CONTEXT_S * RATE), int(CONTEXT_OVERLAP_S * RATE)
    windows = context_windows(samples, window, overlap)
    assert windows[0][2] == 0 and windows[-1][3] == frame_count(samples)
    assert all(a[3] == b[2] for a, b in zip(windows, windows[1:], strict=False))
    for start, stop, first, last in windows:
        assert start % HOP == 0 and stop - start <= window and first < last
        assert start // HOP <= first and last <= start // HOP + frame_count(stop - start)
    if samples <= window:
        assert windows == [(0, samples, 0, frame_count(samples))]
    else:
        assert stop == samples and all(b - a >= window - HOP for a, b, _, _ in windows)
        half = overlap // HOP // 2 - 1  # frames of context a frame keeps on each side, at least
        inner = windows[1:-1]
        assert all(first - start // HOP >= half for start, _, first, _ in windows[1:])
        assert all(start // HOP + frame_count(stop - start) - last >= half
                   for start, stop, _, last in [windows[0], *inner])


def test_a_minute_in_windows_is_each_window_extracted_as_a_clip(model_dirs):
    """Every frame of a 60 s extraction equals (float32 noise, 1e-5) the one-pass extraction
    of its window's span alone, as curation extracts a clip of that span; audio no longer than
    ``CONTEXT_S`` is one pass, as before."""
    features = extractor(model_dirs["true"])
    assert features.provenance["context_s"] == CONTEXT_S
    audio = normalize_loudness(speech_of_duration(60.0, RATE, seed=1))
    stitched = features.frames(audio)
    assert stitched.shape == (frame_count(audio.size), 32)
    windows = context_windows(audio.size, int(CONTEXT_S * RATE), int(CONTEXT_OVERLAP_S * RATE))
    assert len(windows) == 10
    for start, stop, first, last in windows:
        alone = features.pass_frames(audio[start:stop])
        np.testing.assert_allclose(stitched[first:last],
                                   alone[first - start // HOP:last - start // HOP],
                                   rtol=1e-5, atol=1e-5)
    clip = audio[: int(CONTEXT_S * RATE)]
    np.testing.assert_array_equal(features.frames(clip), features.pass_frames(clip))
    out = features(audio, num_frames=1500)
    assert out.shape == (3000, 32) and np.isfinite(out).all()


def test_generation_refuses_features_normalised_otherwise_than_in_training(model_dirs):
    """The weights' sha256 does not cover the preprocessor config: the recorded setting does
    (checked where both provenances record it; older ones predate it)."""
    from gaia.generation.generate import speech_differences

    on = extractor(model_dirs["true"]).provenance
    off = extractor(model_dirs["false"]).provenance
    assert on["sha256"] == off["sha256"] and speech_differences(on, off) == ["normalize"]
    older = {key: value for key, value in on.items()
             if key not in ("normalize", "context_s")}
    assert speech_differences(older, off) == [] and speech_differences(on, on) == []
