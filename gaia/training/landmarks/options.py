"""What ``gaia train landmarks`` takes (paper, section 5.4): the s2m trainer's options,
over clip shards. Apart from the trainer so that building the CLI's parser imports no torch."""

from __future__ import annotations

from dataclasses import dataclass

from gaia.training.s2m.options import S2mTrainOptions


@dataclass(frozen=True)
class LandmarkTrainOptions(S2mTrainOptions):
    """As ``S2mTrainOptions``; ``shards`` are clip shards (``gaia curate run``), and
    ``stats`` a ``landmark_stats.json`` to reuse (default: computed from the shards' train
    split and written to the run folder)."""
