"""GAIA: curate talking-head video and train zero-shot talking-avatar models on it.

Packages, and what each may import (docs/architecture.md):

- ``gaia.schemas``: every on-disk format (pyarrow schemas, shard spec); pyarrow and numpy only.
- ``gaia.filters``: pure NumPy measures, thresholds and segmenting; numpy and schemas only.
- ``gaia.pipeline``: Ray Data jobs, decoding, detectors and extractors; anything above, and ray.
- ``gaia.training``: models, losses, loaders and trainers; torch, webdataset and schemas.
- ``gaia.samples``: builds small test and demo media from real media shipped in packages.
"""

__version__ = "0.1.0"
