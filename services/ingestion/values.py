"""Parsing of one raw cell from a customer HR file into a normalised Python value.

Every parser takes one cell: a string from a CSV file, or the object an XLSX reader gives
(``str``, ``int``, ``float``, ``Decimal``, ``date``/``datetime``, ``bool``, ``None``). It returns
the normalised value, ``None`` for a blank cell (the caller decides whether the column is
required), or raises :class:`ValueProblem`. A problem's message is short English shown to HR
staff next to the row and column; it never repeats the cell value, which the caller shows itself.

The accepted forms are those of "Value forms accepted everywhere" in DATA_FORMATS.md, plus a
few listed on each parser. Every string first goes through :func:`normalise` (NFKC, so
full-width digits, letters, punctuation and half-width katakana are accepted everywhere).

The parsers run once per cell of files with millions of rows, so they are kept cheap:
precompiled regular expressions, word tables built once, and an LRU cache keyed by the raw
string for the forms whose values repeat a lot (dates, months, booleans and the word kinds).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Final, NamedTuple, TypeVar

__all__ = [
    "PARSERS",
    "ValueProblem",
    "normalise",
    "parse_bool",
    "parse_date",
    "parse_decimal",
    "parse_employment_type",
    "parse_exit_reason",
    "parse_gender",
    "parse_int",
    "parse_leave_type",
    "parse_month",
    "parse_text",
]

_T = TypeVar("_T")


class ValueProblem(Exception):
    """A cell value that cannot be used; ``message`` is shown to HR staff as is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Problem:
    """A problem found by a cached parse: cached as a value, raised fresh by the caller.

    (Caching a ValueProblem itself and raising it again would keep growing its traceback.)
    """

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


# Values repeat a lot in HR files (the same few dates, months, flags and words), so the
# string parses are cached by the raw string, which also skips normalisation on a hit.
# Longer strings (rarely valid for these kinds) are parsed without taking a cache slot.
_CACHE_SIZE: Final = 4096
_MAX_CACHED_LENGTH: Final = 64


def _cached(parse: Callable[[str], _T | _Problem | None]) -> Callable[[str], _T | None]:
    cached = lru_cache(maxsize=_CACHE_SIZE)(parse)

    def run(raw: str) -> _T | None:
        result = cached(raw) if len(raw) <= _MAX_CACHED_LENGTH else parse(raw)
        if isinstance(result, _Problem):
            raise ValueProblem(result.message)
        return result

    return run


def normalise(raw: str | None) -> str | None:
    """NFKC-normalise, strip and collapse inner whitespace; ``None`` for a blank cell.

    NFKC turns full-width digits, letters, spaces (U+3000) and punctuation into ASCII
    ("２０２４／４／１" -> "2024/4/1") and half-width katakana into full-width.
    """
    if raw is None:
        return None
    # str.isascii() is O(1) in CPython and ASCII is always NFKC-normal.
    text = raw if raw.isascii() else unicodedata.normalize("NFKC", raw)
    text = " ".join(text.split())
    return text or None


# --- dates and months ------------------------------------------------------------------------


class _Era(NamedTuple):
    start: date
    end: date | None  # last day; None for the current era


# Taisho and Showa began on the day the previous emperor died, so that day is both the last of
# the old era and the first of the new one (明治45年7月30日 = 大正元年7月30日, 大正15年12月25日 =
# 昭和元年12月25日); Heisei and Reiwa began the day after the old era's last day.
_MEIJI: Final = _Era(date(1868, 1, 25), date(1912, 7, 30))
_TAISHO: Final = _Era(date(1912, 7, 30), date(1926, 12, 25))
_SHOWA: Final = _Era(date(1926, 12, 25), date(1989, 1, 7))
_HEISEI: Final = _Era(date(1989, 1, 8), date(2019, 4, 30))
_REIWA: Final = _Era(date(2019, 5, 1), None)

