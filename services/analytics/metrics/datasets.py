"""The input of the metric engine: the tenant's current dataset versions as polars frames.

Frames are those the ingestion service stores (columns and normalised values as in
services/ingestion/kinds.py). ``employees`` and ``attendance`` are keyed by month
``"YYYY-MM"``, ``payroll`` by fiscal year ``"YYYY"``; the key is the frame's period (ingestion
partitions each upload by it). The stacking helpers below put every version of a kind into one
lazy frame with its period as columns and each column cast to its normalised dtype, selecting
only the columns the metrics read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl

from services.analytics.metrics.periods import month_bounds

__all__ = [
    "ATTENDANCE_COLUMNS",
    "CHILDCARE_COLUMNS",
    "EMPLOYEE_COLUMNS",
    "PAYROLL_COLUMNS",
    "Datasets",
    "month_rows",
    "stack_by_month",
    "stack_payroll",
    "typed",
]

EMPLOYEE_COLUMNS: dict[str, pl.DataType] = {
    "employee_id": pl.String(),
    "company_code": pl.String(),
    "department": pl.String(),
    "gender": pl.String(),
    "birth_date": pl.Date(),
    "hire_date": pl.Date(),
    "exit_date": pl.Date(),
    "exit_reason": pl.String(),
    "employment_type": pl.String(),
    "is_manager": pl.Boolean(),
    "job_grade": pl.String(),
}
PAYROLL_COLUMNS: dict[str, pl.DataType] = {
    "employee_id": pl.String(),
    "company_code": pl.String(),
    "gender": pl.String(),
    "employment_type": pl.String(),
    "annual_wage": pl.Int64(),
}
ATTENDANCE_COLUMNS: dict[str, pl.DataType] = {
    "employee_id": pl.String(),
    "overtime_hours": pl.Float64(),
    "paid_leave_granted_days": pl.Float64(),
    "paid_leave_taken_days": pl.Float64(),
}
CHILDCARE_COLUMNS: dict[str, pl.DataType] = {
    "employee_id": pl.String(),
    "company_code": pl.String(),
    "gender": pl.String(),
    "child_birth_date": pl.Date(),
    "leave_type": pl.String(),
    "leave_start_date": pl.Date(),
}


@dataclass(frozen=True)
class Datasets:
    """One tenant's data: the current version of every period of every kind."""

    employees: dict[str, pl.DataFrame] = field(default_factory=dict)  # "YYYY-MM" → snapshot
    payroll: dict[str, pl.DataFrame] = field(default_factory=dict)  # "YYYY" → fiscal year
    attendance: dict[str, pl.DataFrame] = field(default_factory=dict)  # "YYYY-MM" → month
    childcare: pl.DataFrame | None = None  # the whole history


def typed(frame: pl.DataFrame, columns: Mapping[str, pl.DataType]) -> pl.LazyFrame:
    """The frame's ``columns``, each cast to its normalised dtype, lazily."""
    return frame.lazy().select(pl.col(name).cast(dtype) for name, dtype in columns.items())


def stack_by_month(
    frames: Mapping[str, pl.DataFrame], columns: Mapping[str, pl.DataType]
) -> pl.LazyFrame | None:
    """Every month's frame under each other, with ``period`` ("YYYY-MM"), ``month_start`` and
    ``month_end`` (Date); None when there is none."""
    parts = [month_rows(month, frame, columns) for month, frame in sorted(frames.items())]
    return pl.concat(parts, how="vertical") if parts else None


def month_rows(month: str, frame: pl.DataFrame, columns: Mapping[str, pl.DataType]) -> pl.LazyFrame:
    """One month's frame, typed, with ``period``, ``month_start`` and ``month_end``."""
    start, end = month_bounds(month)
    return typed(frame, columns).with_columns(
        period=pl.lit(month, pl.String),
        month_start=pl.lit(start, pl.Date),
        month_end=pl.lit(end, pl.Date),
    )


def stack_payroll(frames: Mapping[str, pl.DataFrame]) -> pl.LazyFrame | None:
    """Every fiscal year's payroll under each other, with ``period`` ("YYYY")."""
    for year in frames:
        if not (len(year) == 4 and year.isascii() and year.isdigit()):
            raise ValueError(f"not a fiscal year 'YYYY': {year!r}")
    parts = [
        typed(frame, PAYROLL_COLUMNS).with_columns(period=pl.lit(year, pl.String))
        for year, frame in sorted(frames.items())
    ]
    return pl.concat(parts, how="vertical") if parts else None
