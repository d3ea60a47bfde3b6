"""Breakdown cells: per company and for the whole group, in total and by each dimension.

Rows going in carry ``period``, ``company`` (String; null when unknown, e.g. an attendance row
whose employee is in no snapshot) and one column per breakdown dimension. :func:`aggregate`
gives one table keyed by ``period``, ``company`` (null = the whole group), ``group_by`` (null =
no breakdown) and ``group`` (the dimension's value as String), with the aggregated columns.
A row with an unknown company counts only in the whole group's cells.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from services.analytics.metrics.catalog import Dimension

__all__ = ["age_band", "aggregate", "completed_years"]

_STRING_NULL = pl.lit(None, pl.String)


def completed_years(birth: pl.Expr, on: pl.Expr) -> pl.Expr:
    """Age in completed years on a date: a birthday counts from its own date (a 29 February
    birthday from 1 March in common years)."""
    day_of_year = [
        (d.dt.month().cast(pl.Int32) * 100 + d.dt.day().cast(pl.Int32)) for d in (birth, on)
    ]
    before_birthday = (day_of_year[0] > day_of_year[1]).cast(pl.Int32)
    return on.dt.year().cast(pl.Int32) - birth.dt.year().cast(pl.Int32) - before_birthday


def age_band(birth: pl.Expr, on: pl.Expr) -> pl.Expr:
    """ "<30", "30-39", "40-49" or "50+" by completed years on ``on``; null without a birth date."""
    age = completed_years(birth, on)
    return (
        pl.when(age < 30)
        .then(pl.lit("<30"))
        .when(age < 40)
        .then(pl.lit("30-39"))
        .when(age < 50)
        .then(pl.lit("40-49"))
        .when(age.is_not_null())
        .then(pl.lit("50+"))
    )


def _shape(
    frame: pl.LazyFrame, dimension: str | None, names: Sequence[str], *, per_company: bool
) -> pl.LazyFrame:
    return frame.select(
        "period",
        pl.col("company") if per_company else _STRING_NULL.alias("company"),
        pl.lit(dimension, pl.String).alias("group_by"),
        (_STRING_NULL if dimension is None else pl.col(dimension).cast(pl.String)).alias("group"),
        *names,
    )


def aggregate(
    rows: pl.LazyFrame,
    aggs: Sequence[pl.Expr],
    dimensions: Sequence[Dimension],
    *,
    additive: bool,
) -> pl.DataFrame:
    """``aggs`` per period × (each company, the group) × (total, each value of each dimension).

    ``additive`` says every aggregate is a sum or a count, so the group's cells are the sums of
    the companies' and a total the sum over a dimension's values: the rows are then grouped once
    per dimension and the rest is added up from those small tables. Otherwise (e.g. distinct
    people) every cell is aggregated from the rows. The big group-bys run in one parallel
    collect; pass ``rows`` materialised (``frame.lazy()``) so that they share it.
    """
    names = [agg.meta.output_name() for agg in aggs]
    known = pl.col("company").is_not_null()
    parts: list[pl.LazyFrame] = []
    if additive and dimensions:
        add_up = [pl.col(name).sum() for name in names]
        grouped = pl.collect_all(
            [rows.group_by("period", "company", d).agg(aggs) for d in dimensions]
        )
        for dim, frame in zip(dimensions, grouped, strict=True):
            per_company = frame.lazy()
            parts += [
                _shape(per_company.filter(known), dim, names, per_company=True),
                _shape(
                    per_company.group_by("period", dim).agg(add_up), dim, names, per_company=False
                ),
            ]
        total = grouped[0].lazy().group_by("period", "company").agg(add_up)
        parts += [
            _shape(total.filter(known), None, names, per_company=True),
            _shape(total.group_by("period").agg(add_up), None, names, per_company=False),
        ]
    else:
        for breakdown in (None, *dimensions):
            by = [] if breakdown is None else [breakdown]
            parts += [
                _shape(
                    rows.filter(known).group_by("period", "company", *by).agg(aggs),
                    breakdown,
                    names,
                    per_company=True,
                ),
                _shape(rows.group_by("period", *by).agg(aggs), breakdown, names, per_company=False),
            ]
    return pl.concat(parts, how="vertical_relaxed").collect()