_ERAS: Final[Mapping[str, _Era]] = {
    **{"明治": _MEIJI, "大正": _TAISHO, "昭和": _SHOWA, "平成": _HEISEI, "令和": _REIWA},
    **{"M": _MEIJI, "T": _TAISHO, "S": _SHOWA, "H": _HEISEI, "R": _REIWA},
    **{"m": _MEIJI, "t": _TAISHO, "s": _SHOWA, "h": _HEISEI, "r": _REIWA},
}

# A year: four digits, or an era (name or initial) and its year ("元" is year 1).
_YEAR: Final = (
    r"(?:(?P<year>\d{4})"
    r"|(?P<era>明治|大正|昭和|平成|令和|[MTSHRmtshr]) ?(?P<eyear>元|\d{1,2}))"
)
_DATE_RE: Final = re.compile(
    _YEAR + r"(?: ?年 ?(?P<km>\d{1,2}) ?月 ?(?P<kd>\d{1,2}) ?日"
    r"|(?P<sep>[-/.])(?P<sm>\d{1,2})(?P=sep)(?P<sd>\d{1,2}))",
    re.ASCII,
)
_COMPACT_DATE_RE: Final = re.compile(r"(\d{4})(\d{2})(\d{2})", re.ASCII)
_MONTH_RE: Final = re.compile(
    _YEAR + r"(?: ?年 ?(?P<km>\d{1,2}) ?月|[-/.](?P<sm>\d{1,2}))",
    re.ASCII,
)
_COMPACT_MONTH_RE: Final = re.compile(r"(\d{4})(\d{2})", re.ASCII)

_NOT_A_DATE: Final = _Problem("not a recognised date (use e.g. 2024-04-01, 2024/4/1 or R6.4.1)")
_NO_SUCH_DATE: Final = _Problem("no such date in the calendar")
_DATE_OUTSIDE_ERA: Final = _Problem("date is outside the era")
_NOT_A_MONTH: Final = _Problem("not a recognised month (use e.g. 2024-04, 202404 or R6.4)")
_NO_SUCH_MONTH: Final = _Problem("month must be between 1 and 12")
_MONTH_OUTSIDE_ERA: Final = _Problem("month is outside the era")


def _year_of(match: re.Match[str]) -> tuple[int, _Era | None]:
    """The Gregorian year of a matched ``_YEAR`` and its era (None for a Gregorian year)."""
    if match["year"] is not None:
        return int(match["year"]), None
    era = _ERAS[match["era"]]
    number = 1 if match["eyear"] == "元" else int(match["eyear"])
    # An era year 0 lands in the year before the era began, so it fails the era check.
    return era.start.year + number - 1, era


def _date_from_str(raw: str) -> date | _Problem | None:
    text = normalise(raw)
    if text is None:
        return None
    era: _Era | None = None
    match = _DATE_RE.fullmatch(text)
    if match is not None:
        year, era = _year_of(match)
        month = int(match["km"] or match["sm"])
        day = int(match["kd"] or match["sd"])
    else:
        compact = _COMPACT_DATE_RE.fullmatch(text)
        if compact is None:
            return _NOT_A_DATE
        year, month, day = int(compact[1]), int(compact[2]), int(compact[3])
    try:
        value = date(year, month, day)
    except ValueError:
        return _NO_SUCH_DATE
    if era is not None and (value < era.start or (era.end is not None and value > era.end)):
        return _DATE_OUTSIDE_ERA
    return value


def _month_from_str(raw: str) -> tuple[int, int] | _Problem | None:
    text = normalise(raw)
    if text is None:
        return None
    era: _Era | None = None
    match = _MONTH_RE.fullmatch(text)
    if match is not None:
        year, era = _year_of(match)
        month = int(match["km"] or match["sm"])
    else:
        compact = _COMPACT_MONTH_RE.fullmatch(text)
        if compact is None:
            return _NOT_A_MONTH
        year, month = int(compact[1]), int(compact[2])
    if not 1 <= month <= 12:
        return _NO_SUCH_MONTH
    if year < 1:
        return _NOT_A_MONTH
    # An era month must share at least one day with the era.
    if era is not None and (
        (year, month) < (era.start.year, era.start.month)
        or (era.end is not None and (year, month) > (era.end.year, era.end.month))
    ):
        return _MONTH_OUTSIDE_ERA
    return year, month


