"""Working-hours metrics from the monthly attendance data.

Monthly: average_overtime_hours, overtime_over_45h_ratio, overtime_over_80h_ratio (over =
strictly more than 45 / 80 hours), over the employees with an attendance row for the month
(their number is ``n``). Yearly: paid_leave_usage_rate = days taken ÷ days granted over the
fiscal year's attendance months × 100; ``n`` = the distinct employees with a row in the cell.

Attendance rows carry no company or attributes. Each month's rows are matched on employee_id
to the employees snapshot of the same month or, when that month has none, to the latest
snapshot before it (one snapshot per month, not searched further back per employee). A row
whose employee is not in that snapshot, or that has no snapshot at or before its month, counts
in the whole group's figures with every breakdown attribute null, and in no company's. Age
bands are taken at the attendance month's end.

Hours and days are taken in units of 1/10,000 (hour or day) before adding up, so sums and the
half-up rounding are exact; a blank paid-leave cell counts as 0.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping

import polars as pl

from services.analytics.metrics.breakdowns import age_band, aggregate
from services.analytics.metrics.catalog import CATALOG, DIMENSIONS
from services.analytics.metrics.datasets import ATTENDANCE_COLUMNS, month_rows, typed
from services.analytics.metrics.periods import fiscal_year_of_month_expr
from services.analytics.metrics.result import cells
from services.analytics.metrics.rounding import half_up_1

__all__ = ["snapshot_for", "working_hours_cells"]

_UNIT = 10_000  # 1 hour or day = 10,000 units


def snapshot_for(months: Iterable[str], snapshots: Iterable[str]) -> dict[str, str | None]:
    """Each attendance month → the snapshot month it is matched to (same month, else the
    latest before it, else None)."""
    ordered = sorted(snapshots)
    return {
        month: ordered[i - 1] if (i := bisect.bisect_right(ordered, month)) else None
        for month in months
    }


def _units(column: str) -> pl.Expr:
    return (pl.col(column).fill_null(0.0) * _UNIT).round(0).cast(pl.Int64)


_PEOPLE_COLUMNS = {
    "employee_id": pl.String(),
    "company_code": pl.String(),
    "department": pl.String(),
    "gender": pl.String(),
    "employment_type": pl.String(),
    "job_grade": pl.String(),
    "birth_date": pl.Date(),
}


def _rows(
    attendance: Mapping[str, pl.DataFrame], employees: Mapping[str, pl.DataFrame]
) -> pl.LazyFrame | None:
    """Attendance rows with the attributes of their employee in the matched snapshot.

    One join per month against its one snapshot (rather than one join of everything on
    (snapshot, employee_id)): small joins on a single key, run in parallel.
    """
    parts = []
    for month, snapshot in sorted(snapshot_for(attendance, employees).items()):
        rows = month_rows(month, attendance[month], ATTENDANCE_COLUMNS)
        people = (
            pl.LazyFrame(schema=_PEOPLE_COLUMNS)
            if snapshot is None
            else typed(employees[snapshot], _PEOPLE_COLUMNS)
        )
        parts.append(rows.join(people, on="employee_id", how="left"))
    if not parts:
        return None
    return pl.concat(parts, how="vertical").select(
        "period",
        "employee_id",
        pl.col("company_code").alias("company"),
        "department",
        "gender",
        "employment_type",
        age_band(pl.col("birth_date"), pl.col("month_end")).alias("age_band"),
        "job_grade",
        _units("overtime_hours").alias("overtime"),
        _units("paid_leave_taken_days").alias("taken"),
        _units("paid_leave_granted_days").alias("granted"),
    )


def working_hours_cells(
    attendance: Mapping[str, pl.DataFrame], employees: Mapping[str, pl.DataFrame], start: int
) -> pl.LazyFrame | None:
    """Every working-hours metric from the attendance months (and employees snapshots)."""
    joined = _rows(attendance, employees)
    if joined is None:
        return None
    rows = joined.collect().lazy()
    monthly = aggregate(
        rows,
        [
            pl.len().cast(pl.Int64).alias("people"),
            pl.col("overtime").sum().cast(pl.Int64).alias("overtime"),
            (pl.col("overtime") > 45 * _UNIT).sum().cast(pl.Int64).alias("over_45"),
            (pl.col("overtime") > 80 * _UNIT).sum().cast(pl.Int64).alias("over_80"),
        ],
        DIMENSIONS,
        additive=True,
    ).lazy()
    # Distinct people per cell: first one row per person, fiscal year and cell attributes
    # (a person's 12 months mostly collapse into one), then count them per cell.
    per_person = (
        rows.with_columns(fiscal_year_of_month_expr(pl.col("period"), start).alias("period"))
        .group_by("period", "employee_id", "company", *DIMENSIONS)
        .agg(pl.col("taken", "granted").sum())
        .collect()
    )
    yearly = aggregate(
        per_person.lazy(),
        [
            pl.col("employee_id").n_unique().cast(pl.Int64).alias("people"),
            pl.col("taken").sum().cast(pl.Int64).alias("taken"),
            pl.col("granted").sum().cast(pl.Int64).alias("granted"),
        ],
        DIMENSIONS,
        additive=False,
    ).lazy()
    people = pl.col("people")
    return pl.concat(
        [
            cells(
                monthly,
                CATALOG["average_overtime_hours"],
                value=half_up_1(pl.col("overtime"), people * _UNIT),
                n=people,
                numerator=pl.col("overtime") / _UNIT,
                denominator=people,
            ),
            *(
                cells(
                    monthly,
                    CATALOG[key],
                    value=half_up_1(pl.col(over) * 100, people),
                    n=people,
                    numerator=pl.col(over),
                    denominator=people,
                )
                for key, over in (
                    ("overtime_over_45h_ratio", "over_45"),
                    ("overtime_over_80h_ratio", "over_80"),
                )
            ),
            cells(
                yearly,
                CATALOG["paid_leave_usage_rate"],
                value=half_up_1(pl.col("taken") * 100, pl.col("granted")),
                n=people,
                numerator=pl.col("taken") / _UNIT,
                denominator=pl.col("granted") / _UNIT,
            ),
        ],
        how="vertical",
    )
