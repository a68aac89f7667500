"""Filters that decide a frame from the whole run, not from its own video's measures alone.

Their per-frame column is derived from a run-wide table when measures are read
(``gaia.pipeline.measures.DERIVED``); the decision itself is pure NumPy like every filter's.
``duplicate``: footage a better copy in the run holds (``duplicates.parquet``).
"""
