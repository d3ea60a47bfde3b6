"""Metric series out of a tenant's results: periods, companies in scope, breakdowns.

Breakdown cells come from the suppressed results (computed over every company and the group
at once, so every caller sees the same cells hidden whatever their scope); totals are never
suppressed for their own size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import polars as pl

from jinji.errors import ApiError
from services.analytics.access import Scope
from services.analytics.metrics import CATALOG, RESULT_SCHEMA, Metric

_EMPTY = pl.Schema({**RESULT_SCHEMA, "suppressed": pl.Boolean()})

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
MAX_MONTHS = 120


@dataclass(frozen=True)
class Shown:
    """A tenant's suppressed results split by metric: a query reads one metric's rows."""

    by_metric: dict[str, pl.DataFrame]
    latest_month: str | None  # the latest month with any figure

    @classmethod
    def of(cls, frame: pl.DataFrame) -> Shown:
        months = frame.filter(pl.col("period").str.len_chars() == 7).get_column("period")
        return cls(
            {str(key[0]): part for key, part in frame.partition_by("metric", as_dict=True).items()},
            None if months.is_empty() else str(months.max()),
        )

    def metric(self, key: str) -> pl.DataFrame:
        found = self.by_metric.get(key)
        return found if found is not None else pl.DataFrame(schema=_EMPTY)


@dataclass(frozen=True)
class Query:
    metric: Metric
    periods: list[str]
    company: str | None  # one company, or None for every company in scope (+ the group)
    group_by: str | None


def metric_of(key: str) -> Metric:
    metric = CATALOG.get(key)
    if metric is None:
        raise ApiError(
            404, "unknown_metric", "No such metric.", {"metric": key, "known": sorted(CATALOG)}
        )
    return metric


def fiscal_months(fiscal_year: int, start: int) -> list[str]:
    """The 12 months of a fiscal year, "YYYY-MM", in order."""
    months = []
    for offset in range(12):
        index = start - 1 + offset
        months.append(f"{fiscal_year + index // 12:04d}-{index % 12 + 1:02d}")
    return months


def month_range(first: str, last: str) -> list[str]:
    for name, value in (("from", first), ("to", last)):
        if not _MONTH.match(value):
            raise ApiError(422, "invalid_month", f"{name} must be YYYY-MM.", {name: value})
    year, month = int(first[:4]), int(first[5:])
    end = (int(last[:4]), int(last[5:]))
    if (year, month) > end:
        raise ApiError(422, "invalid_range", "from is after to.", {"from": first, "to": last})
    months = []
    while (year, month) <= end:
        months.append(f"{year:04d}-{month:02d}")
        if len(months) > MAX_MONTHS:
            raise ApiError(
                422, "range_too_long", f"At most {MAX_MONTHS} months at a time.", {"limit": 120}
            )
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def check_group_by(metric: Metric, group_by: str | None) -> None:
    if group_by is not None and group_by not in metric.group_by:
        raise ApiError(
            422,
            "invalid_group_by",
            "This metric has no such breakdown.",
            {"group_by": group_by, "allowed": list(metric.group_by)},
        )


def select(shown: Shown, query: Query, scope: Scope) -> pl.DataFrame:
    """The query's cells the caller may see, ordered by period, company (group last), group."""
    frame = shown.metric(query.metric.key).filter(
        pl.col("period").is_in(query.periods),
        pl.col("group_by").is_null()
        if query.group_by is None
        else pl.col("group_by") == query.group_by,
    )
    if query.company is not None:
        frame = frame.filter(pl.col("company") == query.company)
    else:
        visible = (
            pl.lit(True)
            if scope.companies is None
            else pl.col("company").is_in(sorted(scope.companies))
        )
        consolidated = pl.col("company").is_null() & pl.lit(scope.consolidated)
        frame = frame.filter((pl.col("company").is_not_null() & visible) | consolidated)
    return frame.sort("period", "company", "group", nulls_last=True, maintain_order=True)


def series(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return [
        {
            "period": row["period"],
            "company": row["company"],
            "group": row["group"],
            "value": row["value"],
            "n": row["n"],
            "suppressed": bool(row["suppressed"]),
        }
        for row in frame.iter_rows(named=True)
    ]
