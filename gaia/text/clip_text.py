"""A CLIP text encoder read from a local folder (paper, appendix E; docs/weights.md).

Appendix E conditions the diffusion model on an instruction instead of speech: the text
("please smile", "turn your head left") goes through a pre-trained CLIP text encoder and its
representation takes the place of the speech features. ``TextEncoder`` gives that
representation as CLIP does: the ``pooler_output`` of ``transformers.CLIPTextModel``, the
hidden state at the end-of-text token after the final layer norm, one ``E``-vector a text.

The model and tokenizer are read from a local folder only (``local_files_only``), never
downloaded; a missing or incomplete folder raises ``MissingWeightsError`` naming the folder,
what it lacks and how to make one. Weights are read from ``.safetensors``; a ``.bin`` only
through torch's weights-only unpickler (tensors and plain containers), anything else in it is
refused. A folder whose ``config.json`` asks for more than its weights hold is refused before
the model is built: transformers would fill the gap with random numbers and say so only in a
log line.

``write_tiny_text_encoder`` writes a small RANDOM ``CLIPTextModel`` with CLIP's real
vocabulary, for tests and the demo. It is labelled as the project labels every random model
(an ``UNTRAINED`` file: refused unless ``allow_untrained``) and carries ``gaia_provenance.json``
with its seed; the encoder's ``provenance`` then says ``untrained: True``.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from gaia.common.weights import (
    UNTRAINED_MARKER,
    MissingWeightsError,
    UntrainedWeightsError,
    check_untrained,
    stored_elements,
    version_of,
    weights_sha256,
)
from gaia.text.clip_vocab import (
    BPE_FILE,
    DISTRIBUTION,
    END,
    MERGES_FILE,
    START,
    VOCAB_FILE,
    VOCAB_SIZE,
    write_clip_vocab,
)

CLIP_EXAMPLE = "openai/clip-vit-base-patch32"
MARKER_FILE = "gaia_provenance.json"
CONFIG_FILE = "config.json"
TOKENIZER_JSON = "tokenizer.json"
# Every file that decides how a text becomes ids; those present make ``tokenizer_sha256``.
# transformers 5 saves a tokenizer as tokenizer.json (+ tokenizer_config.json); the hub's
# folders and the tiny model carry vocab.json + merges.txt. Either pair is enough.
TOKENIZER_FILES = (VOCAB_FILE, MERGES_FILE, TOKENIZER_JSON, "tokenizer_config.json",
                   "special_tokens_map.json", "added_tokens.json")
# Texts per forward pass: bounds memory for a long list, and CLIP's 77 tokens are cheap.
BATCH = 64
# Before transformers' 2023 fix, CLIP configs named id 2 as end of text; for those the model
# pools at the highest id in each row instead, which is <|endoftext|> (49407) as well.
LEGACY_EOS_ID = 2


@dataclass(frozen=True)
class TinyTextEncoderConfig:
    """The random test model: CLIP's vocabulary and context length, everything else small
    (about 1.6 M parameters, 6 MB, almost all of it the 49,408 x 32 token embedding)."""

    hidden_size: int = 32
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    intermediate_size: int = 64
    max_position_embeddings: int = 77
    vocab_size: int = VOCAB_SIZE


def _missing(folder: Path | None, what: str) -> MissingWeightsError:
    return MissingWeightsError(
        f"the CLIP text encoder (appendix E) needs a local model folder ({what}), and gaia "
        f"never downloads. {folder if folder is not None else 'The folder'} must hold "
        f"{CONFIG_FILE}, the weights (model.safetensors, or pytorch_model.bin, or their shards "
        f"with the index file) and the tokenizer ({VOCAB_FILE} and {MERGES_FILE}, or "
        f"{TOKENIZER_JSON}). On a machine with network access run: "
        f"transformers.CLIPTextModel.from_pretrained('{CLIP_EXAMPLE}').save_pretrained(DIR) "
        f"and transformers.CLIPTokenizer.from_pretrained('{CLIP_EXAMPLE}').save_pretrained(DIR)"
        ", and copy DIR here. For tests and the demo, `gaia samples text-encoder DIR` writes a "
        "small RANDOM model with CLIP's vocabulary (not CLIP's weights)."
    )


def _weight_files(folder: Path) -> list[Path]:
    """The files transformers will read: the safetensors ones when there are any (it prefers
    them), else the ``.bin`` ones."""
    safetensors = sorted(folder.glob("*.safetensors"))
    return safetensors or sorted(p for p in folder.glob("*.bin") if "model" in p.name)


def _tokenizer_files(folder: Path) -> list[Path]:
    return [folder / name for name in TOKENIZER_FILES if (folder / name).is_file()]


def _check_folder(folder: Path | None) -> tuple[Path, list[Path], list[Path]]:
    """The folder, its weight files and tokenizer files; MissingWeightsError naming what lacks."""
    if folder is None:
        raise _missing(None, "no folder given")
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise _missing(folder, f"no folder at {folder}")
    lacking = [] if (folder / CONFIG_FILE).is_file() else [CONFIG_FILE]
    weights = _weight_files(folder)
    if not weights:
        lacking.append("model.safetensors (or pytorch_model.bin)")
    tokenizer = _tokenizer_files(folder)
    names = {p.name for p in tokenizer}
    if TOKENIZER_JSON not in names and not {VOCAB_FILE, MERGES_FILE} <= names:
        lacking.append(" and ".join(n for n in (VOCAB_FILE, MERGES_FILE) if n not in names)
                       + f" (or {TOKENIZER_JSON})")
    if lacking:
        raise _missing(folder, f"{folder} has no " + ", no ".join(lacking))
    return folder, weights, tokenizer


def _load_bin(path: Path):
    """A ``.bin``'s tensors, mapped (not read) by torch's weights-only unpickler, which refuses
    anything but tensors and plain containers: no code in a pickle runs."""
    import torch

    try:
        return torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(f"{path} holds more than tensors (a pickled object torch's "
                         "weights-only loader refuses); not loaded. Save the model with "
                         "save_pretrained, which writes model.safetensors") from err


def _check_size(folder: Path, files: list[Path]) -> None:
    """Refuse a ``config.json`` asking for more parameters than the weights hold, before the
    model is allocated: it is built on torch's meta device (shapes only) and counted. A whole
    ``CLIPModel`` folder holds more (its vision tower), which is fine."""
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig.from_pretrained(str(folder), local_files_only=True)
    with torch.device("meta"):
        wanted = sum(p.numel() for p in CLIPTextModel(config).parameters())
    stored = stored_elements(files, _load_bin)
    if wanted > stored:
        raise ValueError(f"{folder}/{CONFIG_FILE} describes a CLIP text model of {wanted:,} "
                         f"parameters but its weights hold {stored:,} numbers: the config does "
                         "not belong to these weights; not built")


def _read_marker(folder: Path) -> dict:
    path = folder / MARKER_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _pick_device(device: str | None) -> str:
    import torch

    return device or ("cuda" if torch.cuda.is_available() else "cpu")


class TextEncoder:
    """Texts -> ``(N, E)`` float32 CLIP text embeddings (``pooler_output``), deterministic.

    Every text is cut to the model's ``max_tokens`` (77 for CLIP, its start and end tokens
    included) and padded to that length with ``<|endoftext|>``, as CLIP itself encodes: a
    text's embedding does not depend on the other texts in the call."""

    def __init__(self, model, tokenizer, provenance: dict) -> None:
        self._model = model
        self._tokenizer = tokenizer
        self._provenance = provenance

    @property
    def dim(self) -> int:
        """E, the model's hidden size."""
        return int(self._provenance["dim"])

    @property
    def max_tokens(self) -> int:
        return int(self._provenance["max_tokens"])

    @property
    def provenance(self) -> dict:
        """What made these embeddings (a copy): weights and tokenizer hashes, size, flags."""
        return dict(self._provenance)

    def tokenize(self, texts: list[str]) -> dict:
        """The model's inputs for ``texts``: ``input_ids`` and ``attention_mask``, int64
        ``(N, max_tokens)`` tensors."""
        if isinstance(texts, str):  # a bare string would be encoded character by character
            raise TypeError("TextEncoder takes a list of texts, not one string")
        texts = list(texts)
        if not texts:  # transformers' batch tokenizer fails on an empty batch
            import torch

            empty = torch.zeros((0, self.max_tokens), dtype=torch.int64)
            return {"input_ids": empty, "attention_mask": empty.clone()}
        return self._tokenizer(texts, padding="max_length", truncation=True,
                               max_length=self.max_tokens, return_tensors="pt")

    def __call__(self, texts: list[str]) -> np.ndarray:
        import torch

        inputs = self.tokenize(texts)
        if len(inputs["input_ids"]) == 0:
            return np.zeros((0, self.dim), np.float32)
        device = next(self._model.parameters()).device
        parts = []
        with torch.inference_mode():
            for start in range(0, len(inputs["input_ids"]), BATCH):
                batch = {k: v[start:start + BATCH].to(device) for k, v in inputs.items()}
                parts.append(self._model(**batch).pooler_output.float().cpu().numpy())
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


