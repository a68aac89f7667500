"""What ``gaia curate extract`` runs with: how clips are made (``ExtractConfig``), the
train/validation split by identity, and the whole setup loaded and checked before any work
(``check_extract``: thresholds, identities, the audio chain's weights)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from gaia.common.crop import CropConfig
from gaia.filters.thresholds import CurationThresholds, load_thresholds
from gaia.pipeline.extract.video import AudioChain
from gaia.schemas.keys import sanitize


@dataclass(frozen=True)
class ExtractConfig:
    """How clips are made.

    denoise: ``none``; ``dns48``, ``dns64`` or ``master64`` (the paper's speech enhancer,
        ``speech.enhance``); or ``demucs`` (music separation); weights at ``denoise_weights``.
    features: ``logmel`` (no weights) or ``wav2vec2`` (a local model folder, ``features_dir``).
    allow_untrained: accept weights marked untrained (tests); the samples then say so.
    trust_pickled_weights: load a demucs ``.th`` model, a pickle that runs any code it holds
        (refused otherwise; the samples' provenance then says ``trusted_pickle: true``).
    shard_mb: target shard size. val_fraction: share of identities in the validation split.
    max_sync_offset_s: the largest measured lip-sync lag a clip's audio is shifted by; clips
        lagging more are dropped as ``out_of_sync`` (GAIA A.1). SyncNet-style pipelines shift
        by up to about 5 frames at 25 fps, hence 0.2 s.
    shift_audio_by: whose lag shifts a clip's audio: ``syncnet`` (SyncNet's offset, where measure
        had its weights; else no shift), ``weightless`` (the weightless estimator's: noise on
        faces that are not the speaker, so never the default) or ``none``.
    """

    denoise: str = "none"
    denoise_weights: str | None = None
    features: str = "logmel"
    features_dir: str | None = None
    allow_untrained: bool = False
    trust_pickled_weights: bool = False
    shard_mb: float = 256.0
    val_fraction: float = 0.05
    max_sync_offset_s: float = 0.2
    shift_audio_by: str = "syncnet"
    crop: CropConfig = field(default_factory=CropConfig)

    def __post_init__(self) -> None:
        if not 0 <= self.val_fraction < 1:
            raise ValueError("--val-fraction must be in [0, 1)")
        if not self.max_sync_offset_s >= 0:
            raise ValueError("max_sync_offset_s must be zero or more")
        if self.shift_audio_by not in ("syncnet", "weightless", "none"):
            raise ValueError("shift_audio_by must be syncnet, weightless or none")
        if self.shard_mb <= 0:
            raise ValueError("--shard-size must be positive")


def split_of(identity: str, val_fraction: float) -> str:
    """``val`` for a stable hash-chosen share of identities, else ``train``.

    Decided per identity, never per clip, so no speaker is in both splits, and stable as the
    corpus grows (adding videos never moves an identity).
    """
    bucket = int(hashlib.sha1(identity.encode("utf-8")).hexdigest()[:8], 16) / 2**32
    return "val" if bucket < val_fraction else "train"


def load_identities(path: str | None) -> dict[str, str]:
    """``path,identity`` (or ``video_id,identity``) rows of a CSV file, if given."""
    if not path:
        return {}
    import csv

    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "identity" not in rows[0]:
        raise ValueError(f"{path}: needs a header with an 'identity' column and 'path' or "
                         "'video_id'")
    column = "path" if "path" in rows[0] else "video_id"
    return {row[column]: sanitize(row["identity"]) for row in rows}


def audio_chain(config: ExtractConfig) -> AudioChain:
    """The audio steps of every clip: loudness, the denoiser, the speech features (loaded)."""
    from gaia.pipeline.media.loudness import normalize_loudness
    from gaia.pipeline.speech.denoise import load_denoiser
    from gaia.pipeline.speech.features import load_speech_features

    return AudioChain(
        normalize=normalize_loudness,
        denoiser=load_denoiser(config.denoise, config.denoise_weights, config.allow_untrained,
                               trust_pickle=config.trust_pickled_weights),
        features=load_speech_features(config.features, config.features_dir,
                                      config.allow_untrained),
    )


@dataclass(frozen=True)
class ExtractSetup:
    """What an extract runs with, checked before any work: the thresholds (a mistyped preset
    or key fails here, listing the choices), the identities and the loaded audio chain
    (missing weights fail here). ``gaia curate run`` makes it before measuring."""

    preset: str
    overrides: tuple[str, ...]
    config: ExtractConfig
    thresholds: CurationThresholds
    identities: dict[str, str]
    chain: AudioChain


def check_extract(preset: str, overrides: list[str] | None = None,
                  config: ExtractConfig | None = None,
                  identities_csv: str | None = None) -> ExtractSetup:
    """Load and check everything an extract needs; raises before any work is done."""
    config = config or ExtractConfig()
    overrides = tuple(overrides or ())
    thresholds = load_thresholds(preset, list(overrides))
    identities = load_identities(identities_csv)
    return ExtractSetup(preset, overrides, config, thresholds, identities, audio_chain(config))