_parse_date_str: Final = _cached(_date_from_str)
_parse_month_str: Final = _cached(_month_from_str)


def parse_date(raw: object) -> date | None:
    """A date: ``2024-04-01``, ``2024/4/1``, ``2024.4.1``, ``20240401``, ``2024年4月1日``,
    ``令和6年4月1日``, ``令和元年5月1日``, ``R6.4.1``, ``r6/4/1``, ``H31.4.30`` (eras 明治/M,
    大正/T, 昭和/S, 平成/H, 令和/R, also the era-name ligatures such as ``㍻``), or a ``date`` /
    ``datetime`` object from an XLSX reader (a datetime gives its date).

    The separator must be the same twice. An era date must fall inside that era. Excel serial
    numbers are not accepted.
    """
    if raw is None:
        return None
    if isinstance(raw, str):
        return _parse_date_str(raw)
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    raise ValueProblem(_NOT_A_DATE.message)


def parse_month(raw: object) -> tuple[int, int] | None:
    """A month as ``(year, month)``: ``2024-04``, ``2024/04``, ``2024/4``, ``2024.4``,
    ``202404``, ``2024年4月``, ``令和6年4月``, ``R6.4``, ``R6/4``, or a ``date`` / ``datetime``
    object (its year and month). An era month must share at least one day with the era.
    """
    if raw is None:
        return None
    if isinstance(raw, str):
        return _parse_month_str(raw)
    if isinstance(raw, date):  # datetime is a date
        return raw.year, raw.month
    raise ValueProblem(_NOT_A_MONTH.message)


# --- booleans and word kinds -----------------------------------------------------------------


def _word_key_from_str(raw: str) -> str | None:
    text = normalise(raw)
    return None if text is None else text.casefold()


_word_key_cached: Final = lru_cache(maxsize=_CACHE_SIZE)(_word_key_from_str)


def _word_key(raw: str) -> str | None:
    return _word_key_cached(raw) if len(raw) <= _MAX_CACHED_LENGTH else _word_key_from_str(raw)


def _word_table(groups: Mapping[_T, Iterable[str]]) -> dict[str, _T]:
    """Word -> value, keyed the way :func:`_word_key` keys a cell.

    An English name with ``_`` is also accepted with ``-`` or a space in its place.
    """
    table: dict[str, _T] = {}
    for value, words in groups.items():
        for word in words:
            variants = {word, word.replace("_", "-"), word.replace("_", " ")}
            for variant in variants:
                key = _word_key_from_str(variant)
                if key is None or table.get(key, value) != value:
                    raise ValueError(f"ambiguous or blank word {variant!r}")
                table[key] = value
    return table


def _lookup(raw: object, table: Mapping[str, _T], problem: str) -> _T | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ValueProblem(problem)
    key = _word_key(raw)
    if key is None:
        return None
    value = table.get(key)
    if value is None:
        raise ValueProblem(problem)
    return value


_BOOLS: Final = _word_table(
    {
        # ○ U+25CB, ◯ U+25EF and 〇 U+3007 are all typed for "maru".
        True: ("true", "1", "yes", "y", "はい", "○", "◯", "〇", "有"),
        False: ("false", "0", "no", "n", "いいえ", "×", "✕", "無"),
    }
)
_NOT_A_BOOL: Final = "not a recognised yes/no value (use e.g. true/false, 1/0 or yes/no)"


def parse_bool(raw: object) -> bool | None:
    """``true/false``, ``1/0``, ``yes/no``, ``y/n`` (any case), ``はい/いいえ``, ``○/×``
    (also ``◯``, ``〇`` / ``✕``), ``有/無``; or a ``bool``, or the number 1 or 0 (XLSX).
    """
    if isinstance(raw, str):
        return _lookup(raw, _BOOLS, _NOT_A_BOOL)
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int | float | Decimal):
        if isinstance(raw, Decimal) and not raw.is_finite():  # sNaN cannot even be compared
            raise ValueProblem(_NOT_A_BOOL)
        if raw == 1 or raw == 0:
            return raw == 1
        raise ValueProblem(_NOT_A_BOOL)
    return _lookup(raw, _BOOLS, _NOT_A_BOOL)


