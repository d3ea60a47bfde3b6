"""Workforce metrics from the monthly employees snapshots.

Monthly (period = the snapshot's month, figures at its last day): headcount, hires, exits,
voluntary_exits, female_ratio, female_manager_ratio, manager_ratio, average_age,
average_tenure. Yearly (period = fiscal year): hires, exits, voluntary_exits, turnover_rate,
voluntary_turnover_rate.

- In the headcount: no exit_date, or exit_date after the month's last day (so a leaver on the
  last day is not); every other figure of the month end is over the headcount.
- Hires / exits of a month: hire_date / exit_date inside the month, read from that month's
  snapshot (which lists everyone employed at any time in the month). A fiscal year's hires and
  exits add up its months that have a snapshot; months without one count nothing.
- Turnover rate(FY) = exits in the FY ÷ (sum of the month-end headcounts ÷ the number of the
  FY's months that have a snapshot) × 100. A company or breakdown cell absent from a snapshot
  month has headcount 0 that month. Its ``n`` is that average headcount rounded down.
- Ages and tenures are (month end − date) in days ÷ 365.25; average_age is over the
  headcount with a birth_date (its ``n``). Breakdown cells use each row's attributes in its
  month's snapshot, age_band its completed years at the month end.

Basis columns: counts carry the count as numerator; ratios the two counts; averages the total
years and the number of people; turnover the exits and the average headcount.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

import polars as pl

from services.analytics.metrics.breakdowns import age_band, aggregate
from services.analytics.metrics.catalog import CATALOG, DIMENSIONS
from services.analytics.metrics.datasets import EMPLOYEE_COLUMNS, stack_by_month
from services.analytics.metrics.periods import fiscal_year_of_month, fiscal_year_of_month_expr
from services.analytics.metrics.result import KEYS, cells
from services.analytics.metrics.rounding import half_up_1

__all__ = ["monthly_table", "workforce_cells", "yearly_table"]

_COUNTS = ("hires", "exits", "voluntary_exits")


def _rows(employees: pl.LazyFrame) -> pl.LazyFrame:
    """One row per snapshot row: its cell keys and its flags at the month end."""
    end, start = pl.col("month_end"), pl.col("month_start")
    exit_date = pl.col("exit_date")
    in_headcount = exit_date.is_null() | (exit_date > end)
    exits = exit_date.is_between(start, end)
    female = pl.col("gender") == "female"
    manager = in_headcount & pl.col("is_manager").fill_null(value=False)
    return employees.select(
        "period",
        pl.col("company_code").alias("company"),
        "department",
        "gender",
        "employment_type",
        age_band(pl.col("birth_date"), end).alias("age_band"),
        "job_grade",
        in_headcount.alias("in_headcount"),
        pl.col("hire_date").is_between(start, end).alias("is_hire"),
        exits.alias("is_exit"),
        (exits & (pl.col("exit_reason") == "voluntary")).alias("is_voluntary_exit"),
        (in_headcount & female).alias("is_woman"),
        manager.alias("is_manager"),
        (manager & female).alias("is_female_manager"),
        pl.when(in_headcount).then((end - pl.col("birth_date")).dt.total_days()).alias("age"),
        pl.when(in_headcount).then((end - pl.col("hire_date")).dt.total_days()).alias("tenure"),
    )


def _count(flag: str, name: str) -> pl.Expr:
    return pl.col(flag).sum().cast(pl.Int64).alias(name)


def monthly_table(employees: pl.LazyFrame) -> pl.DataFrame:
    """Per month and cell: headcount, hires, exits, voluntary_exits, women, managers,
    female_managers, aged (people with a birth date), age_days, tenure_days."""
    aggs = [
        _count("in_headcount", "headcount"),
        _count("is_hire", "hires"),
        _count("is_exit", "exits"),
        _count("is_voluntary_exit", "voluntary_exits"),
        _count("is_woman", "women"),
        _count("is_manager", "managers"),
        _count("is_female_manager", "female_managers"),
        pl.col("age").count().cast(pl.Int64).alias("aged"),
        pl.col("age").sum().cast(pl.Int64).alias("age_days"),
        pl.col("tenure").sum().cast(pl.Int64).alias("tenure_days"),
    ]
    return aggregate(_rows(employees).collect().lazy(), aggs, DIMENSIONS, additive=True)


def yearly_table(monthly: pl.DataFrame, months: Iterable[str], start: int) -> pl.DataFrame:
    """Per fiscal year and cell: hires, exits, voluntary_exits, headcount_sum (of the month
    ends) and months (the FY's months with a snapshot)."""
    per_year = Counter(fiscal_year_of_month(month, start) for month in months)
    months_frame = pl.LazyFrame(
        {"period": list(per_year), "months": list(per_year.values())},
        schema={"period": pl.String, "months": pl.Int64},
    )
    return (
        monthly.lazy()
        .with_columns(fiscal_year_of_month_expr(pl.col("period"), start).alias("period"))
        .group_by(*KEYS)
        .agg(pl.col(*_COUNTS).sum(), pl.col("headcount").sum().alias("headcount_sum"))
        .join(months_frame, on="period", how="inner")
        .collect()
    )


def workforce_cells(employees: Mapping[str, pl.DataFrame], start: int) -> pl.LazyFrame | None:
    """Every workforce metric, monthly and yearly, from the snapshots by month."""
    stacked = stack_by_month(employees, EMPLOYEE_COLUMNS)
    if stacked is None:
        return None
    monthly_frame = monthly_table(stacked)
    yearly_frame = yearly_table(monthly_frame, employees, start)
    monthly, yearly = monthly_frame.lazy(), yearly_frame.lazy()
    c = pl.col
    parts = [
        cells(monthly, CATALOG["headcount"], value=c("headcount"), n=c("headcount"),
              numerator=c("headcount")),
        *(cells(table, CATALOG[key], value=c(key), n=c(key), numerator=c(key))
          for table in (monthly, yearly) for key in _COUNTS),
        _ratio(monthly, "female_ratio", "women", "headcount"),
        _ratio(monthly, "female_manager_ratio", "female_managers", "managers"),
        _ratio(monthly, "manager_ratio", "managers", "headcount"),
        _average_years(monthly, "average_age", "age_days", "aged"),
        _average_years(monthly, "average_tenure", "tenure_days", "headcount"),
        _turnover(yearly, "turnover_rate", "exits"),
        _turnover(yearly, "voluntary_turnover_rate", "voluntary_exits"),
    ]  # fmt: skip
    return pl.concat(parts, how="vertical")


def _ratio(table: pl.LazyFrame, key: str, part: str, whole: str) -> pl.LazyFrame:
    """part ÷ whole × 100; n = whole."""
    return cells(
        table,
        CATALOG[key],
        value=half_up_1(pl.col(part) * 100, pl.col(whole)),
        n=pl.col(whole),
        numerator=pl.col(part),
        denominator=pl.col(whole),
    )


def _average_years(table: pl.LazyFrame, key: str, days: str, people: str) -> pl.LazyFrame:
    """mean(days ÷ 365.25) = days × 4 ÷ (people × 1461); n = people."""
    return cells(
        table,
        CATALOG[key],
        value=half_up_1(pl.col(days) * 4, pl.col(people) * 1461),
        n=pl.col(people),
        numerator=pl.col(days) / 365.25,
        denominator=pl.col(people),
    )


def _turnover(yearly: pl.LazyFrame, key: str, exits: str) -> pl.LazyFrame:
    """exits ÷ (headcount_sum ÷ months) × 100 = exits × months × 100 ÷ headcount_sum."""
    return cells(
        yearly,
        CATALOG[key],
        value=half_up_1(pl.col(exits) * pl.col("months") * 100, pl.col("headcount_sum")),
        n=pl.col("headcount_sum") // pl.col("months"),
        numerator=pl.col(exits),
        denominator=pl.col("headcount_sum") / pl.col("months"),
    )
