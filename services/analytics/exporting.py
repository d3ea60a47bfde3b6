"""Tabular exports that customers open in Excel: CSV, XLSX, and their download header.

Both formats take a header (column names) and rows of cells: ``str``, ``int``, ``float``,
``Decimal``, ``bool``, ``date``/``datetime`` (naive) or ``None``. The rules (also in
docs/analytics.md, "Exports"):

* Numbers stay numbers, negative ones too. ``NaN`` and infinities become empty cells
  (Excel has no such values). ``None`` is an empty cell.
* Text is never a formula. Text starting with ``=``, ``+``, ``-``, ``@``, tab, CR or LF gets a
  leading ``'`` (OWASP "CSV injection"), in the header too; a number that should stay a number
  must therefore be passed as a number, not as text. XLSX gets the same prefix although its
  text cells are stored as text: the value then reads the same in both formats, and it stays
  text when someone edits the cell in Excel (which would otherwise re-read it as a formula).
* CSV: UTF-8 with a BOM (Japanese Excel reads UTF-8 without mojibake only with one), CRLF
  line ends, RFC 4180 quoting (a field with a comma, quote, CR or LF is quoted, quotes
  doubled). Booleans are ``TRUE``/``FALSE``, dates ``2024-04-01``, datetimes
  ``2024-04-01 09:30:00``: the forms Excel reads back as booleans and dates.
* XLSX (openpyxl): a bold, frozen header row, numbers and booleans typed, dates
  as dates with a ``yyyy-mm-dd`` format, every text cell stored as a string (never a
  formula). Control characters that XML cannot hold are dropped from XLSX text. The sheet
  title follows Excel's rules (:func:`safe_sheet_title`).
* Timezone-aware datetimes are refused: Excel has no timezones, so the caller converts them
  to the tenant's local time first.

:func:`content_disposition` makes the ``Content-Disposition`` header of a download whose
file name may be Japanese (RFC 6266 with an RFC 5987 ``filename*``).
"""

from __future__ import annotations

import csv
import io
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final, TypeAlias
from urllib.parse import quote

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

__all__ = [
    "Cell",
    "content_disposition",
    "neutralise",
    "safe_filename",
    "safe_sheet_title",
    "to_csv",
    "to_xlsx",
]

Cell: TypeAlias = str | int | float | Decimal | bool | date | None

