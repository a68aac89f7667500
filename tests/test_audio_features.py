"""Audio of a shard sample (docs/shards.md, docs/weights.md): loudness, denoising, speech features.

Real speech from eSpeak NG (docs/test-media.md). Models with weights are tiny random ones
built here and marked untrained, the way a machine without a model hub tests them.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

from gaia.common.weights import UNTRAINED_MARKER, MissingWeightsError, UntrainedWeightsError
from gaia.pipeline.media.loudness import measure_loudness, normalize_loudness
from gaia.pipeline.speech.denoise import PickledWeightsError, load_denoiser
from gaia.pipeline.speech.features import load_speech_features
from gaia.samples.speech import silence, speech_of_duration

RATE = 16000
TARGET = -23.0
SHA256 = re.compile(r"[0-9a-f]{64}")


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return speech_of_duration(3.0, RATE, seed=3)


# Loudness ---------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [0.05, 0.9])
def test_quiet_and_loud_speech_reach_the_target(speech, scale):
    before = measure_loudness(speech * scale, RATE)
    out = normalize_loudness(speech * scale, RATE, TARGET)
    assert abs(before - TARGET) > 1.0  # outside the tolerance before: something to correct
    assert out.dtype == np.float32 and out.shape == speech.shape
    assert abs(measure_loudness(out, RATE) - TARGET) <= 1.0
    assert np.abs(out).max() <= 0.99


def test_quiet_and_loud_copies_come_out_the_same(speech):
    quiet = normalize_loudness(speech * 0.05, RATE)
    loud = normalize_loudness(speech * 0.9, RATE)
    np.testing.assert_allclose(quiet, loud, atol=1e-4)


def test_silence_and_near_silence_are_left_alone(speech):
    zeros = silence(2.0, RATE)
    assert np.array_equal(normalize_loudness(zeros, RATE), zeros)
    faint = speech * 1e-4  # about -100 LUFS: far under the gate, must not become audible
    assert np.array_equal(normalize_loudness(faint, RATE), faint)


def test_a_loud_target_is_peak_limited_not_clipped(speech):
    out = normalize_loudness(speech, RATE, target_lufs=-8.0)
    assert np.abs(out).max() <= 0.99
    assert measure_loudness(out, RATE) > TARGET + 6  # louder, though the limiter took some
    assert np.isfinite(out).all()


# Denoising --------------------------------------------------------------------------------


def test_none_is_the_identity(speech):
    denoiser = load_denoiser("none")
    out = denoiser(speech)
    assert np.array_equal(out, speech) and out is not speech
    assert denoiser.provenance["name"] == "none" and denoiser.provenance["untrained"] is False


def test_demucs_without_weights_says_what_is_missing(tmp_path):
    with pytest.raises(MissingWeightsError, match="never downloads"):
        load_denoiser("demucs")
    missing = tmp_path / "htdemucs.th"
    with pytest.raises(MissingWeightsError, match=re.escape(str(missing))):
        load_denoiser("demucs", str(missing))


def test_demucs_bag_names_the_model_file_it_lacks(tmp_path):
    (tmp_path / "htdemucs.yaml").write_text("models: ['955717e8']\n")
    with pytest.raises(MissingWeightsError, match=r"955717e8.*dl\.fbaipublicfiles\.com"):
        load_denoiser("demucs", str(tmp_path))


@pytest.fixture(scope="module")
def tiny_demucs(tmp_path_factory) -> Path:
    """demucs's own test model (a small HDemucs, random weights) saved in its .th format."""
    import torch
    from demucs.pretrained import demucs_unittest
    from demucs.states import get_state

    torch.manual_seed(0)
    model = demucs_unittest()
    args, kwargs = model._init_args_kwargs
    folder = tmp_path_factory.mktemp("demucs")
    package = {"klass": type(model), "args": args, "kwargs": kwargs,
               "state": get_state(model, None, half=False)}
    torch.save(package, folder / "unittest.th")
    (folder / UNTRAINED_MARKER).write_text("random init, for tests\n")
    return folder


def test_untrained_demucs_is_refused_unless_allowed(tiny_demucs):
    with pytest.raises(UntrainedWeightsError, match=UNTRAINED_MARKER):
        load_denoiser("demucs", str(tiny_demucs))


def test_untrained_demucs_keeps_length_and_says_so(tiny_demucs, speech):
    denoiser = load_denoiser("demucs", str(tiny_demucs / "unittest.th"), allow_untrained=True,
                             trust_pickle=True)
    out = denoiser(speech[: RATE * 2 + 7])  # a length that no resampling ratio divides
    assert out.shape == (RATE * 2 + 7,) and out.dtype == np.float32
    assert np.isfinite(out).all() and np.abs(out).max() > 0
    provenance = denoiser.provenance
    assert provenance["name"] == "demucs" and provenance["untrained"] is True
    assert provenance["weights"] == "unittest.th" and provenance["trusted_pickle"] is True
    assert SHA256.fullmatch(provenance["sha256"])
    assert np.array_equal(denoiser(silence(1.0, RATE)), silence(1.0, RATE))


