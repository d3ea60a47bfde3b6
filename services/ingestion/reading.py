"""Reading uploaded HR files: CSV (UTF-8, UTF-8 with BOM, Shift_JIS/CP932) and XLSX.

An upload is spooled to a file on disk first; :func:`read_table` turns that file into a header
and a lazy stream of rows of raw cell values, each with the row number the customer sees in the
file (the line number in a CSV, the worksheet row in an XLSX; the header is normally row 1).
Nothing here maps headers to fields or converts values: that is the next layer's job.

The whole file is never held in memory. CSV text is decoded and parsed line by line, and a
single CSV row is capped at :attr:`Limits.max_csv_row_chars`. An XLSX file is inspected with
:mod:`zipfile` before any parsing (a decompression bomb is refused from the central directory
alone; :mod:`zipfile` never inflates an entry past its declared size, so the declared sizes can be
trusted) and then read with openpyxl's read-only, streaming workbook.

Every problem a customer can fix is a :class:`FileProblem` with a stable ``code``, a message to
show and ``details`` naming where (``line``/``row``, ``encoding``, ``sheet`` …).
"""

from __future__ import annotations

import codecs
import csv
import importlib
import io
import zipfile
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, Self

# openpyxl ships no type information (and types-openpyxl is not a dependency): it is used through
# this ``Any`` alias, and every value taken from it is checked or converted before it leaves here.
openpyxl: Any = importlib.import_module("openpyxl")

__all__ = [
    "FileProblem",
    "Limits",
    "Table",
    "detect_encoding",
    "read_table",
    "write_template_csv",
    "write_template_xlsx",
]

Format = Literal["csv", "xlsx"]

_UTF8_BOM = codecs.BOM_UTF8
_CHUNK = 64 * 1024
_ZIP_LOCAL_HEADER = b"PK\x03\x04"
_OLE2_SIGNATURE = bytes.fromhex("d0cf11e0a1b11ae1")  # legacy .xls, and password-protected .xlsx
# The compression ratio is judged only for entries at least this large once inflated: a bomb has
# to be big to hurt, and small XML parts (an empty sheet, styles) can legitimately compress >100x.
_RATIO_MIN_SIZE = 1024 * 1024
_EXTENSIONS: dict[str, Format] = {".csv": "csv", ".txt": "csv", ".xlsx": "xlsx"}
# Non-ASCII characters decoded as UTF-8 before an invalid byte that make a file "UTF-8 with a
# broken byte" rather than CP932: CP932 text almost never forms even one valid UTF-8 sequence.
_UTF8_EVIDENCE = 4
_ENCODING_NAMES = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "cp932": "Shift_JIS (CP932)"}


class FileProblem(Exception):
    """A problem with the uploaded file itself, reported to the customer.

    ``code`` is stable (``empty_file``, ``undecodable_text``, ``too_many_columns``,
    ``not_a_spreadsheet``, ``xlsx_too_large``, ``sheet_not_found``, ``unsupported_format``,
    ``ragged_row``, ``row_too_long``, ``malformed_csv``); ``message`` is for people; ``details``
    is JSON-friendly and says where (``line`` for CSV, ``row`` for XLSX, ``encoding``, …).
    """

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details: dict[str, Any] = dict(details or {})


@dataclass(frozen=True)
class Limits:
    """Caps on what one upload may contain.

    ``max_columns``: header cells (after trailing empty ones are dropped).
    ``max_xlsx_uncompressed``: total inflated size of all entries of an XLSX (bytes).
    ``max_xlsx_ratio``: inflated/compressed size of any one XLSX entry of 1 MiB or more.
    ``max_csv_row_chars``: characters in one CSV row (all its lines, for quoted newlines).
    """

    max_columns: int = 100
    max_xlsx_uncompressed: int = 1_000_000_000
    max_xlsx_ratio: int = 100
    max_csv_row_chars: int = 1_000_000


