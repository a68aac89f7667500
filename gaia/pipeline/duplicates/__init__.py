"""Duplicate footage across a measured run (issue 26, item 4): found from stored measures,
dropped with the reason ``duplicate``.

``signature`` cuts keys from the frame hashes, ``candidates`` pairs videos that share keys at
one offset, ``verify`` decides on their aligned measures, ``find`` ranks the copies and
searches a run, ``table`` stores and checks ``RUN_DIR/duplicates.parquet``. The filter is
``gaia.filters.duplicate``; ``pipeline.measures.read_measures`` gives it its column.
"""