_GENDERS: Final = _word_table(
    {
        "male": ("male", "m", "男", "男性"),
        "female": ("female", "f", "女", "女性"),
        "other": ("other", "その他"),
        "unknown": ("unknown", "不明"),
    }
)


def parse_gender(raw: object) -> str | None:
    """``male``/``female``/``other``/``unknown`` from those words, ``M``/``F``, ``男``/``女``,
    ``男性``/``女性``, ``その他``, ``不明`` (any case).
    """
    return _lookup(raw, _GENDERS, "gender must be male, female, other or unknown")


_EMPLOYMENT_TYPES: Final = _word_table(
    {
        "regular": ("regular", "正社員", "正規", "正規雇用"),
        "non_regular": (
            "non_regular",
            "契約社員",
            "パート",
            "パートタイマー",
            "アルバイト",
            "嘱託",
            "非正規",
            "非正規雇用",
        ),
    }
)


def parse_employment_type(raw: object) -> str | None:
    """``regular`` (``正社員``, ``正規``, ``正規雇用``) or ``non_regular`` (also ``non-regular``;
    ``契約社員``, ``パート``, ``パートタイマー``, ``アルバイト``, ``嘱託``, ``非正規``,
    ``非正規雇用``).
    """
    return _lookup(raw, _EMPLOYMENT_TYPES, "employment type must be regular or non_regular")


_EXIT_REASONS: Final = _word_table(
    {
        "voluntary": ("voluntary", "自己都合", "自己都合退職"),
        "involuntary": ("involuntary", "会社都合", "会社都合退職", "解雇"),
        "retirement": ("retirement", "定年", "定年退職"),
        "other": ("other", "その他"),
    }
)


def parse_exit_reason(raw: object) -> str | None:
    """``voluntary`` (``自己都合``, ``自己都合退職``), ``involuntary`` (``会社都合``,
    ``会社都合退職``, ``解雇``), ``retirement`` (``定年``, ``定年退職``), ``other`` (``その他``).
    """
    return _lookup(
        raw, _EXIT_REASONS, "exit reason must be voluntary, involuntary, retirement or other"
    )


_LEAVE_TYPES: Final = _word_table(
    {
        "childcare_leave": ("childcare_leave", "育児休業", "育児休業等"),
        "childcare_purpose_leave": ("childcare_purpose_leave", "育児目的休暇"),
    }
)


def parse_leave_type(raw: object) -> str | None:
    """``childcare_leave`` (``育児休業``, ``育児休業等``) or ``childcare_purpose_leave``
    (``育児目的休暇``).
    """
    return _lookup(
        raw, _LEAVE_TYPES, "leave type must be childcare_leave or childcare_purpose_leave"
    )


# --- numbers ---------------------------------------------------------------------------------

# An optional sign, an optional yen sign (¥; "\" is how CP932 decodes a half-width yen sign),
# digits with commas only as thousands separators, an optional fraction, an optional 円.
_NUMBER_RE: Final = re.compile(
    r"(?P<sign>[-+]?) ?[¥\\]? ?(?P<int>[1-9]\d{0,2}(?:,\d{3})+|\d+)(?:\.(?P<frac>\d+))? ?円?",
    re.ASCII,
)
_MAX_NUMBER_LENGTH: Final = 40  # int() refuses over 4300 digits; no HR figure comes near 40

_NOT_A_NUMBER: Final = "not a number"
_BAD_GROUPING: Final = "commas must separate groups of 3 digits"
_TOO_LONG_NUMBER: Final = "number has too many digits"
_NOT_WHOLE: Final = "must be a whole number"


