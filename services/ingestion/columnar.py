"""Vectorised validation of CSV uploads with polars: the results of :func:`validate.validate`.

:func:`try_fast` gives exactly what ``validate.validate`` gives over
``reading.read_table`` of the same file: the same :class:`validate.Validated` (frames with the same
columns, dtypes, values and row order, the same row count and warnings), or the same
:class:`validate.Invalid` (the same errors in the same order, the same total), or the same
:class:`reading.FileProblem`.

It does so in two steps. :func:`try_fast` reads the file with polars' CSV reader and parses each
column once per *distinct* value with the parsers of :mod:`values` (ASCII text, plain digits and
ASCII Gregorian dates, whose parse needs no Unicode, are converted in polars); the required
values, the row rules and the unique keys are polars expressions with the messages and columns
of :mod:`validate`, and the errors are ordered as ``validate.validate`` emits them. When it
cannot be sure to match the row-by-row reader exactly it returns ``None``, and
:func:`pipeline.read_and_validate` runs the row-by-row path instead. That happens for a file
holding a double quote (quoted fields may span lines and hide commas), a lone CR, a NUL byte, a
line of 65,536 bytes or more (it might reach the csv module's field size limit), a line with
more cells than the first line, a non-blank cell past the header, more header columns than
allowed, no header, bytes that do not decode, a whole number beyond 64 bits, or a header
elsewhere than on ``header_row`` (e.g. after blank lines).

Row numbers are exact: with no quotes every line is one record, so a record's row is its line
number, and the number of records polars returns is checked against the newlines counted in the
bytes. Blank rows (every cell empty or whitespace) are skipped, as the row-by-row reader skips
them.
"""

from __future__ import annotations

import calendar
import codecs
import csv
import datetime as dt
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO

import polars as pl

from services.ingestion import reading, validate, values
from services.ingestion.kinds import Column, KindSpec

__all__ = ["WHITESPACE", "try_fast"]

_CHUNK = 1 << 20  # bytes read (and transcoded) at a time
# Every full window of this many bytes must hold a newline, so every line is shorter than 2
# windows (131,072 bytes, hence characters): under the csv module's field size limit (131,072
# by default) and under Limits.max_csv_row_chars.
_WINDOW = 1 << 16
_LIMITS = reading.Limits()
_ENCODINGS = ("utf-8", "utf-8-sig", "cp932")
_BOM = codecs.BOM_UTF8
# What Python's str.isspace()/str.split()/str.strip() take as whitespace (a test checks it).
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
_ASCII_WHITESPACE_RUN = r"[\t\n\x0b\x0c\r\x1c-\x1f ]+"
_PLAIN_DIGITS = r"^[0-9]{1,18}$"  # int(raw) of these always fits in an Int64
_DATE_FORMS = (
    r"^(?<y>[0-9]{4})(?<s1>[-/.])(?<m>[0-9]{1,2})(?<s2>[-/.])(?<d>[0-9]{1,2})$"
    r"|^(?<cy>[0-9]{4})(?<cm>[0-9]{2})(?<cd>[0-9]{2})$"
)
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_DUPLICATE_SEQ = 10_000  # after every parse error (file position) and rule error of a row
_ROW = "__row"
_REQUIRED = "required value is missing"
# Types whose str() in Python differs from polars' cast to String: kept from the Python parse.
_PYTHON_TEXT = frozenset({"decimal", "month"})

_DTYPES: dict[str, pl.DataType] = {
    "text": pl.String(),
    "date": pl.Date(),
    "month": pl.String(),
    "bool": pl.Boolean(),
    "gender": pl.String(),
    "employment_type": pl.String(),
    "exit_reason": pl.String(),
    "leave_type": pl.String(),
    "int": pl.Int64(),
    "decimal": pl.Float64(),
}
_ERROR_SCHEMA = pl.Schema(
    {
        "row": pl.Int64(),
        "seq": pl.Int64(),
        "column": pl.String(),
        "value": pl.String(),
        "message": pl.String(),
    }
)


class _Fallback(Exception):
    """The fast path cannot promise the row-by-row result for this file."""


