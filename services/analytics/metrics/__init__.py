"""The metric engine of the analytics service: pure functions over polars frames.

``compute_all(Datasets(...), fiscal_year_start)`` gives every metric of :data:`CATALOG` as one
long frame (:data:`RESULT_SCHEMA`). Definitions: DATA_FORMATS.md "Metric definitions"; the
choices made where it is silent: docs/analytics.md "Metric engine" and each module's docstring.

- ``catalog`` — the metrics: key, unit, monthly/yearly, allowed breakdowns
- ``datasets`` — the input (:class:`Datasets`) and stacking of dataset versions
- ``periods`` — months and fiscal years
- ``breakdowns`` — per company / whole group, by dimension; age bands
- ``rounding`` — exact half-up and truncation
- ``workforce``, ``working_hours``, ``pay``, ``childcare`` — the metrics, by source
- ``result`` — the result frame; ``engine`` — :func:`compute_all`
"""

from services.analytics.metrics.catalog import CATALOG, DIMENSIONS, METRICS, Metric
from services.analytics.metrics.datasets import Datasets
from services.analytics.metrics.engine import compute_all
from services.analytics.metrics.periods import DEFAULT_FISCAL_YEAR_START
from services.analytics.metrics.result import RESULT_SCHEMA

__all__ = [
    "CATALOG",
    "DEFAULT_FISCAL_YEAR_START",
    "DIMENSIONS",
    "METRICS",
    "RESULT_SCHEMA",
    "Datasets",
    "Metric",
    "compute_all",
]