@dataclass(frozen=True)
class Table:
    """The header and the rows of an uploaded file.

    ``header``: the header cells as strings, stripped, trailing empty cells dropped.
    ``rows``: ``(row number, cells)`` pairs, read lazily, blank rows left out; every row has exactly
    ``len(header)`` cells (missing trailing cells are ``None``). CSV cells are ``str`` exactly as
    in the file (not stripped); XLSX cells are what openpyxl reads (``str`` stripped, ``int``,
    ``float``, ``bool``, ``datetime``/``date``/``time``, ``None``).
    ``header_row``: the row number of the header (1 unless blank rows come first).

    The file stays open while ``rows`` is being read and is closed when it is exhausted, on a
    :class:`FileProblem`, or by :meth:`close` (also ``with table: ...``) if reading stops early.
    """

    header: list[str]
    rows: Iterator[tuple[int, list[object]]]
    encoding: str | None
    format: Format
    header_row: int = 1

    def close(self) -> None:
        if isinstance(self.rows, Generator):
            self.rows.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# --- encoding detection ---------------------------------------------------------------------


def detect_encoding(path: str | Path) -> str:
    """``"utf-8-sig"``, ``"utf-8"`` or ``"cp932"``, checked over the whole file, chunk by chunk.

    A file starting with a UTF-8 BOM must be valid UTF-8 after it. Otherwise strict UTF-8 is
    tried, then strict CP932 (Microsoft's Shift_JIS, as Excel writes it). If neither decodes the
    file, ``undecodable_text`` names the line where the decoding that got further failed.

    CP932 decodes most UTF-8 Japanese text without an error (into mojibake), so a file that is
    plainly UTF-8 up to a broken byte (:data:`_UTF8_EVIDENCE` non-ASCII characters before it) is
    reported as broken UTF-8 rather than read as CP932.
    """
    with open(path, "rb") as file:
        starts_with_bom = file.read(len(_UTF8_BOM)) == _UTF8_BOM
    if starts_with_bom:
        bom_failure, _ = _first_decode_error(path, "utf-8", skip=len(_UTF8_BOM))
        if bom_failure is None:
            return "utf-8-sig"
        raise _undecodable(path, bom_failure, "utf-8-sig", "the file starts with a UTF-8 BOM")
    utf8_failure, non_ascii = _first_decode_error(path, "utf-8")
    if utf8_failure is None:
        return "utf-8"
    if non_ascii >= _UTF8_EVIDENCE:
        raise _undecodable(path, utf8_failure, "utf-8", "the lines before it are UTF-8")
    cp932_failure, _ = _first_decode_error(path, "cp932")
    if cp932_failure is None:
        return "cp932"
    # Report the encoding that read further: most likely the one the file was meant to be in.
    if utf8_failure > cp932_failure:
        raise _undecodable(path, utf8_failure, "utf-8")
    raise _undecodable(path, cp932_failure, "cp932")


def _first_decode_error(
    path: str | Path, encoding: str, *, skip: int = 0
) -> tuple[int | None, int]:
    """The byte offset of the first byte ``encoding`` cannot decode (None if every byte decodes)
    and how many non-ASCII characters were decoded before it.
    """
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    consumed = skip  # bytes handed to the decoder so far, as an offset in the file
    non_ascii = 0
    with open(path, "rb") as file:
        file.seek(skip)
        while True:
            chunk = file.read(_CHUNK)
            # A multi-byte character split across chunks waits in the decoder's buffer; a decode
            # error's offsets count from the start of that buffer, not of ``chunk``.
            pending = len(decoder.getstate()[0])
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                non_ascii += _count_non_ascii(exc.object[: exc.start].decode(encoding))
                return consumed - pending + exc.start, non_ascii
            non_ascii += _count_non_ascii(text)
            if not chunk:
                return None, non_ascii
            consumed += len(chunk)