def try_fast(
    path: Path,
    encoding: str,
    spec: KindSpec,
    ctx: validate.Context,
    *,
    header_row: int = 1,
) -> validate.Validated | None:
    """The vectorised validation, or None when the file needs the row-by-row path."""
    try:
        with _utf8(path, encoding) as (utf8, count):
            return _validate_cells(utf8, _read_cells(utf8, count), spec, ctx, header_row)
    except _Fallback:
        return None


# --- reading ----------------------------------------------------------------------------------


@contextmanager
def _utf8(path: Path, encoding: str) -> Iterator[tuple[Path, int]]:
    """The file as UTF-8 (a temporary copy for CP932), and its number of lines."""
    if encoding not in _ENCODINGS or csv.field_size_limit() < 2 * _WINDOW:
        raise _Fallback
    with open(path, "rb") as file:
        start = file.read(2 * len(_BOM))
    if encoding == "utf-8" and start.startswith(_BOM):
        raise _Fallback  # not what detect_encoding says of this file
    if encoding == "utf-8-sig" and start[len(_BOM) :] == _BOM:
        raise _Fallback  # a second BOM: keep the exact decoding of the row-by-row reader
    if encoding != "cp932":
        yield path, _scan(path, None, None)
        return
    with tempfile.TemporaryDirectory(prefix="jinji-columnar-") as folder:
        utf8 = Path(folder) / "upload.csv"
        with open(utf8, "wb") as out:
            count = _scan(path, codecs.getincrementaldecoder(encoding)("strict"), out)
        yield utf8, count


def _scan(path: Path, decoder: codecs.IncrementalDecoder | None, out: BinaryIO | None) -> int:
    """Check the bytes for what the fast path cannot read exactly; count the lines.

    With a decoder, the text is also written to ``out`` as UTF-8. In UTF-8 and in CP932 the
    bytes of a multi-byte character are never ``"``, CR, LF or NUL, so the bytes are searched.
    """
    newlines = 0
    size = 0
    last = b""
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            if b'"' in chunk or b"\x00" in chunk:
                raise _Fallback
            if last == b"\r" and not chunk.startswith(b"\n"):
                raise _Fallback
            if chunk.count(b"\r") - chunk.count(b"\r\n") - chunk.endswith(b"\r"):
                raise _Fallback  # a CR that ends a line by itself
            for at in range(0, len(chunk) - _WINDOW + 1, _WINDOW):
                if chunk.find(b"\n", at, at + _WINDOW) < 0:
                    raise _Fallback
            newlines += chunk.count(b"\n")
            size += len(chunk)
            last = chunk[-1:]
            if decoder is not None and out is not None:
                out.write(_decode(decoder, chunk, final=False))
    if decoder is not None and out is not None:
        out.write(_decode(decoder, b"", final=True))
    if last == b"\r" or size == 0:
        raise _Fallback
    return newlines + (last != b"\n")


def _decode(decoder: codecs.IncrementalDecoder, chunk: bytes, *, final: bool) -> bytes:
    try:
        return decoder.decode(chunk, final=final).encode("utf-8")
    except UnicodeError as exc:
        raise _Fallback from exc


def _read_cells(path: Path, count: int) -> pl.DataFrame:
    """Every line's cells (``c0``, ``c1`` …, as many as the first line has; null for an empty
    cell and for one missing from a short line) and its row number (``__row``).
    """
    try:
        frame = pl.read_csv(
            path,
            has_header=False,
            quote_char=None,
            infer_schema=False,
            encoding="utf8",
            raise_if_empty=False,
        )
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise _Fallback from exc  # e.g. a line with more cells than the first
    if frame.height != count or frame.width == 0:
        raise _Fallback
    frame.columns = [f"c{position}" for position in range(frame.width)]
    # A BOM is not part of the first cell (the utf-8-sig codec drops it, and so does polars).
    return frame.with_columns(
        pl.col("c0").str.strip_prefix("\ufeff"),
        pl.int_range(1, count + 1, dtype=pl.Int64).alias(_ROW),
    )


def _cell_counts(path: Path, rows: list[int]) -> dict[int, int]:
    """How many cells the lines ``rows`` hold (for listed errors only: reads the file again)."""
    lines = pl.read_csv(
        path,
        has_header=False,
        separator="\x00",  # never in the file: one field per line
        quote_char=None,
        infer_schema=False,
        empty_string_is_null=False,
        encoding="utf8",
    ).to_series()
    picked = lines.gather([row - 1 for row in rows]).fill_null("")
    counts = picked.str.count_matches(",", literal=True) + 1
    return dict(zip(rows, counts.to_list(), strict=True))