def _number_parts(raw: str) -> tuple[str, str, str] | None:
    """(sign, integer digits, fraction digits) of a number string; None for a blank."""
    text = normalise(raw)
    if text is None:
        return None
    if len(text) > _MAX_NUMBER_LENGTH:
        raise ValueProblem(_TOO_LONG_NUMBER)
    match = _NUMBER_RE.fullmatch(text.replace("\u2212", "-"))  # U+2212 MINUS SIGN
    if match is None:
        if "," in text and _NUMBER_RE.fullmatch(text.replace(",", "")) is not None:
            raise ValueProblem(_BAD_GROUPING)
        raise ValueProblem(_NOT_A_NUMBER)
    return match["sign"], match["int"].replace(",", ""), match["frac"] or ""


def _finite_decimal(raw: float | Decimal) -> Decimal:
    """A float (by its shortest repr, so 0.1 gives Decimal("0.1")) or Decimal; finite only."""
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise ValueProblem(_NOT_A_NUMBER)
        return Decimal(repr(raw))
    if not raw.is_finite():
        raise ValueProblem(_NOT_A_NUMBER)
    return raw


def parse_int(raw: object) -> int | None:
    """A whole number: ``1234``, ``1,234``, ``１，２３４``, ``¥1,234``, ``1,234円``, ``-5``,
    ``12.0``; or an ``int``, a whole ``float`` or ``Decimal`` (XLSX). Commas must separate groups
    of three digits. Negative numbers are accepted; callers check the range.
    """
    if raw is None:
        return None
    if isinstance(raw, str):
        if raw.isascii() and raw.isdigit() and len(raw) <= _MAX_NUMBER_LENGTH:
            return int(raw)  # the common case, without normalising
        parts = _number_parts(raw)
        if parts is None:
            return None
        sign, digits, fraction = parts
        if fraction.strip("0"):
            raise ValueProblem(_NOT_WHOLE)
        return -int(digits) if sign == "-" else int(digits)
    if isinstance(raw, bool):
        raise ValueProblem(_NOT_A_NUMBER)
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float | Decimal):
        number = _finite_decimal(raw)
        if number != number.to_integral_value():
            raise ValueProblem(_NOT_WHOLE)
        return int(number)
    raise ValueProblem(_NOT_A_NUMBER)


def parse_decimal(raw: object) -> Decimal | None:
    """A decimal number: everything :func:`parse_int` takes, plus a fraction (``1234.5``,
    ``1,234.5``) and any finite ``float`` (by its shortest repr, so 0.1 is ``Decimal("0.1")``).
    """
    if raw is None:
        return None
    if isinstance(raw, str):
        parts = _number_parts(raw)
        if parts is None:
            return None
        sign, digits, fraction = parts
        sign = "-" if sign == "-" else ""
        return Decimal(f"{sign}{digits}.{fraction}" if fraction else f"{sign}{digits}")
    if isinstance(raw, bool):
        raise ValueProblem(_NOT_A_NUMBER)
    if isinstance(raw, int):
        return Decimal(raw)
    if isinstance(raw, float | Decimal):
        return _finite_decimal(raw)
    raise ValueProblem(_NOT_A_NUMBER)


# --- text ------------------------------------------------------------------------------------


def parse_text(raw: object, max_length: int = 200) -> str | None:
    """Normalised text of at most ``max_length`` characters (department, job grade, codes).

    A number from an XLSX cell is taken as its text (``100`` and ``100.0`` give ``"100"``).
    """
    if raw is None:
        return None
    text: str | None
    if isinstance(raw, str):
        text = normalise(raw)
    elif isinstance(raw, bool):
        raise ValueProblem("expected text")
    elif isinstance(raw, int):
        text = str(raw)
    elif isinstance(raw, float | Decimal):
        number = _finite_decimal(raw)
        text = str(int(number)) if number == number.to_integral_value() else format(number, "f")
    else:
        raise ValueProblem("expected text")
    if text is not None and len(text) > max_length:
        raise ValueProblem(f"text is longer than {max_length} characters")
    return text


PARSERS: Final[dict[str, Callable[[object], object]]] = {
    "date": parse_date,
    "month": parse_month,
    "bool": parse_bool,
    "gender": parse_gender,
    "employment_type": parse_employment_type,
    "exit_reason": parse_exit_reason,
    "leave_type": parse_leave_type,
    "int": parse_int,
    "decimal": parse_decimal,
    "text": parse_text,
}
