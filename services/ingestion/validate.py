"""Turning raw rows into a validated, normalised dataset, or into the list of what is wrong.

Every row is checked; the first 1,000 errors are listed with the row as the customer sees
it in the file (header = 1), the column as they wrote it, the value and what is wrong.
Nothing is stored unless the whole file is valid.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import polars as pl

from services.ingestion import values
from services.ingestion.kinds import KindSpec, header_index, header_key

MAX_LISTED_ERRORS = 1000
MAX_VALUE_CHARS = 100


@dataclass(frozen=True)
class CellError:
    row: int
    column: str | None
    value: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "column": self.column,
            "value": self.value,
            "message": self.message,
        }


@dataclass
class Errors:
    listed: list[CellError] = field(default_factory=list)
    total: int = 0

    def add(self, row: int, column: str | None, value: object, message: str) -> None:
        self.total += 1
        if len(self.listed) < MAX_LISTED_ERRORS:
            shown = None if value is None else str(value)[:MAX_VALUE_CHARS]
            self.listed.append(CellError(row, column, shown, message))


@dataclass
class Validated:
    # period → normalised rows as a DataFrame (one column per spec column)
    periods: dict[str, pl.DataFrame]
    rows: int
    warnings: list[str]


class Invalid(Exception):
    def __init__(self, errors: Errors) -> None:
        super().__init__(f"{errors.total} errors")
        self.errors = errors


@dataclass(frozen=True)
class Context:
    as_of: tuple[int, int] | None  # employees: the snapshot month
    known_companies: frozenset[str]
    allowed_companies: frozenset[str] | None  # None: every company of the tenant
    ignore_unknown: bool


def _month_end(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def map_header(
    spec: KindSpec, header: list[str], ctx: Context, errors: Errors, header_row: int = 1
) -> list[str | None]:
    """Column name for each position of the file (None: ignored unknown column)."""
    index = header_index(spec)
    mapped: list[str | None] = []
    seen: dict[str, str] = {}
    for raw in header:
        name = index.get(header_key(raw))
        if name is None:
            if not ctx.ignore_unknown:
                errors.add(
                    header_row, raw, None, "unknown column (send ignore_unknown=true to skip it)"
                )
        elif name in seen:
            errors.add(header_row, raw, None, f"the same column as '{seen[name]}'")
            name = None
        else:
            seen[name] = raw
        mapped.append(name)
    for column in spec.columns:
        if column.required and column.name not in seen:
            errors.add(header_row, column.name, None, "required column is missing")
    return mapped


def validate(
    spec: KindSpec,
    header: list[str],
    rows: Iterable[tuple[int, list[object]]],
    ctx: Context,
    header_row: int = 1,
) -> Validated:
    errors = Errors()
    mapped = map_header(spec, header, ctx, errors, header_row)
    if errors.total:
        raise Invalid(errors)
    shown = {name: raw for raw, name in zip(header, mapped, strict=True) if name is not None}
    columns: dict[str, list[Any]] = {c.name: [] for c in spec.columns}
    first_seen: dict[tuple[Any, ...], int] = {}
    parsers = {c.name: values.PARSERS[c.type] for c in spec.columns}
    count = 0
    for line, cells in rows:
        record: dict[str, Any] = {}
        ok = True
        for position, name in enumerate(mapped):
            if name is None:
                continue
            raw = cells[position] if position < len(cells) else None
            try:
                value = parsers[name](raw)
            except values.ValueProblem as problem:
                errors.add(line, shown[name], raw, str(problem))
                ok = False
                continue
            if value is None and spec.column(name).required:
                errors.add(line, shown[name], raw, "required value is missing")
                ok = False
            record[name] = value
        if not ok:
            continue
        for column, message in _row_rules(spec, record, ctx):
            errors.add(line, shown.get(column, column), record.get(column), message)
            ok = False
        key = tuple(record.get(c) for c in spec.unique)
        if key in first_seen:
            errors.add(
                line,
                shown.get(spec.unique[0]),
                record.get(spec.unique[0]),
                f"duplicate of row {first_seen[key]}",
            )
            ok = False
        elif ok:
            first_seen[key] = line
        if ok:
            count += 1
            for name in columns:
                columns[name].append(record.get(name))
    if errors.total:
        raise Invalid(errors)
    if count == 0:
        errors.add(header_row + 1, None, None, "the file has a header but no data rows")
        raise Invalid(errors)
    frame = _frame(spec, columns)
    warnings = [
        f"unknown column ignored: {h}" for h, n in zip(header, mapped, strict=True) if n is None
    ]
    return Validated(_periods(spec, frame, ctx), count, warnings)


def _row_rules(spec: KindSpec, r: dict[str, Any], ctx: Context) -> Iterator[tuple[str, str]]:
    company = r.get("company_code")
    if company is not None:
        if company not in ctx.known_companies:
            yield "company_code", "not one of the tenant's group companies"
        elif ctx.allowed_companies is not None and company not in ctx.allowed_companies:
            yield "company_code", "you may upload rows of your own companies only"
    if spec.kind == "employees":
        assert ctx.as_of is not None
        end = _month_end(*ctx.as_of)
        hire, exit_date = r.get("hire_date"), r.get("exit_date")
        if hire is not None and hire > end:
            yield "hire_date", "after the snapshot month (as_of)"
        if exit_date is not None:
            if hire is not None and exit_date < hire:
                yield "exit_date", "before hire_date"
            if exit_date > end:
                yield "exit_date", "after the snapshot month (as_of)"
            if r.get("exit_reason") is None:
                yield "exit_reason", "required when exit_date is given"
        elif r.get("exit_reason") is not None:
            yield "exit_reason", "given without exit_date"
        birth = r.get("birth_date")
        if birth is not None and hire is not None and birth >= hire:
            yield "birth_date", "not before hire_date"
    elif spec.kind == "payroll":
        if r["annual_wage"] is not None and r["annual_wage"] < 0:
            yield "annual_wage", "must not be negative"
        if r["fiscal_year"] is not None and not 1900 <= r["fiscal_year"] <= 2100:
            yield "fiscal_year", "not a plausible fiscal year"
    elif spec.kind == "attendance":
        for name in ("overtime_hours", "paid_leave_granted_days", "paid_leave_taken_days"):
            if r.get(name) is not None and r[name] < 0:
                yield name, "must not be negative"
    elif spec.kind == "childcare" and (r.get("leave_type") is None) != (
        r.get("leave_start_date") is None
    ):
        yield "leave_start_date", "leave_type and leave_start_date go together"


_POLARS_TYPES = {
    "text": pl.String,
    "date": pl.Date,
    "bool": pl.Boolean,
    "gender": pl.String,
    "employment_type": pl.String,
    "exit_reason": pl.String,
    "leave_type": pl.String,
    "int": pl.Int64,
}


def _frame(spec: KindSpec, columns: dict[str, list[Any]]) -> pl.DataFrame:
    data: dict[str, pl.Series] = {}
    for column in spec.columns:
        cells = columns[column.name]
        if column.type == "month":
            data[column.name] = pl.Series(column.name, [f"{y:04d}-{m:02d}" for y, m in cells])
        elif column.type == "decimal":
            numbers = [float(v) if isinstance(v, Decimal) else v for v in cells]
            data[column.name] = pl.Series(column.name, numbers, dtype=pl.Float64)
        else:
            data[column.name] = pl.Series(column.name, cells, dtype=_POLARS_TYPES[column.type])
    frame = pl.DataFrame(data)
    if spec.kind == "attendance":
        frame = frame.with_columns(
            pl.col("paid_leave_granted_days").fill_null(0.0),
            pl.col("paid_leave_taken_days").fill_null(0.0),
        )
    return frame


def _periods(spec: KindSpec, frame: pl.DataFrame, ctx: Context) -> dict[str, pl.DataFrame]:
    if spec.kind == "employees":
        assert ctx.as_of is not None
        return {f"{ctx.as_of[0]:04d}-{ctx.as_of[1]:02d}": frame}
    if spec.kind == "childcare":
        return {"all": frame}
    by = "month" if spec.kind == "attendance" else "fiscal_year"
    return {
        str(key[0]): part.sort("employee_id")
        for key, part in frame.partition_by(by, as_dict=True, maintain_order=True).items()
    }