def _blank(name: str) -> pl.Expr:
    return pl.col(name).is_null() | (pl.col(name).str.strip_chars(WHITESPACE) == "")


# --- validating -------------------------------------------------------------------------------


def _validate_cells(
    utf8: Path, cells: pl.DataFrame, spec: KindSpec, ctx: validate.Context, header_row: int
) -> validate.Validated:
    names = [name for name in cells.columns if name != _ROW]
    cells = cells.filter(~pl.all_horizontal(_blank(name) for name in names))
    if cells.height == 0:
        raise _Fallback  # read_table: empty_file
    first = cells.row(0, named=True)
    if first[_ROW] != header_row:
        raise _Fallback
    header = [("" if first[name] is None else str(first[name])).strip() for name in names]
    while header and not header[-1]:
        header.pop()
    if len(header) > _LIMITS.max_columns:
        raise _Fallback  # read_table: too_many_columns
    width = len(header)
    cells = cells.slice(1)
    beyond = names[width:]
    if beyond and not cells.select(pl.all_horizontal(_blank(n) for n in beyond).all()).item():
        raise _Fallback  # read_table: ragged_row

    errors = validate.Errors()
    mapped = validate.map_header(spec, header, ctx, errors, header_row)
    if errors.total:
        raise validate.Invalid(errors)
    shown = {name: raw for raw, name in zip(header, mapped, strict=True) if name is not None}

    parsed = _Parsed(cells.get_column(_ROW))
    for position, name in enumerate(mapped):
        raw = cells.drop_in_place(names[position])
        if name is not None:
            parsed.add(position, spec.column(name), shown[name], raw)
    del cells
    result = _check(spec, ctx, parsed, shown, width)
    if result.errors.total:
        _show_missing_cells(utf8, result.errors, {shown[n]: p for p, n in enumerate(mapped) if n})
        raise validate.Invalid(result.errors)
    if result.count == 0:
        result.errors.add(header_row + 1, None, None, "the file has a header but no data rows")
        raise validate.Invalid(result.errors)
    final = pl.DataFrame(
        [
            parsed.values[c.name]
            if c.name in parsed.values
            else pl.Series(c.name, [None] * result.count, dtype=_DTYPES[c.type])
            for c in spec.columns
        ]
    )
    if spec.kind == "attendance":
        final = final.with_columns(
            pl.col("paid_leave_granted_days").fill_null(0.0),
            pl.col("paid_leave_taken_days").fill_null(0.0),
        )
    warnings = [
        f"unknown column ignored: {h}" for h, n in zip(header, mapped, strict=True) if n is None
    ]
    return validate.Validated(validate._periods(spec, final, ctx), result.count, warnings)


def _show_missing_cells(utf8: Path, errors: validate.Errors, positions: dict[str, int]) -> None:
    """A required cell that is empty shows as "" (the row-by-row reader's value), one missing
    from a short line as None; polars reads both as null, so look at the listed ones' lines.
    """
    at = [
        index
        for index, e in enumerate(errors.listed)
        if e.message == _REQUIRED and e.value is None and e.column in positions
    ]
    if not at:
        return
    counts = _cell_counts(utf8, sorted({errors.listed[index].row for index in at}))
    for index in at:
        e = errors.listed[index]
        assert e.column is not None
        if positions[e.column] < counts[e.row]:
            errors.listed[index] = validate.CellError(e.row, e.column, "", e.message)


