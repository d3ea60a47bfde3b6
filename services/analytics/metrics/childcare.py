"""Male childcare-leave rates (育児休業等の取得割合) from the childcare history, per fiscal year.

A child is one (employee_id, child_birth_date): twins are one birth, and several rows for one
child (a leave split in two, childcare leave and purpose leave) are one child. Only rows with
gender male take part.

- Denominator(FY): children born in the FY.
- ``male_childcare_leave_rate``(FY): children whose FIRST childcare_leave (earliest
  leave_start_date of that type for the child) started in the FY, whatever FY the child was
  born in: a child born in March and on leave from April counts in the birth FY's
  denominator and the next FY's numerator (so a rate can exceed 100).
- ``male_childcare_leave_or_purpose_rate``(FY): children for whom, in the FY, the first
  childcare_leave started or the first childcare_purpose_leave started, each child once per
  FY. A child whose first purpose leave and first childcare leave fall in different FYs
  counts in both, which keeps this rate never below the first one in any FY.
- × 100, truncated to an integer; null when no child was born in the FY. ``n`` = the births.

Per company, the same is computed over that company's rows (a child whose rows name two
companies counts in each); the whole group's figure counts each child once.
"""

from __future__ import annotations

import polars as pl

from services.analytics.metrics.catalog import CATALOG
from services.analytics.metrics.datasets import CHILDCARE_COLUMNS, typed
from services.analytics.metrics.periods import fiscal_year_of_date
from services.analytics.metrics.result import cells
from services.analytics.metrics.rounding import truncate_0

__all__ = ["childcare_cells"]

_LEAVE = "childcare_leave"
_PURPOSE = "childcare_purpose_leave"


def _table(men: pl.LazyFrame, start: int, *, per_company: bool) -> pl.LazyFrame:
    """Per FY (and company): births, leave (first childcare leave), either (first of either)."""
    scope = ["company_code"] if per_company else []
    child = ["employee_id", "child_birth_date", *scope]
    births = (
        men.select(*child)
        .unique()
        .group_by(fiscal_year_of_date(pl.col("child_birth_date"), start).alias("period"), *scope)
        .agg(pl.len().cast(pl.Int64).alias("births"))
    )
    firsts = (
        men.filter(pl.col("leave_type").is_in([_LEAVE, _PURPOSE]))
        .group_by(*child, "leave_type")
        .agg(pl.col("leave_start_date").min())
        .with_columns(fiscal_year_of_date(pl.col("leave_start_date"), start).alias("period"))
        .filter(pl.col("period").is_not_null())
    )
    leave = (
        firsts.filter(pl.col("leave_type") == _LEAVE)
        .group_by("period", *scope)
        .agg(pl.len().cast(pl.Int64).alias("leave"))
    )
    either = (
        firsts.select(*child, "period")
        .unique()
        .group_by("period", *scope)
        .agg(pl.len().cast(pl.Int64).alias("either"))
    )
    keys = ["period", *scope]
    table = births.join(leave, on=keys, how="full", coalesce=True).join(
        either, on=keys, how="full", coalesce=True
    )
    return table.select(
        "period",
        (pl.col("company_code") if per_company else pl.lit(None, pl.String)).alias("company"),
        pl.lit(None, pl.String).alias("group_by"),
        pl.lit(None, pl.String).alias("group"),
        pl.col("births", "leave", "either").fill_null(0),
    )


def childcare_cells(childcare: pl.DataFrame | None, start: int) -> pl.LazyFrame | None:
    """Both male childcare-leave rates, per company and for the group, per fiscal year."""
    if childcare is None:
        return None
    men = typed(childcare, CHILDCARE_COLUMNS).filter(pl.col("gender") == "male")
    table = pl.concat(
        [_table(men, start, per_company=True), _table(men, start, per_company=False)],
        how="vertical",
    )
    births = pl.col("births")
    return pl.concat(
        [
            cells(
                table,
                CATALOG[key],
                value=truncate_0(pl.col(taken) * 100, births),
                n=births,
                numerator=pl.col(taken),
                denominator=births,
            )
            for key, taken in (
                ("male_childcare_leave_rate", "leave"),
                ("male_childcare_leave_or_purpose_rate", "either"),
            )
        ],
        how="vertical",
    )