BOM: Final = b"\xef\xbb\xbf"
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r", "\n")
_DATE_FORMAT: Final = "yyyy-mm-dd"
_DATETIME_FORMAT: Final = "yyyy-mm-dd hh:mm:ss"
# Characters XML 1.0 cannot hold (openpyxl refuses them); tab, LF and CR are allowed.
_NOT_XML: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def neutralise(text: str) -> str:
    """``text`` with a leading ``'`` if a spreadsheet would read it as a formula."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> bytes:
    """A CSV file for Excel: UTF-8 with BOM, CRLF, RFC 4180 quoting, no formulas."""
    width = len(header)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow([neutralise(name) for name in header])
    for number, row in enumerate(rows, start=1):
        _check_width(number, row, width)
        writer.writerow([_csv_field(value) for value in row])
    return BOM + buffer.getvalue().encode("utf-8")


def to_xlsx(header: Sequence[str], rows: Iterable[Sequence[Cell]], sheet_title: str) -> bytes:
    """An XLSX workbook of one sheet: bold frozen header, typed cells, text never a formula.

    The workbook is built in memory (openpyxl's write-only mode would spool the sheet to a
    temporary file on disk), which suits analytics tables up to some hundred thousand cells.
    """
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = safe_sheet_title(sheet_title)
    bold = Font(bold=True)
    for column, name in enumerate(header, start=1):
        cell = _put_text(sheet.cell(1, column), name)
        cell.font = bold
        width = min(max(_display_width(cell.value) + 2, 10), 60)
        sheet.column_dimensions[get_column_letter(column)].width = width
    sheet.freeze_panes = "A2"
    width = len(header)
    for number, row in enumerate(rows, start=1):
        _check_width(number, row, width)
        for column, value in enumerate(row, start=1):
            _put(sheet.cell(number + 1, column), value)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def safe_sheet_title(title: str) -> str:
    """``title`` made a valid Excel sheet name.

    ``[ ] : * ? / \\`` and control characters become ``_``; at most 31 characters (UTF-16
    units, as Excel counts); no leading or trailing apostrophe or space; ``History`` (reserved
    by Excel) becomes ``History_``; an empty title becomes ``Sheet1``.
    """
    cleaned = re.sub(r"[\[\]:*?/\\\x00-\x1f\x7f]", "_", unicodedata.normalize("NFC", title))
    cleaned = cleaned.strip(" '")
    while len(cleaned.encode("utf-16-le")) > 31 * 2:
        cleaned = cleaned[:-1]
    cleaned = cleaned.strip(" '")
    if not cleaned:
        return "Sheet1"
    if cleaned.casefold() == "history":
        return cleaned + "_"
    return cleaned


_UNSAFE_IN_NAME: Final = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f-\x9f]')
_WINDOWS_DEVICES: Final = re.compile(r"(?i)(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?")
_MAX_NAME: Final = 150


def safe_filename(filename: str, default: str = "download") -> str:
    """``filename`` safe to save on Windows and macOS, as it would look to the user.

    NFC (macOS may send decomposed kana); path separators, ``<>:"|?*`` and control
    characters become ``_``; invisible format characters (such as the right-to-left override
    that disguises ``exe`` as ``xlsx``) are dropped; no leading or trailing dot or space;
    Windows device names get a leading ``_``; at most 150 characters, keeping the extension.
    """
    name = unicodedata.normalize("NFC", filename)
    name = "".join(c for c in name if unicodedata.category(c) != "Cf")
    name = _UNSAFE_IN_NAME.sub("_", name)
    name = re.sub(r"\s+", " ", name).strip(" .")
    if len(name) > _MAX_NAME:
        stem, extension = _split_extension(name)
        name = stem[: _MAX_NAME - len(extension)].rstrip(" .") + extension
    if not name:
        return default
    if _WINDOWS_DEVICES.fullmatch(name):
        name = "_" + name
    return name


def content_disposition(filename: str, default: str = "download") -> str:
    """The ``Content-Disposition`` value of an attachment named ``filename`` (RFC 6266).

    ``filename*=UTF-8''...`` (RFC 5987) carries the name, Japanese included, for every
    current browser; ``filename="..."`` is an ASCII fallback for old clients: the ASCII
    letters, digits and punctuation of the name (full-width ones folded), the rest as ``_``.
    """
    name = safe_filename(filename, default)
    stem, extension = _split_extension(name)
    fallback = (_ascii(stem) or _ascii(default) or "download") + extension
    encoded = quote(name, safe="!#$&+^`|")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


def _split_extension(name: str) -> tuple[str, str]:
    """``name`` as its stem and its extension (with the dot; ASCII letters and digits only)."""
    match = re.fullmatch(r"(.+?)(\.[A-Za-z0-9]{1,10})", name)
    return (match[1], match[2]) if match else (name, "")


def _ascii(text: str) -> str:
    """The ASCII-safe part of ``text`` for a quoted-string: other runs become one ``_``."""
    folded = unicodedata.normalize("NFKC", text)
    kept = re.sub(r"[^A-Za-z0-9 !#$&'()+\-.=@\[\]^_`{}~]+", "_", folded)
    kept = re.sub(r"_+", "_", kept).strip(" ._")
    return kept if any(c.isalnum() for c in kept) else ""


def _check_width(number: int, row: Sequence[Cell], width: int) -> None:
    if len(row) != width:
        raise ValueError(f"row {number} has {len(row)} cells, the header has {width}")


def _finite(value: float | Decimal) -> bool:
    return value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)


def _naive(value: datetime) -> datetime:
    if value.tzinfo is not None and value.utcoffset() is not None:
        raise ValueError("timezone-aware datetimes cannot be exported; convert to local time")
    return value


def _csv_field(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return neutralise(value)
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        return str(value) if _finite(value) else ""
    if isinstance(value, datetime):
        return _naive(value).isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot export a {type(value).__name__}")


def _put_text(cell: Any, text: str) -> Any:
    cell.value = _NOT_XML.sub("", neutralise(text))
    cell.data_type = "s"  # openpyxl makes any text starting with "=" a formula otherwise
    return cell


def _put(cell: Any, value: Cell) -> None:
    if value is None or isinstance(value, bool | int):
        cell.value = value
    elif isinstance(value, str):
        _put_text(cell, value)
    elif isinstance(value, float | Decimal):
        cell.value = value if _finite(value) else None
    elif isinstance(value, datetime):
        cell.value = _naive(value)
        cell.number_format = _DATETIME_FORMAT
    elif isinstance(value, date):
        cell.value = value
        cell.number_format = _DATE_FORMAT
    else:
        raise TypeError(f"cannot export a {type(value).__name__}")


def _display_width(text: str) -> int:
    """Columns ``text`` takes in a spreadsheet: East Asian wide characters count two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