class _Parsed:
    """The parsed columns of the data rows, and their parse errors."""

    def __init__(self, rows: pl.Series) -> None:
        self.rows = rows  # the row number of each data row
        self.values: dict[str, pl.Series] = {}  # column name → parsed values (the frame dtype)
        self.texts: dict[str, pl.Series] = {}  # str() of each value, for _PYTHON_TEXT types
        self.types: dict[str, str] = {}  # column name → value type
        self.bad: list[pl.Series] = []  # per column with a problem: which rows have one
        self.error_frames: list[pl.DataFrame] = []  # the errors, as rows of _ERROR_SCHEMA

    def add(self, position: int, column: Column, header: str, raw: pl.Series) -> None:
        value, text, problem = _parse_column(column, raw)
        if column.required:
            problem = (
                pl.select(
                    pl.when(problem.is_null() & value.is_null())
                    .then(pl.lit(_REQUIRED))
                    .otherwise(problem)
                )
                .to_series()
                .rename("problem")
            )
        self.values[column.name] = value.rename(column.name)
        self.types[column.name] = column.type
        if column.type in _PYTHON_TEXT:
            self.texts[column.name] = text
        if problem.null_count() == len(problem):
            return
        self.bad.append(problem.is_not_null())
        self.error_frames.append(
            pl.DataFrame(
                {
                    "row": self.rows,
                    "message": problem,
                    "value": raw.str.slice(0, validate.MAX_VALUE_CHARS),
                }
            )
            .filter(pl.col("message").is_not_null())
            .select(
                "row",
                seq=pl.lit(position, dtype=pl.Int64),
                column=pl.lit(header, dtype=pl.String),
                value="value",
                message="message",
            )
        )

    def text(self, name: str) -> pl.Expr:
        """str() of the parsed values of a column (null for None), as validate shows them."""
        if name in self.texts:
            return pl.col(f"t_{name}")
        if name not in self.types:
            return pl.lit(None, dtype=pl.String)
        if self.types[name] == "bool":
            return pl.col(name).replace_strict([True, False], ["True", "False"], default=None)
        return pl.col(name).cast(pl.String)  # text, words, int: as is; date: ISO like str()


def _parse_column(column: Column, raw: pl.Series) -> tuple[pl.Series, pl.Series, pl.Series]:
    """(parsed values, their str() for _PYTHON_TEXT types, error message or null), row for row.

    Cells in a form :func:`_fast` reads exactly are converted in polars; every other distinct
    cell is parsed once by the parser of :mod:`values`.
    """
    dtype = _DTYPES[column.type]
    parse = values.PARSERS[column.type]
    convert = _CONVERT.get(column.type, _same)
    frame = _fast(column.type, pl.DataFrame({"raw": raw}))
    cells = frame.filter(~pl.col("__fast")).get_column("raw").drop_nulls().unique()
    keys: list[str] = []
    parsed: list[object] = []
    texts: list[str | None] = []
    problems: list[str | None] = []
    for cell in cells.to_list():
        keys.append(cell)
        try:
            value = parse(cell)
        except values.ValueProblem as problem:
            parsed.append(None)
            texts.append(None)
            problems.append(str(problem))
            continue
        parsed.append(convert(value))
        texts.append(None if value is None else str(value))
        problems.append(None)
    mapping = pl.DataFrame(
        {
            "raw": pl.Series(keys, dtype=pl.String),
            "__value": pl.Series(parsed, dtype=dtype),
            "__text": pl.Series(texts, dtype=pl.String),
            "__problem": pl.Series(problems, dtype=pl.String),
        }
    )
    if keys:
        frame = frame.join(mapping, on="raw", how="left", maintain_order="left")
    else:  # every cell was read in polars
        frame = frame.with_columns(mapping.drop("raw").clear(len(frame)))
    out = frame.select(
        value=pl.when("__fast").then("__fast_value").otherwise("__value"),
        problem=pl.when("__fast").then("__fast_problem").otherwise("__problem"),
        # (_fast reads no cell of these types)
        text=pl.col("__text") if column.type in _PYTHON_TEXT else pl.lit(None, dtype=pl.String),
    )
    return out.get_column("value"), out.get_column("text"), out.get_column("problem")


