"""Pure NumPy curation decisions: one module per filter (its reference function and spec).

Importing the package registers the built-in filters (``gaia.filters.registry``), so reason
codes and specs are ready whichever filter module is imported first.
"""

from gaia.filters import registry as _registry  # noqa: F401  (registers the built-ins)