def load_text_encoder(folder: str | Path | None, device: str | None = None, *,
                      allow_untrained: bool = False) -> TextEncoder:
    """The CLIP text encoder saved in ``folder`` (``save_pretrained`` of a ``CLIPTextModel``
    or a whole ``CLIPModel``, and of its ``CLIPTokenizer``), on ``device`` (CUDA when there is
    one, else CPU, when None). A model marked untrained is refused unless ``allow_untrained``.
    """
    folder, weights, tokenizer_files = _check_folder(folder)
    marker = _read_marker(folder)
    untrained = check_untrained(folder, "CLIP text encoder", allow_untrained)
    if marker.get("untrained") and not (untrained or allow_untrained):
        raise UntrainedWeightsError(
            f"CLIP text encoder at {folder} is marked untrained ({MARKER_FILE}): its output is "
            "noise. Provide CLIP's weights, or allow untrained models (tests only).")
    untrained = untrained or bool(marker.get("untrained"))
    _check_size(folder, weights)
    import torch
    from transformers import CLIPTextModel, CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(str(folder), local_files_only=True)
    model, info = CLIPTextModel.from_pretrained(
        str(folder), local_files_only=True, dtype=torch.float32, weights_only=True,
        use_safetensors=weights[0].suffix == ".safetensors", output_loading_info=True)
    if info.get("missing_keys") or info.get("mismatched_keys"):
        raise ValueError(f"{folder}: the weights lack {sorted(info.get('missing_keys', []))}"
                         f" or mismatch {info.get('mismatched_keys', [])}: transformers would "
                         "fill them with random numbers; not loaded")
    config = model.config
    if len(tokenizer) > config.vocab_size:
        raise ValueError(f"{folder}: the tokenizer has {len(tokenizer)} tokens, the model's "
                         f"embedding {config.vocab_size}")
    # The model pools at the first id equal to its config's eos_token_id; a config that names
    # another end token than the tokenizer's would pool at the wrong place, silently.
    if config.eos_token_id not in (LEGACY_EOS_ID, tokenizer.eos_token_id):
        raise ValueError(f"{folder}: config.json's eos_token_id {config.eos_token_id} is not "
                         f"the tokenizer's end of text ({tokenizer.eos_token_id})")
    model = model.to(_pick_device(device)).eval()
    provenance = {
        "name": "clip_text",
        "version": version_of("transformers"),
        "folder": str(folder.resolve()),
        "weights": ", ".join(p.name for p in weights),
        "sha256": weights_sha256(weights),
        "tokenizer_sha256": weights_sha256(tokenizer_files),
        "tokenizer_files": [p.name for p in tokenizer_files],
        "dim": int(config.hidden_size),
        "max_tokens": int(config.max_position_embeddings),
        "vocab_size": int(config.vocab_size),
        "untrained": untrained,
        "seed": marker.get("seed"),
    }
    return TextEncoder(model, tokenizer, provenance)


