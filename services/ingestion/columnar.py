"""Vectorised validation of CSV uploads with polars: the results of :func:`validate.validate`.

:func:`try_fast` gives exactly what ``validate.validate`` gives over
``reading.read_table`` of the same file: the same :class:`validate.Validated` (frames with the same
columns, dtypes, values and row order, the same row count and warnings), or the same
:class:`validate.Invalid` (the same errors in the same order, the same total). When it cannot
be sure to match the row-by-row reader exactly it returns ``None``, and
:func:`pipeline.read_and_validate` runs the row-by-row path instead (which also reports every
file-level problem).

It streams: the file is read in chunks of whole lines (:func:`_chunks`), each transcoded to
UTF-8 on its own and read by polars' CSV reader; each chunk's cells are parsed and its errors
collected before the next chunk is read, so only the parsed (typed) columns of the whole file are
held, never its text. Each column is parsed once per *distinct* value with the parsers of
:mod:`values` (a per-column table of the values met so far serves the later chunks); ASCII text,
plain digits and ASCII Gregorian dates, whose parse needs no Unicode, are converted in polars.
The required values, the row rules and the unique keys are then checked over the whole file as
polars expressions with the messages and columns of :mod:`validate`, and the errors are ordered
as ``validate.validate`` emits them.

The fast path steps aside for a file holding a double quote (quoted fields may span lines and
hide commas), a lone CR, a NUL byte, a line of 65,536 bytes or more (it might reach the csv
module's field size limit), a line with more cells than the first line, a non-blank cell past
the header, more header columns than allowed, no header, bytes that do not decode, a whole
number beyond 64 bits, or a header elsewhere than on ``header_row`` (e.g. after blank lines).

Row numbers are exact: with no quotes every line is one record, so a record's row is its line
number, and the number of records polars returns for a chunk is checked against the newlines
counted in its bytes. Blank rows (every cell empty or whitespace) are skipped, as the row-by-row
reader skips them.

The encoding is decided from the first chunk as :func:`reading.detect_encoding` decides it over
the whole file: a BOM means UTF-8; otherwise UTF-8 if the first chunk decodes as UTF-8, else
CP932 unless the chunk was plainly UTF-8 up to a broken byte. A later chunk that does not decode
in the chosen encoding sends the file to the row-by-row path, which reports or re-decides.
"""

from __future__ import annotations

import calendar
import codecs
import csv
import datetime as dt
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import polars as pl

from services.ingestion import reading, validate, values
from services.ingestion.kinds import Column, KindSpec

__all__ = ["WHITESPACE", "try_fast"]

CHUNK = 2 << 20  # bytes read (and transcoded, and parsed) at a time
# Every full window of this many bytes must hold a newline, so every line is shorter than 2
# windows (131,072 bytes, hence characters): under the csv module's field size limit (131,072
# by default) and under Limits.max_csv_row_chars.
_WINDOW = 1 << 16
_LIMITS = reading.Limits()
_BOM = codecs.BOM_UTF8
_UTF8_EVIDENCE = 4  # as reading.detect_encoding: that many non-ASCII characters say "UTF-8"
# What Python's str.isspace()/str.split()/str.strip() take as whitespace (a test checks it).
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
_PLAIN_TEXT = r"^[\x21-\x7e]{1,200}$"
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
# Types whose common forms polars converts cell by cell; the others are parsed per distinct value.
_CELLWISE = frozenset({"text", "int"})
_TABLE_LIMIT = 200_000  # distinct values remembered per column across chunks

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
    spec: KindSpec,
    ctx: validate.Context,
    *,
    header_row: int = 1,
    chunk_size: int = CHUNK,
) -> validate.Validated | None:
    """The vectorised validation, or None when the file needs the row-by-row path."""
    if csv.field_size_limit() < 2 * _WINDOW:
        return None
    try:
        with _ahead(_chunks(path, chunk_size)) as chunks:
            return _Validation(spec, ctx, header_row).run(chunks)
    except _Fallback:
        return None