def _fast(type_: str, frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` (column ``raw``) with ``__fast`` (the cell is in a form polars parses exactly as
    values does), ``__fast_value`` and ``__fast_problem``.

    Text: ASCII (NFKC leaves it as it is), whitespace runs collapsed. Whole numbers: plain
    ASCII digits, at most 18 (values takes them as int(raw)). Dates: Gregorian ASCII dates
    with the same separator twice, or 8 digits, that are real dates.
    """
    raw = pl.col("raw")
    none = pl.lit(None, dtype=pl.String)
    if type_ == "text":
        text = raw.str.replace_all(_ASCII_WHITESPACE_RUN, " ").str.strip_chars(" ")
        frame = frame.with_columns(
            __fast=raw.str.len_bytes() == raw.str.len_chars(), __text=text
        ).with_columns(__long=pl.col("__text").str.len_bytes() > 200)
        return frame.select(
            "raw",
            pl.col("__fast").fill_null(False),
            __fast_value=pl.when(~pl.col("__long") & (pl.col("__text") != "")).then("__text"),
            __fast_problem=pl.when("__long").then(pl.lit("text is longer than 200 characters")),
        )
    if type_ == "int":
        return frame.with_columns(
            __fast=raw.str.contains(_PLAIN_DIGITS).fill_null(False),
            __fast_value=raw.cast(pl.Int64, strict=False),
            __fast_problem=none,
        )
    if type_ != "date":
        return frame.with_columns(
            __fast=pl.lit(False),
            __fast_value=pl.lit(None, dtype=_DTYPES[type_]),
            __fast_problem=none,
        )
    parts = frame.select(raw.str.extract_groups(_DATE_FORMS)).unnest("raw")
    parts = parts.select(
        year=pl.coalesce("y", "cy").cast(pl.Int32),
        month=pl.coalesce("m", "cm").cast(pl.Int32),
        day=pl.coalesce("d", "cd").cast(pl.Int32),
        same=pl.col("s1").is_null() | (pl.col("s1") == pl.col("s2")),
    )
    year, month, day = pl.col("year"), pl.col("month"), pl.col("day")
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    days = (
        pl.when(month == 2)
        .then(28 + leap.cast(pl.Int32))
        .when(month.is_in([4, 6, 9, 11]))
        .then(30)
        .otherwise(31)
    )
    ok = pl.col("same") & (year >= 1) & month.is_between(1, 12) & day.is_between(1, days)
    parts = parts.with_columns(__fast=ok.fill_null(False))
    fast = pl.col("__fast")
    value = pl.date(
        pl.when(fast).then(year).otherwise(2000),
        pl.when(fast).then(month).otherwise(1),
        pl.when(fast).then(day).otherwise(1),
    )
    return frame.with_columns(
        parts.select(fast, __fast_value=pl.when(fast).then(value), __fast_problem=none)
    )


def _same(value: object) -> object:
    return value


def _int64(value: object) -> object:
    if isinstance(value, int) and not _INT64_MIN <= value <= _INT64_MAX:
        raise _Fallback  # the row-by-row path decides what such a number does
    return value


def _month_text(value: object) -> object:
    if value is None:
        return None
    year, month = value if isinstance(value, tuple) else (0, 0)
    return f"{year:04d}-{month:02d}"


def _float(value: object) -> object:
    return float(value) if isinstance(value, Decimal) else value


_CONVERT: dict[str, Callable[[object], object]] = {
    "month": _month_text,
    "decimal": _float,
    "int": _int64,
}


# --- rules, unique keys and errors ------------------------------------------------------------


@dataclass
class _Checked:
    errors: validate.Errors
    count: int


def _month_end(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def _rules(spec: KindSpec, ctx: validate.Context, cols: set[str]) -> list[tuple[pl.Expr, str, str]]:
    """validate._row_rules as (condition, column, message), in the order it yields them."""

    def v(name: str) -> pl.Expr:
        return pl.col(name) if name in cols else pl.lit(None)

    rules: list[tuple[pl.Expr, str, str]] = []
    if "company_code" in cols:
        company = pl.col("company_code")
        known = company.is_in(sorted(ctx.known_companies))
        rules.append(
            (
                company.is_not_null() & ~known,
                "company_code",
                "not one of the tenant's group companies",
            )
        )
        if ctx.allowed_companies is not None:
            allowed = company.is_in(sorted(ctx.allowed_companies))
            rules.append(
                (
                    company.is_not_null() & known & ~allowed,
                    "company_code",
                    "you may upload rows of your own companies only",
                )
            )
    if spec.kind == "employees":
        assert ctx.as_of is not None
        end = pl.lit(_month_end(*ctx.as_of))
        hire, exit_date, reason = v("hire_date"), v("exit_date"), v("exit_reason")
        birth = v("birth_date")
        rules += [
            (hire > end, "hire_date", "after the snapshot month (as_of)"),
            (exit_date < hire, "exit_date", "before hire_date"),
            (exit_date > end, "exit_date", "after the snapshot month (as_of)"),
            (
                exit_date.is_not_null() & reason.is_null(),
                "exit_reason",
                "required when exit_date is given",
            ),
            (exit_date.is_null() & reason.is_not_null(), "exit_reason", "given without exit_date"),
            (birth >= hire, "birth_date", "not before hire_date"),
        ]
    elif spec.kind == "payroll":
        year = v("fiscal_year")
        rules += [
            (v("annual_wage") < 0, "annual_wage", "must not be negative"),
            (~year.is_between(1900, 2100), "fiscal_year", "not a plausible fiscal year"),
        ]
    elif spec.kind == "attendance":
        for name in ("overtime_hours", "paid_leave_granted_days", "paid_leave_taken_days"):
            rules.append((v(name) < 0, name, "must not be negative"))
    elif spec.kind == "childcare":
        rules.append(
            (
                v("leave_type").is_null() != v("leave_start_date").is_null(),
                "leave_start_date",
                "leave_type and leave_start_date go together",
            )
        )
    return [(condition.fill_null(False), column, message) for condition, column, message in rules]


def _check(
    spec: KindSpec, ctx: validate.Context, parsed: _Parsed, shown: dict[str, str], width: int
) -> _Checked:
    """Required values, row rules and unique keys, as validate.validate checks them.

    A row with a parse problem gets no rule and no key check; a key counts as seen from the
    first row with it that passed every check, and every later row with it (that parsed) is a
    duplicate of that row.
    """
    cols = set(parsed.values)
    frame = pl.DataFrame(
        [parsed.rows.rename(_ROW), *parsed.values.values()]
        + [t.rename(f"t_{name}") for name, t in parsed.texts.items()]
    ).with_columns(__ok=~pl.any_horizontal([*parsed.bad, pl.lit(False)]))
    rules = _rules(spec, ctx, cols)
    frame = frame.with_columns(
        [cond.alias(f"__rule{k}") for k, (cond, _, _) in enumerate(rules)]
    ).with_columns(__clean=~pl.any_horizontal([pl.col(f"__rule{k}") for k in range(len(rules))]))
    keys = [name for name in spec.unique if name in cols]
    first = pl.when(pl.col("__ok") & pl.col("__clean")).then(pl.col(_ROW)).min().over(keys)
    frame = frame.with_columns(__first=first).with_columns(
        __dup=pl.col("__ok") & pl.col("__first").is_not_null() & (pl.col(_ROW) > pl.col("__first"))
    )
    error_frames = list(parsed.error_frames)
    for k, (_, column, message) in enumerate(rules):
        error_frames.append(
            frame.filter(pl.col("__ok") & pl.col(f"__rule{k}")).select(
                row=pl.col(_ROW),
                seq=pl.lit(width + k, dtype=pl.Int64),
                column=pl.lit(shown.get(column, column), dtype=pl.String),
                value=parsed.text(column).str.slice(0, validate.MAX_VALUE_CHARS),
                message=pl.lit(message, dtype=pl.String),
            )
        )
    key = spec.unique[0]
    error_frames.append(
        frame.filter(pl.col("__dup")).select(
            row=pl.col(_ROW),
            seq=pl.lit(_DUPLICATE_SEQ, dtype=pl.Int64),
            column=pl.lit(shown.get(key), dtype=pl.String),
            value=parsed.text(key).str.slice(0, validate.MAX_VALUE_CHARS),
            message=pl.format("duplicate of row {}", pl.col("__first")),
        )
    )
    all_errors = pl.concat([e.cast(_ERROR_SCHEMA) for e in error_frames], how="vertical").sort(
        ["row", "seq"], maintain_order=True
    )
    errors = validate.Errors(
        listed=[
            validate.CellError(r["row"], r["column"], r["value"], r["message"])
            for r in all_errors.head(validate.MAX_LISTED_ERRORS).iter_rows(named=True)
        ],
        total=all_errors.height,
    )
    good = frame.select(pl.col("__ok") & pl.col("__clean") & ~pl.col("__dup")).to_series()
    count = int(good.sum())
    if not errors.total:
        for name in list(parsed.values):
            parsed.values[name] = parsed.values[name].filter(good)
    return _Checked(errors, count)
