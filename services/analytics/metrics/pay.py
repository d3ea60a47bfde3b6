"""Gender pay gap (男女の賃金の差異) from the payroll of each fiscal year.

Three metrics, one per population the law asks for: ``gender_pay_gap`` (all workers),
``gender_pay_gap_regular`` and ``gender_pay_gap_non_regular`` (by the payroll row's
employment_type). Value = mean annual_wage of women ÷ mean annual_wage of men × 100, rounded
half up at the 2nd decimal to 1 decimal, computed exactly in integers. Only rows with gender
female or male take part. Null when there is no woman, no man, or the men's wages add up to 0.

``n`` is the smaller of the numbers of women and of men: each mean is published in the basis
(``numerator`` = women's mean wage, ``denominator`` = men's mean wage), and a mean over fewer
people than the minimum group size would show their wages.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from services.analytics.metrics.breakdowns import aggregate
from services.analytics.metrics.catalog import CATALOG
from services.analytics.metrics.datasets import stack_payroll
from services.analytics.metrics.result import cells
from services.analytics.metrics.rounding import half_up_1

__all__ = ["pay_cells"]

_VARIANTS = {
    "gender_pay_gap": None,
    "gender_pay_gap_regular": "regular",
    "gender_pay_gap_non_regular": "non_regular",
}


def pay_cells(payroll_by_year: Mapping[str, pl.DataFrame]) -> pl.LazyFrame | None:
    """The three gender pay gap metrics from the payroll by fiscal year."""
    payroll = stack_payroll(payroll_by_year)
    if payroll is None:
        return None
    female = pl.col("gender") == "female"
    male = pl.col("gender") == "male"
    wage = pl.col("annual_wage")
    rows = payroll.select(
        "period",
        pl.col("company_code").alias("company"),
        "employment_type",
        female.cast(pl.Int64).alias("woman"),
        male.cast(pl.Int64).alias("man"),
        pl.when(female).then(wage).otherwise(0).alias("women_wage"),
        pl.when(male).then(wage).otherwise(0).alias("men_wage"),
    )
    table = aggregate(
        rows,
        [
            pl.col("woman").sum().alias("women"),
            pl.col("man").sum().alias("men"),
            pl.col("women_wage").sum().alias("women_wages"),
            pl.col("men_wage").sum().alias("men_wages"),
        ],
        ["employment_type"],
        additive=True,
    ).lazy()
    women, men = pl.col("women"), pl.col("men")
    women_wages, men_wages = pl.col("women_wages"), pl.col("men_wages")
    parts = []
    for key, employment_type in _VARIANTS.items():
        if employment_type is None:
            variant = table.filter(pl.col("group_by").is_null())
        else:
            variant = table.filter(
                pl.col("group_by") == "employment_type", pl.col("group") == employment_type
            ).with_columns(group_by=pl.lit(None, pl.String), group=pl.lit(None, pl.String))
        parts.append(
            cells(
                variant,
                CATALOG[key],
                # (women_wages ÷ women) ÷ (men_wages ÷ men) × 100
                value=half_up_1(women_wages * men * 100, women * men_wages),
                n=pl.min_horizontal(women, men),
                numerator=pl.when(women > 0).then(women_wages / women),
                denominator=pl.when(men > 0).then(men_wages / men),
            )
        )
    return pl.concat(parts, how="vertical")
