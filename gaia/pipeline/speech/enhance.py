"""Speech enhancement as the paper denoises its speech (section 4.2 and appendix B: "the audio
is denoised" with Defossez, Synnaeve and Adi 2020, *Real Time Speech Enhancement in the
Waveform Domain*): the causal Demucs of the ``denoiser`` package (facebookresearch/denoiser)
at 16 kHz mono, the rate our speech already has.

Three published models, one class: ``dns48`` (hidden 48), ``dns64`` and ``master64`` (hidden
64, ``master64`` trained on more data). Their files are plain state dicts, so they load with
``torch.load(weights_only=True)``; they are read from a local path, never downloaded
(docs/weights.md): a ``.th`` file, or a folder holding one. A folder with a file named
``UNTRAINED`` holds a randomly initialised model for tests (refused unless allowed, flagged in
the provenance).

Only ``denoiser.demucs`` is imported (it needs torch alone); the package goes in with
``--no-deps`` (Makefile), as its metadata asks for torchaudio, hydra and sounddevice, which
that module never uses. Its code is licensed CC BY-NC 4.0: say so to anyone who ships it.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gaia.common.weights import MissingWeightsError, check_untrained, file_sha256, version_of
from gaia.schemas.shards import AUDIO_RATE

# name -> (hidden channels, where facebookresearch/denoiser publishes the file)
ENHANCERS = {
    "dns48": (48, "https://dl.fbaipublicfiles.com/adiyoss/denoiser/dns48-11decc9d8e3f0998.th"),
    "dns64": (64, "https://dl.fbaipublicfiles.com/adiyoss/denoiser/dns64-a7761ff99a7d5bb6.th"),
    "master64": (64, "https://dl.fbaipublicfiles.com/adiyoss/denoiser/"
                     "master64-8a5dfb4bb92753dd.th"),
}


@dataclass(frozen=True)
class EnhanceSettings:
    """``dry``: share of the input mixed back in (0: only the enhanced speech, the package's
    default); ``device``: torch device of the model."""

    dry: float = 0.0
    device: str = "cpu"


def build_enhancer(name: str):
    """The randomly initialised ``denoiser.demucs.Demucs`` of model ``name`` (its weights go
    in after)."""
    from denoiser.demucs import Demucs

    hidden, _ = ENHANCERS[name]
    return Demucs(hidden=hidden, sample_rate=AUDIO_RATE)


def _weights_file(name: str, weights: str | None) -> Path:
    _, url = ENHANCERS[name]
    if weights is None or not Path(weights).expanduser().exists():
        where = "no weights path given" if weights is None else f"nothing at {weights}"
        raise MissingWeightsError(
            f"--denoise {name} needs the local {name} model ({where}), and this job never "
            f"downloads. On a machine with network access fetch {url}, copy it here and pass "
            f"its path (or its folder) as --denoise-weights PATH. Or use --denoise none.")
    path = Path(weights).expanduser()
    if path.is_file():
        return path
    files = sorted(path.glob("*.th"))
    if len(files) != 1:
        raise MissingWeightsError(f"{path} holds {len(files)} .th files; --denoise {name} "
                                  f"needs the folder of one {name} model file ({url})")
    return files[0]


class SpeechEnhancer:
    """A loaded speech-enhancement Demucs: 16 kHz mono in, enhanced 16 kHz mono out."""

    def __init__(self, model, provenance: dict, settings: EnhanceSettings) -> None:
        self._model = model.to(settings.device).eval()
        self._settings = settings
        self.provenance = provenance

    def __call__(self, audio_16k: np.ndarray) -> np.ndarray:
        import torch

        signal = np.asarray(audio_16k, np.float32)
        if signal.ndim != 1:
            raise ValueError(f"expected mono audio of shape (samples,), got {signal.shape}")
        if signal.size < 2 or float(signal.std()) <= 1e-6:  # silence: nothing to enhance
            return signal.copy()
        noisy = torch.from_numpy(signal).to(self._settings.device)[None, None]
        with torch.inference_mode():  # the model pads to its valid length and trims back
            clean = self._model(noisy)[0, 0]
        dry = self._settings.dry
        out = (1 - dry) * clean + dry * noisy[0, 0] if dry else clean
        return out.float().cpu().numpy().astype(np.float32)


def load_enhancer(name: str, weights: str | None, allow_untrained: bool = False,
                  settings: EnhanceSettings | None = None) -> SpeechEnhancer:
    """The ``name`` model (``ENHANCERS``) from the local ``weights`` file or folder."""
    import torch

    path = _weights_file(name, weights)
    untrained = check_untrained(path.parent, f"{name} speech enhancer", allow_untrained)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # objects other than tensors: never unpickled
        raise ValueError(f"{path} holds Python objects, not only tensors (refused: loading "
                         f"them would run their code); the published {name} file is a plain "
                         f"state dict ({ENHANCERS[name][1]})") from None
    model = build_enhancer(name)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as err:
        raise ValueError(f"{path} is not a {name} model of the denoiser package (its tensors "
                         f"do not fit: {str(err)[:200]}); give the file published at "
                         f"{ENHANCERS[name][1]}") from err
    settings = settings or EnhanceSettings()
    provenance = {
        "name": name, "package": "denoiser", "version": version_of("denoiser"),
        "weights": path.name, "sha256": file_sha256(path), "untrained": untrained,
        "hidden": ENHANCERS[name][0], "dry": settings.dry,
    }
    return SpeechEnhancer(model, provenance, settings)