def test_pickled_demucs_is_refused_unless_trusted(tiny_demucs):
    with pytest.raises(PickledWeightsError) as refused:
        load_denoiser("demucs", str(tiny_demucs / "unittest.th"), allow_untrained=True)
    message = str(refused.value)
    assert "is a pickle" in message and "runs any code" in message
    assert "--trust-pickled-weights" in message and ".safetensors" in message


@pytest.mark.parametrize("verb", ["extract", "run"])
def test_the_trust_flag_reaches_the_extract_audio_chain(tiny_demucs, verb):
    """``--trust-pickled-weights`` on ``gaia curate extract`` and ``curate run`` becomes the
    extract config's ``trust_pickled_weights``, which the audio chain passes to demucs."""
    from dataclasses import replace

    from gaia.cli import build_parser
    from gaia.pipeline.cli.curate import _extract_config
    from gaia.pipeline.extract.settings import audio_chain

    weights = str(tiny_demucs / "unittest.th")
    given = ["curate", verb, "IN", "--preset", "vae", "--denoise", "demucs",
             "--denoise-weights", weights, "--allow-untrained"]
    if verb == "run":
        given += ["--out", "OUT"]
    config = _extract_config(build_parser().parse_args(given))
    assert config.trust_pickled_weights is False
    with pytest.raises(PickledWeightsError, match="--trust-pickled-weights"):
        audio_chain(config)
    trusted = _extract_config(build_parser().parse_args([*given, "--trust-pickled-weights"]))
    assert trusted == replace(config, trust_pickled_weights=True)
    assert audio_chain(trusted).denoiser.provenance["trusted_pickle"] is True


def save_safetensors(folder: Path, klass: str = "demucs.hdemucs.HDemucs",
                     **changed) -> Path:
    """The tiny model of ``tiny_demucs`` in demucs's Hugging Face format (``demucs.hf``):
    tensors, and the class and its arguments as JSON metadata."""
    import json

    import torch
    from demucs.pretrained import demucs_unittest
    from safetensors.torch import save_file

    torch.manual_seed(0)  # the same weights as tiny_demucs
    model = demucs_unittest()
    args, kwargs = model._init_args_kwargs
    kwargs = {**kwargs, **changed}  # settings the file claims, whatever its tensors are
    folder.mkdir(parents=True, exist_ok=True)
    (folder / UNTRAINED_MARKER).write_text("random init, for tests\n")
    path = folder / "unittest.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path),
              metadata={"klass": klass, "args": json.dumps(list(args)),
                        "kwargs": json.dumps(kwargs)})
    return path


def test_safetensors_demucs_needs_no_trust_and_matches_the_pickle(tiny_demucs, tmp_path,
                                                                  speech):
    safe = load_denoiser("demucs", str(save_safetensors(tmp_path)), allow_untrained=True)
    pickled = load_denoiser("demucs", str(tiny_demucs / "unittest.th"), allow_untrained=True,
                            trust_pickle=True)
    assert safe.provenance["trusted_pickle"] is False
    assert safe.provenance["weights"] == "unittest.safetensors"
    clip = speech[: RATE]
    np.testing.assert_array_equal(safe(clip), pickled(clip))


def test_safetensors_naming_another_class_is_refused(tmp_path):
    path = save_safetensors(tmp_path, klass="os.system")
    with pytest.raises(ValueError, match=r"not a demucs model file.*'os\.system'"):
        load_denoiser("demucs", str(path), allow_untrained=True)


def test_settings_that_do_not_fit_the_tensors_are_refused_before_allocating(tmp_path,
                                                                           tiny_demucs):
    """A weights file's metadata names the class's settings: channels 4096 once grew the
    process to 6.1 GB (24 GB as a trusted .th) before failing. Built on the meta device and
    compared with the file's own tensors, such a file is refused at once, small or huge."""
    import resource

    import torch

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    huge = save_safetensors(tmp_path / "huge", channels=4096)
    with pytest.raises(ValueError, match="over the 200,000,000 any demucs model holds"):
        load_denoiser("demucs", str(huge), allow_untrained=True)
    other = save_safetensors(tmp_path / "other", channels=24)
    with pytest.raises(ValueError, match="are not the file's"):
        load_denoiser("demucs", str(other), allow_untrained=True)
    package = torch.load(tiny_demucs / "unittest.th", weights_only=False)
    package["kwargs"] = {**package["kwargs"], "channels": 4096}
    folder = tmp_path / "th"
    folder.mkdir()
    (folder / UNTRAINED_MARKER).write_text("random init, for tests\n")
    torch.save(package, folder / "unittest.th")
    with pytest.raises(ValueError, match="any demucs model holds"):
        load_denoiser("demucs", str(folder / "unittest.th"), allow_untrained=True,
                      trust_pickle=True)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 500, f"peak memory grew {grown_mb:.0f} MB"


# Speech features --------------------------------------------------------------------------


