"""Build a model only once its settings are known to fit the weights meant for it.

Settings read from a file (a checkpoint's config, a weights file's metadata) decide how much a
constructor allocates; a changed or hostile file could ask for any size before
``load_state_dict`` ever sees a mismatch. So the model is first built on torch's meta device
(shapes, no memory) and its state's names and shapes compared with the tensors in hand; only a
match is built for real.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn


def build_matching(factory: Callable[[], nn.Module], state: Mapping[str, torch.Tensor],
                   what: str) -> nn.Module:
    """``factory()``, once a meta-device build's state has exactly ``state``'s keys and shapes;
    else a ``ValueError`` naming ``what`` and the first difference, with nothing allocated."""
    with torch.device("meta"):
        shape_only = factory()
    wanted = {name: tuple(t.shape) for name, t in shape_only.state_dict().items()}
    given = {name: tuple(t.shape) for name, t in state.items() if isinstance(t, torch.Tensor)}
    if wanted.keys() != given.keys():
        missing = sorted(wanted.keys() - given.keys())
        extra = sorted(given.keys() - wanted.keys())
        raise ValueError(f"{what}: its settings describe another model than its weights "
                         f"(missing {missing[:3]}, unexpected {extra[:3]}); not built")
    for name, shape in wanted.items():
        if given[name] != shape:
            raise ValueError(f"{what}: its settings make {name} {shape}, its weights hold "
                             f"{given[name]}; not built")
    return factory()
