"""The engine's result: one long frame, a row per (metric, period, company, breakdown cell).

Columns (``RESULT_SCHEMA``):

- ``metric`` — a key of :data:`catalog.CATALOG`
- ``period`` — ``"YYYY-MM"`` for a monthly figure, ``"YYYY"`` for a fiscal year
- ``company`` — the company code, or null for the whole group (consolidated)
- ``group_by`` — the breakdown dimension, or null for the total
- ``group`` — the dimension's value (null when the rows have none, e.g. no department)
- ``value`` — the figure, rounded as its definition says; null for a zero denominator
- ``n`` — how many people the cell describes (its denominator population), for suppression
- ``numerator``, ``denominator`` — the unrounded basis of ``value`` (see each metric's module);
  for a count, the count and null
"""

from __future__ import annotations

import polars as pl

from services.analytics.metrics.catalog import Metric

__all__ = ["KEYS", "RESULT_SCHEMA", "cells", "empty_result"]

RESULT_SCHEMA = pl.Schema(
    {
        "metric": pl.String(),
        "period": pl.String(),
        "company": pl.String(),
        "group_by": pl.String(),
        "group": pl.String(),
        "value": pl.Float64(),
        "n": pl.Int64(),
        "numerator": pl.Float64(),
        "denominator": pl.Float64(),
    }
)
KEYS = ("period", "company", "group_by", "group")  # what every aggregated table is keyed by


def cells(
    table: pl.LazyFrame,
    metric: Metric,
    *,
    value: pl.Expr,
    n: pl.Expr,
    numerator: pl.Expr,
    denominator: pl.Expr | None = None,
) -> pl.LazyFrame:
    """Rows of ``metric`` from an aggregated table keyed by :data:`KEYS`, keeping the total and
    the breakdowns the catalog allows for it."""
    allowed = pl.col("group_by").is_null()
    if metric.group_by:
        allowed = allowed | pl.col("group_by").is_in(list(metric.group_by))
    return table.filter(allowed).select(
        pl.lit(metric.key, pl.String).alias("metric"),
        *KEYS,
        value.cast(pl.Float64).alias("value"),
        n.cast(pl.Int64).alias("n"),
        numerator.cast(pl.Float64).alias("numerator"),
        (pl.lit(None) if denominator is None else denominator)
        .cast(pl.Float64)
        .alias("denominator"),
    )


def empty_result() -> pl.DataFrame:
    return pl.DataFrame(schema=RESULT_SCHEMA)
