"""Speech denoising before feature extraction (docs/shards.md: ``KEY.flac`` and its features).

The paper's speech features come from clean speech; in-the-wild clips carry music and noise.
The backends:

- ``none``: identity (the default).
- ``dns48``, ``dns64``, ``master64``: the paper's speech enhancer (Defossez et al. 2020, the
  ``denoiser`` package), in ``speech.enhance``.
- ``demucs``: Demucs source separation, keeping its ``vocals`` stem. Demucs works at its own
  rate (44.1 kHz stereo): the 16 kHz mono clip is resampled up (polyphase, scipy), copied to
  every channel, separated, and the vocals are averaged to mono and resampled back to 16 kHz,
  trimmed to the input's length. The model is read from a local path, never downloaded
  (docs/weights.md): a ``.safetensors`` file (demucs's Hugging Face format), a ``.th``
  file (demucs's own format), a bag ``.yaml`` beside its model files, or a folder holding one
  bag ``.yaml`` (or one model file).

A ``.th`` file is a pickle: a general unpickler would run whatever code it holds. It is refused
unless the caller trusts it (``trust_pickle=True``, ``--trust-pickled-weights``), and even then
it is read by torch's weights-only unpickler (``torch.load(weights_only=True)``) with only
demucs's model classes and ``fractions.Fraction`` (its segment lengths) allowed as globals, in
``_unpickle_trusted``: a file naming anything else is refused. The provenance says
``trusted_pickle: true``. A ``.safetensors`` file holds tensors and JSON only, but demucs's own
reader imports and calls the class its metadata names: that name is checked against demucs's
model classes first.

A folder holding a file named ``UNTRAINED`` is a random-initialised model for tests: it is
refused unless ``allow_untrained=True``, and its provenance says ``untrained: true``.

Only ``demucs.apply``, ``demucs.states`` and ``demucs.hf`` are imported: they need julius,
einops, tqdm and PyYAML, not torchaudio (demucs is installed with ``--no-deps``; see Makefile).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from gaia.common.weights import (
    MissingWeightsError,
    check_untrained,
    file_sha256,
    version_of,
    weights_sha256,
)
from gaia.schemas.shards import AUDIO_RATE

# demucs's Hugging Face repository of htdemucs (demucs.hf: NAME.yaml and SIG.safetensors).
HTDEMUCS_HF = "https://huggingface.co/adefossez/HTDemucs (htdemucs.yaml, 955717e8.safetensors)"
MODEL_SUFFIXES = (".th", ".safetensors")
# The model classes a demucs file may name: the ones demucs's published models use.
MODEL_CLASSES = ("demucs.demucs.Demucs", "demucs.hdemucs.HDemucs", "demucs.htdemucs.HTDemucs")


class PickledWeightsError(ValueError):
    """A weight file is a pickle (loading it runs its code) and the caller did not trust it."""


class Denoiser(Protocol):
    provenance: dict

    def __call__(self, audio_16k: np.ndarray) -> np.ndarray: ...


def fit_length(signal: np.ndarray, length: int) -> np.ndarray:
    """``signal`` trimmed or zero-padded at the end to exactly ``length`` samples, float32."""
    out = np.zeros(length, np.float32)
    out[: min(length, signal.size)] = signal[:length]
    return out


class IdentityDenoiser:
    """``none``: the audio as it is."""

    def __init__(self) -> None:
        self.provenance = {"name": "none", "version": "", "weights": "none", "sha256": "",
                           "untrained": False}

    def __call__(self, audio_16k: np.ndarray) -> np.ndarray:
        return np.asarray(audio_16k, np.float32).copy()


@dataclass(frozen=True)
class DemucsSettings:
    """How the separation runs. ``overlap``: between demucs's segments; ``source``: the stem
    kept; ``device``: torch device of the model."""

    source: str = "vocals"
    overlap: float = 0.25
    device: str = "cpu"


class DemucsDenoiser:
    """A loaded Demucs model (or bag) that keeps the vocals of a 16 kHz mono clip."""

    def __init__(self, model, provenance: dict, settings: DemucsSettings) -> None:
        if settings.source not in model.sources:
            raise ValueError(f"demucs model has sources {model.sources}, not {settings.source!r}")
        self._model = model.to(settings.device).eval()
        self._settings = settings
        self.provenance = provenance

    def __call__(self, audio_16k: np.ndarray) -> np.ndarray:
        import torch
        from demucs.apply import apply_model
        from scipy.signal import resample_poly

        signal = np.asarray(audio_16k, np.float32)
        if signal.ndim != 1:
            raise ValueError(f"expected mono audio of shape (samples,), got {signal.shape}")
        rate = int(self._model.samplerate)
        common = math.gcd(rate, AUDIO_RATE)
        up, down = rate // common, AUDIO_RATE // common
        if signal.size < 2:
            return signal.copy()
        mix = torch.from_numpy(resample_poly(signal, up, down).astype(np.float32))
        mean, std = float(mix.mean()), float(mix.std())
        if std <= 1e-6:  # silence: nothing to separate
            return signal.copy()
        # Demucs's own recipe: normalise the mixture, separate, undo the normalisation.
        stereo = ((mix - mean) / std).expand(self._model.audio_channels, -1)
        with torch.inference_mode():
            stems = apply_model(self._model, stereo[None], shifts=0, split=True,
                                overlap=self._settings.overlap, progress=False,
                                device=self._settings.device)[0]
        voice = stems[self._model.sources.index(self._settings.source)].mean(0) * std + mean
        back = resample_poly(voice.cpu().numpy().astype(np.float64), down, up)
        return fit_length(back.astype(np.float32), signal.size)


def _missing(what: str) -> MissingWeightsError:
    return MissingWeightsError(
        f"--denoise demucs needs a local Demucs model ({what}), and this job never downloads. "
        f"On a machine with network access fetch htdemucs from {HTDEMUCS_HF}, copy the folder "
        "to this machine and pass its path as the denoise weights (--denoise-weights PATH). "
        "PATH may be a .safetensors or .th model file (.th is a pickle: it also needs "
        "--trust-pickled-weights), a bag .yaml beside its model files, or a folder holding one "
        "bag .yaml or one model file. Or use --denoise none."
    )


def _refuse_pickle(path: Path) -> PickledWeightsError:
    return PickledWeightsError(
        f"{path} is a pickle (demucs's .th format): loading it runs any code it holds, so it "
        f"is refused. Use the same model as .safetensors, which holds tensors only (demucs's "
        f"Hugging Face format; htdemucs: {HTDEMUCS_HF}), or, if you trust where the file came "
        "from, pass --trust-pickled-weights (the provenance then records trusted_pickle: true)."
    )


def _model_file(folder: Path, signature: str) -> Path:
    """The file of model ``signature`` in ``folder``: ``SIG.safetensors``, ``SIG.th`` or
    ``SIG-CHECKSUM.th``; missing, a ``MissingWeightsError`` with its download address."""
    found = [folder / f"{signature}{suffix}" for suffix in MODEL_SUFFIXES]
    found = [p for p in found if p.is_file()] + sorted(folder.glob(f"{signature}-*.th"))
    if found:
        return found[0]
    try:  # demucs's list of published models gives the exact address
        from demucs.pretrained import REMOTE_ROOT, _parse_remote_files

        url = _parse_remote_files(REMOTE_ROOT / "files.txt").get(signature, "")
    except Exception:
        url = ""
    where = f" (published at {url})" if url else ""
    raise MissingWeightsError(
        f"demucs model file {signature}.th{where} is missing from {folder}: its bag needs it. "
        "Fetch it on a machine with network access and copy it into that folder."
    )


def _check_safetensors(path: Path) -> None:
    """Refuse a ``.safetensors`` file whose metadata names a class demucs would import and
    call that is not one of its model classes (``MODEL_CLASSES``)."""
    import json

    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    named = [metadata.get("klass")]
    named += [node["_class"] for node in _nodes(json.loads(metadata.get("structure", "null")))
              if isinstance(node, dict) and "_class" in node]
    if strangers := [name for name in named if name not in MODEL_CLASSES]:
        raise ValueError(f"{path} is not a demucs model file: its metadata names {strangers} "
                         f"where one of demucs's model classes ({', '.join(MODEL_CLASSES)}) "
                         "belongs")


# The largest demucs model (htdemucs, hdemucs_mmi) holds about 84M values; a denoiser asking
# for more than this is not one of them, whatever its metadata says.
MAX_MODEL_VALUES = 200_000_000


def check_model_size(path: Path, klass, args, kwargs, shapes: list[tuple[int, ...]]) -> None:
    """Refuse, before anything is allocated, a model whose settings (read from the weights
    file) do not fit the file's own tensors or ask for more than ``MAX_MODEL_VALUES``: the
    class is built on torch's meta device (shapes only, no memory) and its state's shapes are
    compared, as a multiset, with the shapes the file holds."""
    from collections import Counter

    import torch

    try:
        with torch.device("meta"):
            model = klass(*args, **kwargs)
    except Exception as err:  # settings the class itself rejects
        raise ValueError(f"{path}: its model settings do not build a "
                         f"{klass.__name__} ({type(err).__name__}: {err})") from None
    wanted = [tuple(t.shape) for t in model.state_dict().values()]
    values = sum(int(np.prod(shape)) for shape in wanted)
    if values > MAX_MODEL_VALUES:
        raise ValueError(f"{path}: its settings ask for a {klass.__name__} of {values:,} values, "
                         f"over the {MAX_MODEL_VALUES:,} any demucs model holds; not loaded")
    if Counter(wanted) != Counter(tuple(s) for s in shapes):
        raise ValueError(f"{path}: its model settings describe a {klass.__name__} whose "
                         f"tensors ({len(wanted)}, {values:,} values) are not the file's "
                         f"({len(shapes)}); not loaded")


def _nodes(tree):
    """Every dict and list in a JSON tree, the tree first."""
    yield tree
    children = tree.values() if isinstance(tree, dict) else tree if isinstance(tree, list) else ()
    for child in children:
        yield from _nodes(child)


def _unpickle_trusted(path: Path) -> dict:
    """The one place a ``.th`` package is read: torch's weights-only unpickler, with demucs's
    model classes and ``Fraction`` as the only globals it may name (module docstring)."""
    import fractions
    import importlib
    import pickle

    import torch

    allowed = [fractions.Fraction]
    for name in MODEL_CLASSES:
        module, _, klass = name.rpartition(".")
        allowed.append(getattr(importlib.import_module(module), klass))
    try:
        with torch.serialization.safe_globals(allowed):
            package = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # torch's text is not repeated: it advises weights_only=False, which would run the file
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        named = f" ({found.group(1)})" if found else ""
        raise ValueError(f"{path} names more than demucs's model classes and tensors{named}, "
                         "so it is not trusted and not read; convert it to .safetensors") from None
    if not isinstance(package, dict) or "klass" not in package:
        raise ValueError(f"{path} is not a demucs model package (no 'klass')")
    return package


def _load_file(path: Path, trust_pickle: bool):
    if path.suffix == ".safetensors":
        from demucs.hf import load_safetensors_model

        _check_safetensors(path)
        _check_safetensors_size(path)
        return load_safetensors_model(path)
    if not trust_pickle:
        raise _refuse_pickle(path)
    from demucs.states import load_model

    stem = path.stem
    if "-" in stem:  # SIG-CHECKSUM.th: the name carries a prefix of the file's SHA-256
        expected = stem.rsplit("-", 1)[1]
        if not file_sha256(path).startswith(expected):
            raise ValueError(f"{path} is corrupt: its SHA-256 does not start with {expected}")
    package = _unpickle_trusted(path)
    state = package.get("state") or {}
    shapes = [tuple(t.shape) for t in _tensors(state)]
    check_model_size(path, package["klass"], package.get("args") or (),
                     package.get("kwargs") or {}, shapes)
    return load_model(package)


def _tensors(tree):
    """Every tensor in a nested state (dicts and lists of tensors)."""
    import torch

    if isinstance(tree, torch.Tensor):
        yield tree
    elif isinstance(tree, dict):
        for value in tree.values():
            yield from _tensors(value)
    elif isinstance(tree, list | tuple):
        for value in tree:
            yield from _tensors(value)


def _check_safetensors_size(path: Path) -> None:
    """``check_model_size`` from the file's header: class and settings from its metadata,
    shapes from its tensor index (no tensor is read)."""
    import importlib
    import json

    from demucs.hf import _decode_json
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
        shapes = [tuple(handle.get_slice(key).get_shape())
                  for key in handle.keys()]  # noqa: SIM118 (a safetensors handle, no dict)
    try:
        module, name = metadata["klass"].rsplit(".", 1)
        klass = getattr(importlib.import_module(module), name)
        args = _decode_json(json.loads(metadata.get("args", "[]")))
        kwargs = _decode_json(json.loads(metadata.get("kwargs", "{}")))
    except (KeyError, ValueError, AttributeError, ImportError) as err:
        raise ValueError(f"{path}: unreadable model metadata ({type(err).__name__}: {err})") \
            from None
    check_model_size(path, klass, args, kwargs, shapes)


def _resolve(weights: Path) -> tuple[Path | None, list[Path]]:
    """The bag ``.yaml`` (or None) and the model files that ``weights`` points at."""
    if weights.is_file():
        if weights.suffix == ".yaml":
            import yaml

            bag = yaml.safe_load(weights.read_text(encoding="utf-8")) or {}
            signatures = bag.get("models") or []
            if not signatures:
                raise ValueError(f"{weights} lists no demucs models")
            return weights, [_model_file(weights.parent, str(s)) for s in signatures]
        if weights.suffix in MODEL_SUFFIXES:
            return None, [weights]
        raise ValueError(f"{weights} is not a demucs model (.th, .safetensors or bag .yaml)")
    bags = sorted(weights.glob("*.yaml"))
    files = sorted(p for p in weights.iterdir() if p.suffix in MODEL_SUFFIXES)
    if len(bags) == 1:
        return _resolve(bags[0])
    if not bags and len(files) == 1:
        return None, files
    if not bags and not files:
        raise _missing(f"no .yaml, .th or .safetensors in {weights}")
    choices = ", ".join(p.name for p in bags or files)
    raise ValueError(f"{weights} holds several demucs models ({choices}): point at one of them")


def load_demucs(weights: str | None, allow_untrained: bool = False,
                settings: DemucsSettings | None = None,
                trust_pickle: bool = False) -> DemucsDenoiser:
    """A ``DemucsDenoiser`` from the local model at ``weights`` (see the module docstring);
    ``.th`` files only with ``trust_pickle``."""
    if weights is None:
        raise _missing("no weights path given")
    path = Path(weights).expanduser()
    if not path.exists():
        raise _missing(f"nothing at {path}")
    untrained = check_untrained(path if path.is_dir() else path.parent, "demucs model",
                                allow_untrained)
    bag_file, files = _resolve(path)
    models = [_load_file(f, trust_pickle) for f in files]
    if bag_file is None:
        model = models[0]
    else:
        import yaml
        from demucs.apply import BagOfModels

        bag = yaml.safe_load(bag_file.read_text(encoding="utf-8"))
        model = BagOfModels(models, bag.get("weights"), bag.get("segment"))
    hashed = ([bag_file] if bag_file else []) + files
    settings = settings or DemucsSettings()
    provenance = {
        "name": "demucs",
        "model": bag_file.stem if bag_file else type(model).__name__,
        "version": version_of("demucs"),
        "weights": ", ".join(p.name for p in hashed),
        "sha256": weights_sha256(hashed),
        "untrained": untrained,
        "source": settings.source,
        "model_rate_hz": int(model.samplerate),
        "trusted_pickle": any(f.suffix == ".th" for f in files),
    }
    return DemucsDenoiser(model, provenance, settings)


DENOISERS = ("none", "dns48", "dns64", "master64", "demucs")
# What says which denoised audio a model's speech features were made from (the feature
# provenance carries it: features of other audio are other features).
IDENTITY_KEYS = ("name", "weights", "sha256", "untrained")


def denoise_identity(provenance: dict) -> dict:
    """The part of a denoiser's provenance that identifies its output (``IDENTITY_KEYS``)."""
    return {key: provenance.get(key) for key in IDENTITY_KEYS}


def load_denoiser(name: str, weights: str | None = None, allow_untrained: bool = False,
                  *, device: str = "cpu", trust_pickle: bool = False) -> Denoiser:
    """The denoiser called ``name`` (``DENOISERS``; all but ``none`` read local ``weights``,
    and demucs's ``.th`` pickles only with ``trust_pickle``)."""
    if name == "none":
        return IdentityDenoiser()
    from gaia.pipeline.speech.enhance import ENHANCERS, EnhanceSettings, load_enhancer

    if name in ENHANCERS:
        return load_enhancer(name, weights, allow_untrained, EnhanceSettings(device=device))
    if name == "demucs":
        return load_demucs(weights, allow_untrained, DemucsSettings(device=device),
                           trust_pickle)
    raise ValueError(f"unknown denoiser {name!r}: use one of {', '.join(DENOISERS)}")