def write_tiny_text_encoder(folder: Path, seed: int = 0,
                            config: TinyTextEncoderConfig = TinyTextEncoderConfig()) -> Path:
    """Write a small RANDOM ``CLIPTextModel`` (``config``, initialised from ``seed``) with
    CLIP's real vocabulary into ``folder``, marked untrained, for tests and the demo. Refuses
    a folder holding other files (it may be someone's real model). Returns ``folder``."""
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    folder = Path(folder).expanduser()
    if folder.is_dir() and any(folder.iterdir()) and not (folder / MARKER_FILE).is_file():
        raise ValueError(f"{folder} holds files not written by gaia's tiny text encoder; "
                         "choose an empty or new folder")
    write_clip_vocab(folder)
    tokenizer = CLIPTokenizer.from_pretrained(str(folder), local_files_only=True)
    model_config = CLIPTextConfig(
        **asdict(config), bos_token_id=tokenizer.convert_tokens_to_ids(START),
        eos_token_id=tokenizer.convert_tokens_to_ids(END),
        pad_token_id=tokenizer.convert_tokens_to_ids(END))
    with torch.random.fork_rng(devices=[]):  # seeds this model, not the caller's generator
        torch.manual_seed(seed)
        model = CLIPTextModel(model_config).eval()
    model.save_pretrained(str(folder))  # transformers 5 writes model.safetensors only
    (folder / UNTRAINED_MARKER).write_text(
        "Random-initialised CLIP text model for tests (gaia samples text-encoder): not CLIP's "
        "weights, its embeddings are noise.\n", encoding="utf-8")
    (folder / MARKER_FILE).write_text(json.dumps({
        "untrained": True,
        "seed": int(seed),
        "builder": "gaia.text.clip_text.write_tiny_text_encoder",
        "vocabulary": f"{DISTRIBUTION} {version_of(DISTRIBUTION)} {BPE_FILE}",
        "config": asdict(config),
    }, indent=2) + "\n", encoding="utf-8")
    return folder