def test_logmel_hears_speech_where_it_is(speech):
    """1 s of silence, then speech: rows 0-47 (the first second at 25 fps, two rows per frame,
    windows wholly inside the silence) are at the floor, the speech rows are far above it."""
    features = load_speech_features("logmel")
    audio = np.concatenate([silence(1.0, RATE), speech[: 2 * RATE]])
    out = features(audio, num_frames=75).astype(np.float32)
    floor = np.log(1e-6)
    np.testing.assert_allclose(out[:48], floor, atol=0.01)
    assert out[50:].mean(axis=1).mean() > floor + 5
    assert (out[50:].mean(axis=1) > floor + 1).mean() > 0.8  # speech nearly everywhere


@pytest.mark.parametrize(("num_frames", "fps"), [(1, 25.0), (74, 25.0), (75, 25.0),
                                                 (80, 25.0), (113, 25.0), (90, 30.0)])
def test_logmel_has_two_rows_per_video_frame(speech, num_frames, fps):
    features = load_speech_features("logmel")
    out = features(speech, num_frames, fps)  # 3 s of audio: 75 frames at 25 fps
    assert out.shape == (2 * num_frames, 80) and out.dtype == np.float16
    frames = features.frames(speech)  # (ceil(48000 / 320) = 150, 80)
    assert frames.shape == (150, 80)
    if fps == 25.0:  # rows are the 50 Hz frames themselves, then the last one repeated
        shown = min(2 * num_frames, 150)
        np.testing.assert_array_equal(out[:shown], frames[:shown].astype(np.float16))
        assert (out[shown:] == frames[-1].astype(np.float16)).all()
    assert features.provenance["dim"] == 80 and features.provenance["rate_hz"] == 50


@pytest.fixture(scope="module")
def tiny_wav2vec2(tmp_path_factory) -> Path:
    """A random 2-layer wav2vec 2.0 (hidden size 32), saved as save_pretrained does."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(0)
    config = Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=64, conv_dim=(16,) * 7,
                            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    folder = tmp_path_factory.mktemp("wav2vec2")
    Wav2Vec2Model(config).save_pretrained(folder)
    (folder / UNTRAINED_MARKER).write_text("random init, for tests\n")
    return folder


def test_untrained_wav2vec2_is_refused_unless_allowed(tiny_wav2vec2):
    with pytest.raises(UntrainedWeightsError, match=re.escape(str(tiny_wav2vec2))):
        load_speech_features("wav2vec2", str(tiny_wav2vec2))


def test_wav2vec2_gives_hidden_states_two_per_frame(tiny_wav2vec2, speech):
    features = load_speech_features("wav2vec2", str(tiny_wav2vec2), allow_untrained=True)
    for num_frames in (75, 77):
        out = features(speech, num_frames)
        assert out.shape == (2 * num_frames, 32) and out.dtype == np.float16
        assert np.isfinite(out).all()
    hidden = features.frames(speech)  # (floor((48000 - 400) / 320) + 1 = 149, 32)
    assert hidden.shape == (149, 32)
    out = features(speech, 75)
    np.testing.assert_array_equal(out[:149], hidden.astype(np.float16))
    assert (out[149:] == hidden[-1].astype(np.float16)).all()
    # Normalised per clip, as wav2vec 2.0 expects: the input's scale does not matter.
    np.testing.assert_allclose(features(speech * 0.1, 75).astype(np.float32),
                               out.astype(np.float32), atol=0.02)
    provenance = features.provenance
    assert provenance["untrained"] is True and provenance["dim"] == 32
    assert provenance["rate_hz"] == 50 and SHA256.fullmatch(provenance["sha256"])
    weights = (tiny_wav2vec2 / "model.safetensors").read_bytes()
    assert provenance["sha256"] == hashlib.sha256(weights).hexdigest()


def test_wav2vec2_missing_directory_says_what_it_needs(tmp_path):
    missing = tmp_path / "wav2vec2-base-960h"
    with pytest.raises(MissingWeightsError, match=re.escape(str(missing))) as raised:
        load_speech_features("wav2vec2", str(missing))
    assert "config.json" in str(raised.value) and "save_pretrained" in str(raised.value)
    missing.mkdir()
    with pytest.raises(MissingWeightsError, match="no config.json"):
        load_speech_features("wav2vec2", str(missing))


@pytest.mark.parametrize(("settings", "says"), [
    ({"hidden_size": 1024, "intermediate_size": 4096, "num_attention_heads": 16},
     "does not belong to these weights"),
    ({"hidden_size": 16384, "intermediate_size": 65536, "num_attention_heads": 16,
      "num_hidden_layers": 96}, "past the largest released"),
])
def test_a_wav2vec2_config_asking_for_more_than_its_weights_is_refused(tiny_wav2vec2, tmp_path,
                                                                       settings, says):
    """config.json decides what transformers allocates before it reads a weight: a config
    edited to a larger model (or a hostile one) is refused from shapes alone, in moments."""
    import json
    import resource
    import shutil
    import time

    folder = tmp_path / "edited"
    shutil.copytree(tiny_wav2vec2, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **settings}))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    with pytest.raises(ValueError, match=says):
        load_speech_features("wav2vec2", str(folder), allow_untrained=True)
    assert time.monotonic() - started < 30
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 500, f"peak memory grew {grown_mb:.0f} MB before the refusal"
