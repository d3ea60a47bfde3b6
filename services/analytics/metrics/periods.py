"""Months and fiscal years.

A month is ``"YYYY-MM"``. A fiscal year is named ``"YYYY"``, the calendar year in which it
starts; the tenant's fiscal year starts on the first day of month ``start`` (1..12, default 4,
i.e. April–March). With ``start=1`` fiscal years are calendar years.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re

import polars as pl

__all__ = [
    "DEFAULT_FISCAL_YEAR_START",
    "check_fiscal_year_start",
    "fiscal_year_of_date",
    "fiscal_year_of_month",
    "fiscal_year_of_month_expr",
    "month_bounds",
]

DEFAULT_FISCAL_YEAR_START = 4
_MONTH = re.compile(r"(\d{4})-(\d{2})", re.ASCII)


def check_fiscal_year_start(start: int) -> int:
    """``start`` itself, or ValueError unless it is a month number 1..12."""
    if isinstance(start, bool) or not isinstance(start, int) or not 1 <= start <= 12:
        raise ValueError(f"fiscal_year_start must be a month number 1..12, not {start!r}")
    return start


def _year_month(month: str) -> tuple[int, int]:
    match = _MONTH.fullmatch(month)
    if match is None or not 1 <= int(match[2]) <= 12:
        raise ValueError(f"not a month 'YYYY-MM': {month!r}")
    return int(match[1]), int(match[2])


def month_bounds(month: str) -> tuple[dt.date, dt.date]:
    """The first and the last day of ``month``."""
    year, number = _year_month(month)
    return dt.date(year, number, 1), dt.date(year, number, calendar.monthrange(year, number)[1])


def fiscal_year_of_month(month: str, start: int) -> str:
    """The fiscal year holding ``month``: ``"2024-03"`` is in FY ``"2023"`` when start=4."""
    year, number = _year_month(month)
    return str(year if number >= start else year - 1)


def fiscal_year_of_date(date: pl.Expr, start: int) -> pl.Expr:
    """The fiscal year (``"YYYY"``, String) of a Date expression; null stays null."""
    shift = (date.dt.month() < start).cast(pl.Int32)
    return (date.dt.year().cast(pl.Int32) - shift).cast(pl.String)


def fiscal_year_of_month_expr(month: pl.Expr, start: int) -> pl.Expr:
    """The fiscal year (``"YYYY"``, String) of a ``"YYYY-MM"`` String expression."""
    year = month.str.slice(0, 4).cast(pl.Int32)
    shift = (month.str.slice(5, 2).cast(pl.Int32) < start).cast(pl.Int32)
    return (year - shift).cast(pl.String)