def _count_non_ascii(text: str) -> int:
    return 0 if text.isascii() else len(text) - len(text.encode("ascii", "ignore"))


def _line_at(path: str | Path, offset: int) -> int:
    """The 1-based line holding byte ``offset``; lines end with CRLF, LF or CR, as csv sees them.

    Counting bytes is safe for both encodings: in UTF-8 and in CP932 the bytes of a multi-byte
    character are never CR or LF.
    """
    breaks = 0
    after_cr = False  # the previous chunk ended with CR: a LF starting this one ends no new line
    remaining = offset
    with open(path, "rb") as file:
        while remaining > 0:
            chunk = file.read(min(_CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            breaks += chunk.count(b"\n") + chunk.count(b"\r") - chunk.count(b"\r\n")
            if after_cr and chunk.startswith(b"\n"):
                breaks -= 1
            after_cr = chunk.endswith(b"\r")
    return breaks + 1


def _undecodable(path: str | Path, offset: int, encoding: str, why: str = "") -> FileProblem:
    line = _line_at(path, offset)
    if why:
        what = f"as UTF-8 text ({why})"
    else:
        what = (
            "as UTF-8 or as Shift_JIS (CP932) text "
            f"(the {_ENCODING_NAMES[encoding]} decoding got furthest)"
        )
    return FileProblem(
        "undecodable_text",
        f"Line {line} cannot be read {what}. "
        "Save the file as CSV (UTF-8 or Shift_JIS) and upload it again.",
        {"line": line, "encoding": encoding},
    )


# --- reading ----------------------------------------------------------------------------------


def read_table(
    path: str | Path,
    *,
    filename: str,
    sheet: str | None = None,
    limits: Limits = Limits(),
) -> Table:
    """Open the upload at ``path`` (named ``filename`` by the customer) and read its header.

    The format comes from the extension of ``filename`` (``.csv``/``.txt``, ``.xlsx``); an XLSX
    must also be a zip file. ``sheet`` picks an XLSX worksheet by name (default: the first one)
    and is ignored for CSV. Raises :class:`FileProblem` for anything wrong with the file up to
    and including its header; problems further down are raised while ``rows`` is read.
    """
    suffix = Path(filename).suffix.lower()
    format_ = _EXTENSIONS.get(suffix)
    if format_ is None:
        raise FileProblem(
            "unsupported_format",
            f"{filename!r} is not a supported file type: upload a .csv or .xlsx file.",
            {"filename": filename, "extension": suffix},
        )
    if Path(path).stat().st_size == 0:
        raise _empty_file()
    encoding: str | None
    if format_ == "csv":
        encoding = detect_encoding(path)
        records = _csv_records(path, encoding, limits)
    else:
        encoding = None
        records = _xlsx_records(path, filename, sheet, limits)
    # The generators yield the header first: reading it here opens the file and raises any
    # problem with it now; a generator that raised is finished, and its file closed.
    first = next(records, None)
    if first is None:
        raise _empty_file()
    header_row, header = first
    return Table(
        header=[str(cell) for cell in header],
        rows=records,
        encoding=encoding,
        format=format_,
        header_row=header_row,
    )


def _empty_file() -> FileProblem:
    return FileProblem("empty_file", "The file is empty: it has no header row and no data.")


def _blank(cell: object) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _check_header(header: list[str], limits: Limits) -> list[str]:
    while header and not header[-1]:
        header.pop()
    if len(header) > limits.max_columns:
        raise FileProblem(
            "too_many_columns",
            f"The header has {len(header)} columns; at most {limits.max_columns} are allowed.",
            {"columns": len(header), "max_columns": limits.max_columns},
        )
    return header


def _fit_row(cells: list[object], width: int, where: dict[str, Any]) -> list[object]:
    """``cells`` padded with None or cut to ``width``; cutting off a non-blank cell is an error."""
    if len(cells) <= width:
        cells.extend([None] * (width - len(cells)))
        return cells
    extra = cells[width:]
    if all(_blank(cell) for cell in extra):
        return cells[:width]
    used = width + max(i for i, cell in enumerate(extra, start=1) if not _blank(cell))
    place = " ".join(f"{key} {value}" for key, value in where.items())
    raise FileProblem(
        "ragged_row",
        f"{place.capitalize()} has {used} cells but the header has only {width} columns: "
        "remove the extra values or add a header for them.",
        {**where, "cells": used, "columns": width},
    )


# --- CSV --------------------------------------------------------------------------------------


class _RowBudget:
    """Lines for :func:`csv.reader`, each read with a cap so no row can fill the memory.

    ``reset()`` is called after each record: the csv reader asks for a line only when it needs
    one, so the lines read since then all belong to the record being parsed.
    """

    def __init__(self, stream: IO[str], max_chars: int) -> None:
        self._stream = stream
        self._max_chars = max_chars
        self._used = 0
        self.lines = 0

    def reset(self) -> None:
        self._used = 0

    def __iter__(self) -> Iterator[str]:
        while line := self._stream.readline(self._max_chars - self._used + 1):
            self.lines += 1
            self._used += len(line)
            if self._used > self._max_chars:
                raise FileProblem(
                    "row_too_long",
                    f"The row that reaches line {self.lines} is longer than "
                    f"{self._max_chars:,} characters (an unclosed quote can cause this).",
                    {"line": self.lines, "max_chars": self._max_chars},
                )
            yield line


def _csv_records(
    path: str | Path, encoding: str, limits: Limits
) -> Generator[tuple[int, list[object]], None, None]:
    """The header, then the data rows, of a CSV file: ``(line number of the row's start, cells)``.

    Blank rows (every cell empty or whitespace) are skipped but counted, as are the extra lines
    of quoted fields holding newlines. The header is the first non-blank row.
    """
    with open(path, encoding=encoding, errors="strict", newline="") as stream:
        budget = _RowBudget(stream, limits.max_csv_row_chars)
        reader = csv.reader(budget)
        width: int | None = None
        end = 0  # the line the previous record ended on
        try:
            for record in reader:
                budget.reset()
                start, end = end + 1, reader.line_num
                if all(_blank(cell) for cell in record):
                    continue
                if width is None:
                    header = _check_header([cell.strip() for cell in record], limits)
                    width = len(header)
                    yield start, [*header]
                else:
                    yield start, _fit_row([*record], width, {"line": start})
        except csv.Error as exc:
            line = budget.lines
            raise FileProblem(
                "malformed_csv",
                f"Line {line} is not valid CSV ({exc}).",
                {"line": line, "error": str(exc)},
            ) from exc
        except UnicodeDecodeError as exc:  # the file changed after detect_encoding read it
            line = budget.lines + 1
            raise FileProblem(
                "undecodable_text",
                f"Line {line} or near it cannot be read as {_ENCODING_NAMES[encoding]} text.",
                {"line": line, "encoding": encoding},
            ) from exc


# --- XLSX -------------------------------------------------------------------------------------


def _check_zip(path: str | Path, filename: str, limits: Limits) -> None:
    """Refuse what is not a zip file, and zip bombs, from the central directory alone."""
    with open(path, "rb") as file:
        signature = file.read(len(_OLE2_SIGNATURE))
    if not signature.startswith(_ZIP_LOCAL_HEADER):
        hint = (
            " It looks like a legacy .xls or a password-protected workbook: "
            "remove the password and save it as .xlsx."
            if signature == _OLE2_SIGNATURE
            else ""
        )
        raise _not_a_spreadsheet(filename, hint)
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise _not_a_spreadsheet(filename) from exc
    total = 0
    for entry in entries:
        total += entry.file_size
        if total > limits.max_xlsx_uncompressed:
            raise FileProblem(
                "xlsx_too_large",
                f"{filename!r} unpacks to more than {limits.max_xlsx_uncompressed:,} bytes.",
                {"uncompressed": total, "max_uncompressed": limits.max_xlsx_uncompressed},
            )
        ratio = entry.file_size / max(entry.compress_size, 1)
        if entry.file_size >= _RATIO_MIN_SIZE and ratio > limits.max_xlsx_ratio:
            raise FileProblem(
                "xlsx_too_large",
                f"{filename!r} contains a part compressed {ratio:,.0f} times "
                f"(at most {limits.max_xlsx_ratio} is allowed).",
                {
                    "entry": entry.filename,
                    "ratio": round(ratio, 1),
                    "max_ratio": limits.max_xlsx_ratio,
                },
            )


def _not_a_spreadsheet(filename: str, hint: str = "") -> FileProblem:
    return FileProblem(
        "not_a_spreadsheet",
        f"{filename!r} is not a readable Excel (.xlsx) workbook.{hint}",
        {"filename": filename},
    )


def _xlsx_records(
    path: str | Path, filename: str, sheet: str | None, limits: Limits
) -> Generator[tuple[int, list[object]], None, None]:
    """The header, then the data rows, of one worksheet: ``(worksheet row, cells)``."""
    _check_zip(path, filename, limits)
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl fails on a broken workbook in many different ways
        raise _not_a_spreadsheet(filename) from exc
    try:
        worksheets = {ws.title: ws for ws in workbook.worksheets}  # not chartsheets
        if sheet is None:
            if not worksheets:
                raise _empty_file()
            worksheet = next(iter(worksheets.values()))
        elif sheet in worksheets:
            worksheet = worksheets[sheet]
        else:
            raise FileProblem(
                "sheet_not_found",
                f"{filename!r} has no worksheet named {sheet!r}.",
                {"sheet": sheet, "sheets": list(worksheets)},
            )
        # Read every row there is: the dimension the writer recorded may be wrong, and with it
        # openpyxl would silently stop early.
        worksheet.reset_dimensions()
        width: int | None = None
        try:
            for number, values in enumerate(worksheet.iter_rows(values_only=True), start=1):
                cells = [value.strip() if isinstance(value, str) else value for value in values]
                while cells and _blank(cells[-1]):
                    cells.pop()
                if not cells:
                    continue
                if width is None:
                    header = _check_header(["" if c is None else str(c) for c in cells], limits)
                    width = len(header)
                    yield number, [*header]
                else:
                    yield number, _fit_row(cells, width, {"row": number})
        except FileProblem:
            raise
        except Exception as exc:  # a damaged worksheet part, found while streaming it
            raise _not_a_spreadsheet(filename) from exc
    finally:
        workbook.close()  # a read-only workbook keeps its zip file open until closed


# --- templates --------------------------------------------------------------------------------


def write_template_csv(columns: list[str], *, encoding: str) -> bytes:
    """A CSV holding just the header row (CRLF), encoded for the customer's Excel.

    Use ``"cp932"`` for Japanese headers (Excel in Japan opens it directly) or ``"utf-8-sig"``.
    A column name the encoding cannot represent raises :class:`UnicodeEncodeError`.
    """
    text = io.StringIO(newline="")
    csv.writer(text, lineterminator="\r\n").writerow(columns)
    return text.getvalue().encode(encoding)


def write_template_xlsx(columns: list[str]) -> bytes:
    """An XLSX with one worksheet, ``data``, holding just the header row, in bold."""
    cell_module: Any = importlib.import_module("openpyxl.cell")
    styles: Any = importlib.import_module("openpyxl.styles")
    workbook = openpyxl.Workbook(write_only=True)
    worksheet = workbook.create_sheet("data")
    bold = styles.Font(bold=True)
    header = []
    for name in columns:
        cell = cell_module.WriteOnlyCell(worksheet, value=name)
        cell.font = bold
        header.append(cell)
    worksheet.append(header)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