@contextmanager
def _ahead(chunks: Iterator[_Chunk]) -> Iterator[Iterator[_Chunk]]:
    """``chunks``, produced one chunk ahead by a thread of their own.

    Transcoding holds the GIL while most polars work releases it, so the next chunk is read
    and transcoded while this one is parsed. Stopping early (an error, a fallback) stops the
    producer and closes the file.
    """
    handoff: queue.Queue[_Chunk | BaseException | None] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item: _Chunk | BaseException | None) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in chunks:
                if not put(chunk):
                    return
            put(None)
        except BaseException as exc:  # handed to the consumer, which raises it
            put(exc)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def consume() -> Iterator[_Chunk]:
        while (item := handoff.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item

    producer = threading.Thread(target=produce, name="csv-chunks", daemon=True)
    producer.start()
    try:
        yield consume()
    finally:
        stop.set()
        producer.join()


# --- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Chunk:
    text: bytes  # whole lines, UTF-8
    first_line: int  # the line number of its first line
    lines: int


def _chunks(path: Path, size: int) -> Iterator[_Chunk]:
    """The file as chunks of whole lines in UTF-8, after checking each for what the fast path
    cannot read exactly. In UTF-8 and in CP932 the bytes of a multi-byte character are never
    ``"``, CR, LF or NUL, so the bytes are searched, and a chunk cut after a LF decodes alone.
    """
    encoding: str | None = None
    carry = b""
    line = 1
    with open(path, "rb") as file:
        while True:
            block = file.read(size)
            pending = carry + block
            if not pending:
                break
            cut = pending.rfind(b"\n") + 1 if block else len(pending)
            if cut == 0:
                if len(pending) >= 2 * _WINDOW:
                    raise _Fallback  # a line too long for the window check
                carry = pending
                continue
            whole, carry = pending[:cut], pending[cut:]
            if encoding is None:
                encoding = _sniff(whole)
                if encoding == "utf-8-sig":
                    whole = whole[len(_BOM) :]
            _check_bytes(whole)
            lines = whole.count(b"\n") + (not whole.endswith(b"\n"))
            yield _Chunk(_transcode(whole, encoding), line, lines)
            line += lines
    if encoding is None:
        raise _Fallback  # an empty file: read_table reports it


def _sniff(first: bytes) -> str:
    """The encoding reading.detect_encoding picks, judged on the first chunk (see above)."""
    if first.startswith(_BOM):
        if first[len(_BOM) :].startswith(_BOM):
            raise _Fallback  # a second BOM: keep the exact decoding of the row-by-row reader
        return "utf-8-sig"
    try:
        first.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = first[: exc.start].decode("utf-8")
        if len(before) - len(before.encode("ascii", "ignore")) >= _UTF8_EVIDENCE:
            raise _Fallback from exc  # broken UTF-8: read_table names the line
        return "cp932"
    return "utf-8"


def _check_bytes(whole: bytes) -> None:
    if b'"' in whole or b"\x00" in whole:
        raise _Fallback
    if whole.count(b"\r") != whole.count(b"\r\n"):
        raise _Fallback  # a CR that ends a line by itself
    for at in range(0, len(whole) - _WINDOW + 1, _WINDOW):
        if whole.find(b"\n", at, at + _WINDOW) < 0:
            raise _Fallback


def _transcode(whole: bytes, encoding: str) -> bytes:
    """UTF-8 is left as it is (polars' reader refuses invalid UTF-8); CP932 is decoded."""
    if encoding != "cp932":
        return whole
    try:
        return whole.decode("cp932").encode("utf-8")
    except UnicodeError as exc:
        raise _Fallback from exc


def _read_cells(chunk: _Chunk, width: int | None) -> pl.DataFrame:
    """Every line's cells (``c0``, ``c1`` …, as many as the file's first line has; null for an
    empty cell and for one missing from a short line) and its line number (``__row``).
    """
    try:
        frame = pl.read_csv(
            chunk.text,
            has_header=False,
            quote_char=None,
            infer_schema=False,
            schema=None if width is None else {f"c{p}": pl.String() for p in range(width)},
            encoding="utf8",
            raise_if_empty=False,
        )
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise _Fallback from exc  # e.g. a line with more cells than the first, invalid UTF-8
    if frame.height != chunk.lines or frame.width == 0:
        raise _Fallback
    frame.columns = [f"c{position}" for position in range(frame.width)]
    rows = pl.int_range(chunk.first_line, chunk.first_line + chunk.lines, dtype=pl.Int64)
    return frame.with_columns(rows.alias(_ROW))


def _cell_counts(chunk: _Chunk, rows: pl.Series) -> pl.Series:
    """How many cells the lines ``rows`` of a chunk hold (for required-value errors only)."""
    lines = pl.read_csv(
        chunk.text,
        has_header=False,
        separator="\x00",  # never in the file: one field per line
        quote_char=None,
        infer_schema=False,
        empty_string_is_null=False,
        encoding="utf8",
    ).to_series()
    picked = lines.gather(rows - chunk.first_line).fill_null("")
    return picked.str.count_matches(",", literal=True) + 1


def _blank(name: str) -> pl.Expr:
    return pl.col(name).is_null() | (pl.col(name).str.strip_chars(WHITESPACE) == "")


def _drop_blank_rows(cells: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """The rows with a non-blank cell. Only rows whose first cell is blank are looked at whole:
    in a real file that is a handful, and stripping every cell of every row costs."""
    starts_plain = pl.col(names[0]).str.contains("^[!-~]").fill_null(False)  # cheaper: no strip
    maybe = cells.filter(~starts_plain).filter(_blank(names[0]))
    blank = maybe.filter(pl.all_horizontal([_blank(name) for name in names[1:]] or [True]))
    if blank.is_empty():
        return cells
    return cells.filter(~pl.col(_ROW).is_in(blank.get_column(_ROW).implode()))


# --- validating -------------------------------------------------------------------------------


@dataclass
class _Header:
    names: list[str]  # the frame's cell columns (c0, c1 …)
    width: int  # header cells (trailing empty ones dropped)
    raw: list[str]
    mapped: list[str | None]
    shown: dict[str, str]  # column name → its header as the customer wrote it
    errors: validate.Errors


class _Validation:
    """One file's chunks → the result of validate.validate (see the module docstring)."""

    def __init__(self, spec: KindSpec, ctx: validate.Context, header_row: int) -> None:
        self.spec = spec
        self.ctx = ctx
        self.header_row = header_row
        self.header: _Header | None = None
        self.parsers: dict[str, _ColumnParser] = {}
        self.parsed = _Parsed()

    def run(self, chunks: Iterator[_Chunk]) -> validate.Validated:
        width: int | None = None
        for chunk in chunks:
            cells = _read_cells(chunk, width)
            width = cells.width - 1
            names = [f"c{p}" for p in range(width)]
            cells = _drop_blank_rows(cells, names)
            if self.header is None:
                cells = self._take_header(cells, names)
            header = self.header
            assert header is not None
            beyond = names[header.width :]
            if (
                beyond
                and not cells.select(pl.all_horizontal(_blank(n) for n in beyond).all()).item()
            ):
                raise _Fallback  # read_table: ragged_row
            if header.errors.total:
                continue  # read on: a later chunk may still send the file to the row-by-row path
            self._parse(chunk, cells, header)
        header = self.header
        if header is None:
            raise _Fallback  # read_table: empty_file
        if header.errors.total:
            raise validate.Invalid(header.errors)
        return self._finish(header)

    def _take_header(self, cells: pl.DataFrame, names: list[str]) -> pl.DataFrame:
        if cells.height == 0:
            raise _Fallback  # blank lines first (or only): the row-by-row path decides
        first = cells.row(0, named=True)
        if first[_ROW] != self.header_row:
            raise _Fallback
        raw = [("" if first[name] is None else str(first[name])).strip() for name in names]
        while raw and not raw[-1]:
            raw.pop()
        if len(raw) > _LIMITS.max_columns:
            raise _Fallback  # read_table: too_many_columns
        errors = validate.Errors()
        mapped = validate.map_header(self.spec, raw, self.ctx, errors, self.header_row)
        shown = {name: cell for cell, name in zip(raw, mapped, strict=True) if name is not None}
        self.header = _Header(names, len(raw), raw, mapped, shown, errors)
        self.parsers = {n: _ColumnParser(self.spec.column(n)) for n in mapped if n is not None}
        return cells.slice(1)

    def _parse(self, chunk: _Chunk, cells: pl.DataFrame, header: _Header) -> None:
        rows = cells.get_column(_ROW)
        ok = pl.repeat(True, cells.height, dtype=pl.Boolean, eager=True)
        missing: list[tuple[int, pl.DataFrame]] = []  # required values missing, per position
        for position, name in enumerate(header.mapped):
            if name is None:
                continue
            column = self.spec.column(name)
            raw = cells.get_column(header.names[position])
            value, text, problem = self.parsers[name].parse(raw)
            if column.required:
                absent = problem.is_null() & value.is_null()
                required = pl.repeat(_REQUIRED, len(problem), dtype=pl.String, eager=True)
                problem = problem.zip_with(~absent, required)
            self.parsed.add(name, column.type, value, text)
            if problem.null_count() == len(problem):
                continue
            ok = ok & problem.is_null()
            errors = pl.DataFrame(
                {
                    "row": rows,
                    "message": problem,
                    "value": raw.str.slice(0, validate.MAX_VALUE_CHARS),
                }
            ).filter(pl.col("message").is_not_null())
            errors = errors.select(
                "row",
                seq=pl.lit(position, dtype=pl.Int64),
                column=pl.lit(header.shown[name], dtype=pl.String),
                value="value",
                message="message",
            )
            if column.required:
                missing.append((position, errors))
            else:
                self.parsed.errors.append(errors)
        for position, errors in missing:
            self.parsed.errors.append(_show_missing_cells(chunk, position, errors))
        self.parsed.rows.append(rows)
        self.parsed.ok.append(ok)

    def _finish(self, header: _Header) -> validate.Validated:
        spec, parsed = self.spec, self.parsed
        result = _check(spec, self.ctx, parsed, header.shown, header.width)
        if result.errors.total:
            raise validate.Invalid(result.errors)
        if result.count == 0:
            result.errors.add(
                self.header_row + 1, None, None, "the file has a header but no data rows"
            )
            raise validate.Invalid(result.errors)
        final = pl.DataFrame(
            [
                parsed.column(c.name)
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
            f"unknown column ignored: {raw}"
            for raw, name in zip(header.raw, header.mapped, strict=True)
            if name is None
        ]
        return validate.Validated(validate._periods(spec, final, self.ctx), result.count, warnings)


def _show_missing_cells(chunk: _Chunk, position: int, errors: pl.DataFrame) -> pl.DataFrame:
    """A required cell that is empty shows as "" (the row-by-row reader's value), one missing
    from a short line as None; polars reads both as null, so look at those lines' cells.
    """
    empty = pl.col("value").is_null() & (pl.col("message") == _REQUIRED)
    rows = errors.filter(empty).get_column("row")
    if rows.is_empty():
        return errors
    counts = pl.DataFrame({"row": rows, "__cells": _cell_counts(chunk, rows)})
    return (
        errors.join(counts, on="row", how="left", maintain_order="left")
        .with_columns(
            value=pl.when(empty & (pl.col("__cells") > position))
            .then(pl.lit(""))
            .otherwise("value")
        )
        .drop("__cells")
    )


@dataclass
class _Parsed:
    """The parsed columns of the data rows (chunk by chunk), and their parse errors."""

    rows: list[pl.Series] = field(default_factory=list)  # each data row's line number
    ok: list[pl.Series] = field(default_factory=list)  # the row parsed without a problem
    values: dict[str, list[pl.Series]] = field(default_factory=dict)  # name → values (dtype)
    texts: dict[str, list[pl.Series]] = field(default_factory=dict)  # str() for _PYTHON_TEXT
    types: dict[str, str] = field(default_factory=dict)  # column name → value type
    errors: list[pl.DataFrame] = field(default_factory=list)  # rows of _ERROR_SCHEMA

    def add(self, name: str, type_: str, value: pl.Series, text: pl.Series) -> None:
        self.values.setdefault(name, []).append(value.rename(name))
        self.types[name] = type_
        if type_ in _PYTHON_TEXT:
            self.texts.setdefault(name, []).append(text.rename(f"t_{name}"))

    def column(self, name: str) -> pl.Series:
        return _concat(self.values[name])

    def text(self, name: str) -> pl.Expr:
        """str() of the parsed values of a column (null for None), as validate shows them."""
        if name in self.texts:
            return pl.col(f"t_{name}")
        if name not in self.types:
            return pl.lit(None, dtype=pl.String)
        if self.types[name] == "bool":
            return pl.col(name).replace_strict([True, False], ["True", "False"], default=None)
        return pl.col(name).cast(pl.String)  # text, words, int: as is; date: ISO like str()


def _concat(parts: list[pl.Series]) -> pl.Series:
    return parts[0] if len(parts) == 1 else pl.concat(parts, rechunk=False)


class _ColumnParser:
    """Parses one column chunk by chunk: (parsed values, their str() for _PYTHON_TEXT types,
    error message or null), row for row.

    Cells in a form :func:`_fast` reads exactly are converted in polars; every other distinct
    cell is parsed once by the parser of :mod:`values`, and remembered for the later chunks.
    """

    def __init__(self, column: Column) -> None:
        self.type = column.type
        self.dtype = _DTYPES[column.type]
        self.parse_one = values.PARSERS[column.type]
        self.convert = _CONVERT.get(column.type, _same)
        self.table = self._table([], [], [], [])

    def parse(self, raw: pl.Series) -> tuple[pl.Series, pl.Series, pl.Series]:
        frame = pl.DataFrame({"raw": raw})
        if self.type in _CELLWISE:
            frame = _fast(self.type, frame)
            pending = frame.filter(~pl.col("__fast")).get_column("raw")
        else:
            frame = frame.with_columns(
                __fast=pl.lit(False),
                __fast_value=pl.lit(None, dtype=self.dtype),
                __fast_problem=pl.lit(None, dtype=pl.String),
            )
            pending = raw
        if pending.is_empty():  # every cell was read in polars
            frame = frame.with_columns(self.table.drop("raw").clear(len(frame)))
        else:
            self._learn(pending.drop_nulls().unique())
            frame = frame.join(self.table, on="raw", how="left", maintain_order="left")
        out = frame.select(
            value=pl.when("__fast").then("__fast_value").otherwise("__value"),
            problem=pl.when("__fast").then("__fast_problem").otherwise("__problem"),
            # (_fast reads no cell of these types)
            text=pl.col("__text") if self.type in _PYTHON_TEXT else pl.lit(None, dtype=pl.String),
        )
        return out.get_column("value"), out.get_column("text"), out.get_column("problem")

    def _learn(self, distinct: pl.Series) -> None:
        """Add the parse of the values not met before to the table."""
        new = pl.DataFrame({"raw": distinct}).join(self.table, on="raw", how="anti").to_series()
        if new.is_empty():
            return
        if self.table.height + len(new) > _TABLE_LIMIT:
            self.table = self.table.clear()  # forget: the memory stays bounded
            new = distinct
        keys: list[str] = []
        parsed: list[object] = []
        texts: list[str | None] = []
        problems: list[str | None] = []
        fast = None if self.type in _CELLWISE else _fast(self.type, pl.DataFrame({"raw": new}))
        if fast is not None and fast.get_column("__fast").any():
            known = fast.filter("__fast").select(
                "raw",
                __value="__fast_value",
                __text=pl.lit(None, dtype=pl.String),
                __problem="__fast_problem",
            )
            self.table = pl.concat([self.table, known])
            new = fast.filter(~pl.col("__fast")).get_column("raw")
        for cell in new.to_list():
            keys.append(cell)
            try:
                value = self.parse_one(cell)
            except values.ValueProblem as problem:
                parsed.append(None)
                texts.append(None)
                problems.append(str(problem))
                continue
            parsed.append(self.convert(value))
            texts.append(None if value is None else str(value))
            problems.append(None)
        self.table = pl.concat([self.table, self._table(keys, parsed, texts, problems)])

    def _table(
        self,
        keys: list[str],
        parsed: list[object],
        texts: list[str | None],
        problems: list[str | None],
    ) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "raw": pl.Series(keys, dtype=pl.String),
                "__value": pl.Series(parsed, dtype=self.dtype),
                "__text": pl.Series(texts, dtype=pl.String),
                "__problem": pl.Series(problems, dtype=pl.String),
            }
        )


def _fast(type_: str, frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` (column ``raw``) with ``__fast`` (the cell is in a form polars parses exactly as
    values does), ``__fast_value`` and ``__fast_problem``.

    Text: printable ASCII without spaces, at most 200 characters. Whole numbers: plain
    ASCII digits, at most 18 (values takes them as int(raw)). Dates: Gregorian ASCII dates
    with the same separator twice, or 8 digits, that are real dates.
    """
    raw = pl.col("raw")
    none = pl.lit(None, dtype=pl.String)
    if type_ == "text":
        # Printable ASCII with no space: NFKC leaves it as it is, and there is nothing to strip.
        return frame.with_columns(
            __fast=raw.str.contains(_PLAIN_TEXT).fill_null(False),
            __fast_value=raw,
            __fast_problem=none,
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


def _may_repeat(frame: pl.DataFrame, keys: list[str]) -> bool:
    """Whether two rows may share a key: two equal hashes (a duplicate, or a collision).

    Sorting 8-byte hashes takes a fraction of the memory a hash table of the keys would.
    """
    hashes = frame.select(pl.struct(keys).hash()).to_series().sort()
    return bool((hashes == hashes.shift(1)).any())


def _check(
    spec: KindSpec, ctx: validate.Context, parsed: _Parsed, shown: dict[str, str], width: int
) -> _Checked:
    """Required values, row rules and unique keys, as validate.validate checks them.

    A row with a parse problem gets no rule and no key check; a key counts as seen from the
    first row with it that passed every check, and every later row with it (that parsed) is a
    duplicate of that row.
    """
    cols = set(parsed.values)
    rules = _rules(spec, ctx, cols)
    keys = [name for name in spec.unique if name in cols]
    # Only the columns the rules and the keys read: the frame is the whole file.
    needed = set(keys).union(*(cond.meta.root_names() for cond, _, _ in rules)) & cols
    frame = pl.DataFrame(
        [
            _concat(parsed.rows).rename(_ROW),
            _concat(parsed.ok).rename("__ok"),
            *(parsed.column(name) for name in parsed.values if name in needed),
            *(_concat(texts) for name, texts in parsed.texts.items() if name in needed),
        ]
    )
    frame = frame.with_columns(
        [cond.alias(f"__rule{k}") for k, (cond, _, _) in enumerate(rules)]
    ).with_columns(__clean=~pl.any_horizontal([pl.col(f"__rule{k}") for k in range(len(rules))]))
    if _may_repeat(frame, keys):
        first = pl.when(pl.col("__ok") & pl.col("__clean")).then(pl.col(_ROW)).min().over(keys)
        frame = frame.with_columns(__first=first).with_columns(
            __dup=pl.col("__ok")
            & pl.col("__first").is_not_null()
            & (pl.col(_ROW) > pl.col("__first"))
        )
    else:  # (the common case, and a cheap test: no key occurs twice)
        frame = frame.with_columns(__first=pl.lit(None, dtype=pl.Int64), __dup=pl.lit(False))
    error_frames = list(parsed.errors)
    for k, (_, column, message) in enumerate(rules):
        hits = frame.filter(pl.col("__ok") & pl.col(f"__rule{k}"))
        if hits.height:
            error_frames.append(
                hits.select(
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
    all_errors = pl.concat([e.cast(_ERROR_SCHEMA) for e in error_frames], how="vertical")
    total = all_errors.height
    errors = validate.Errors(total=total)
    if total:
        listed = all_errors.sort(["row", "seq"], maintain_order=True)
        errors.listed = [
            validate.CellError(r["row"], r["column"], r["value"], r["message"])
            for r in listed.head(validate.MAX_LISTED_ERRORS).iter_rows(named=True)
        ]
        good = frame.select(pl.col("__ok") & pl.col("__clean") & ~pl.col("__dup")).to_series()
        return _Checked(errors, int(good.sum()))
    # No error: every row is good (a row that is not has an error), so nothing is filtered.
    return _Checked(errors, frame.height)
