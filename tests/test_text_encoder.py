"""The CLIP text encoder of appendix E, read from a local folder (gaia/text/).

The model is the small random one ``gaia samples text-encoder`` writes, built once per module;
its vocabulary is CLIP's real one, built from the merges file in the open_clip_torch wheel, so
the tokenizer is checked against ids of the published CLIP tokenizer.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from gaia.common.weights import MissingWeightsError, UntrainedWeightsError, file_sha256
from gaia.text.clip_text import (
    MARKER_FILE,
    TinyTextEncoderConfig,
    load_text_encoder,
    write_tiny_text_encoder,
)
from gaia.text.clip_vocab import VOCAB_SIZE, byte_characters

TEXTS = ["please smile", "turn your head left", "close your eyes"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_text_encoder(tmp_path_factory.mktemp("clip") / "tiny", seed=3)


@pytest.fixture(scope="module")
def encoder(tiny: Path):
    return load_text_encoder(tiny, device="cpu", allow_untrained=True)


def _copy_without(source: Path, target: Path, *names: str) -> Path:
    shutil.copytree(source, target)
    for name in names:
        (target / name).unlink()
    return target


def test_the_vocabulary_tokenizes_as_clip(encoder) -> None:
    # Ids of the published CLIP tokenizer (openai/clip-vit-base-patch32): <|startoftext|>,
    # "a</w>" (byte 'a' is the 65th printable character, plus 256 for the </w> set), "photo</w>",
    # "of</w>", "a</w>", "cat</w>", <|endoftext|>.
    ids = encoder.tokenize(["a photo of a cat", "Hello World!"])["input_ids"]
    assert ids[0, :7].tolist() == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert ids[1, :5].tolist() == [49406, 3306, 1002, 256, 49407]  # lower-cased; "!" alone
    assert ids[0, 7:].eq(49407).all()  # padded with <|endoftext|>, as CLIP pads
    assert len(encoder._tokenizer) == VOCAB_SIZE
    assert len(set(byte_characters())) == 256 and " " not in byte_characters()


def test_embeddings_shape_and_determinism(encoder) -> None:
    first = encoder(TEXTS)
    assert first.shape == (3, encoder.dim) == (3, 32)
    assert first.dtype == np.float32 and np.isfinite(first).all()
    np.testing.assert_array_equal(first, encoder(TEXTS))
    assert not np.allclose(first[0], first[1])
    # A text's embedding does not depend on its neighbours in the call.
    np.testing.assert_allclose(encoder(["lorem " * 60, TEXTS[1]])[1], first[1], atol=1e-5)


def test_long_and_empty_texts(encoder) -> None:
    long_text = " ".join(f"word{n}" for n in range(500))
    ids = encoder.tokenize([long_text])["input_ids"]
    assert ids.shape == (1, 77) and ids[0, -1] == 49407  # cut, and still ends in end of text
    out = encoder([long_text, ""])
    assert out.shape == (2, 32) and np.isfinite(out).all()
    assert encoder([]).shape == (0, 32)
    with pytest.raises(TypeError, match="list of texts"):
        encoder("please smile")


def test_provenance(tiny: Path, encoder, tmp_path: Path) -> None:
    facts = encoder.provenance
    assert facts["name"] == "clip_text" and facts["dim"] == 32 and facts["max_tokens"] == 77
    assert facts["sha256"] == file_sha256(tiny / "model.safetensors")
    assert facts["untrained"] is True and facts["seed"] == 3
    assert facts["folder"] == str(tiny.resolve())
    assert len(facts["tokenizer_sha256"]) == 64

    # One changed number in the weights: another hash, and other embeddings.
    from safetensors.torch import load_file, save_file

    changed = _copy_without(tiny, tmp_path / "changed")
    state = load_file(changed / "model.safetensors")
    (bias,) = [k for k in state if k.endswith("final_layer_norm.bias")]
    state[bias] += 1.0
    save_file(state, changed / "model.safetensors", metadata={"format": "pt"})
    other = load_text_encoder(changed, device="cpu", allow_untrained=True)
    assert other.provenance["sha256"] != facts["sha256"]
    assert other.provenance["tokenizer_sha256"] == facts["tokenizer_sha256"]
    assert not np.allclose(other(TEXTS), encoder(TEXTS))


def test_the_tiny_model_is_small_and_seeded(tiny: Path, tmp_path: Path) -> None:
    assert (tiny / "model.safetensors").stat().st_size < 8_000_000
    config = json.loads((tiny / "config.json").read_text())
    assert config["hidden_size"] == TinyTextEncoderConfig().hidden_size
    assert config["vocab_size"] == VOCAB_SIZE and config["eos_token_id"] == 49407
    again = write_tiny_text_encoder(tmp_path / "again", seed=3)
    assert file_sha256(again / "model.safetensors") == file_sha256(tiny / "model.safetensors")
    (tmp_path / "someones").mkdir()
    (tmp_path / "someones" / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="not written by gaia"):
        write_tiny_text_encoder(tmp_path / "someones")


def test_untrained_is_refused_unless_allowed(tiny: Path) -> None:
    with pytest.raises(UntrainedWeightsError, match="untrained"):
        load_text_encoder(tiny, device="cpu")


def test_missing_folder_and_files_are_named(tiny: Path, tmp_path: Path) -> None:
    with pytest.raises(MissingWeightsError, match="no folder at .*nowhere") as err:
        load_text_encoder(tmp_path / "nowhere")
    assert "save_pretrained" in str(err.value) and "gaia samples text-encoder" in str(err.value)
    with pytest.raises(MissingWeightsError, match="no folder given"):
        load_text_encoder(None)

    no_tokenizer = _copy_without(tiny, tmp_path / "no_tokenizer", "vocab.json", "merges.txt")
    with pytest.raises(MissingWeightsError,
                       match=r"has no vocab.json and merges.txt \(or tokenizer.json\)") as err:
        load_text_encoder(no_tokenizer, allow_untrained=True)
    assert f"{no_tokenizer} has no" in str(err.value)

    no_weights = _copy_without(tiny, tmp_path / "no_weights", "model.safetensors")
    with pytest.raises(MissingWeightsError, match="has no model.safetensors"):
        load_text_encoder(no_weights, allow_untrained=True)


def test_a_config_bigger_than_its_weights_is_refused(tiny: Path, tmp_path: Path) -> None:
    # transformers would fill the third layer with random numbers and only log it.
    bigger = _copy_without(tiny, tmp_path / "bigger")
    config = json.loads((bigger / "config.json").read_text())
    config["num_hidden_layers"] = 3
    (bigger / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="does not belong to these weights"):
        load_text_encoder(bigger, device="cpu", allow_untrained=True)


def test_a_pickled_object_in_a_bin_is_refused(tiny: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    pickled = _copy_without(tiny, tmp_path / "pickled", "model.safetensors")
    state = load_file(tiny / "model.safetensors")
    torch.save({**state, "extra": shutil.copytree}, pickled / "pytorch_model.bin")
    with pytest.raises(ValueError, match="weights-only"):
        load_text_encoder(pickled, device="cpu", allow_untrained=True)
    # The same tensors as a plain state dict load, and embed as the safetensors file does.
    torch.save(state, pickled / "pytorch_model.bin")
    from_bin = load_text_encoder(pickled, device="cpu", allow_untrained=True)
    np.testing.assert_array_equal(
        from_bin(TEXTS), load_text_encoder(tiny, device="cpu", allow_untrained=True)(TEXTS))


def test_the_command_writes_a_loadable_folder(tmp_path: Path, capsys) -> None:
    from gaia.cli import main

    assert main(["samples", "text-encoder", str(tmp_path / "cli"), "--seed", "5"]) == 0
    assert "RANDOM" in capsys.readouterr().out
    loaded = load_text_encoder(tmp_path / "cli", device="cpu", allow_untrained=True)
    assert loaded.provenance["seed"] == 5 and loaded.provenance["untrained"] is True
    assert json.loads((tmp_path / "cli" / MARKER_FILE).read_text())["untrained"] is True
    assert loaded(["smile"]).shape == (1, 32)


def test_a_missing_open_clip_wheel_says_how_to_install_it(monkeypatch, tmp_path: Path) -> None:
    import importlib.metadata

    from gaia.text import clip_vocab

    def not_installed(name: str):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(clip_vocab.importlib.metadata, "distribution", not_installed)
    with pytest.raises(MissingWeightsError, match=r"pip install --no-deps open_clip_torch==3\.3"):
        write_tiny_text_encoder(tmp_path / "tiny")
    assert not (tmp_path / "tiny" / "model.safetensors").exists()
