"""services.ingestion.values: every accepted cell form, blanks, and the problems reported."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import pytest

from services.ingestion.values import (
    PARSERS,
    ValueProblem,
    normalise,
    parse_bool,
    parse_date,
    parse_decimal,
    parse_employment_type,
    parse_exit_reason,
    parse_gender,
    parse_int,
    parse_leave_type,
    parse_month,
    parse_text,
)

Parser = Callable[[object], object]

ALL_PARSERS: list[Parser] = [
    parse_date,
    parse_month,
    parse_bool,
    parse_gender,
    parse_employment_type,
    parse_exit_reason,
    parse_leave_type,
    parse_int,
    parse_decimal,
    parse_text,
]

BLANKS = [None, "", " ", "   ", "\t", "\u3000", " \u3000 ", "\u00a0", "\r\n"]


def problem(parse: Parser, raw: object) -> str:
    """The message of the ValueProblem parsing ``raw`` raises."""
    with pytest.raises(ValueProblem) as caught:
        parse(raw)
    message = caught.value.message
    assert message == str(caught.value)
    assert message
    return message


@pytest.mark.parametrize("parse", [p for p in ALL_PARSERS if p is not parse_text])
@pytest.mark.parametrize("raw", ["zq-bad-値", "ＺＱ９９", "2024-99-99-99", "R99.99.99.99", "1,2,3"])
def test_problem_messages_do_not_repeat_the_value(parse: Parser, raw: str) -> None:
    message = problem(parse, raw)
    normalised = normalise(raw)
    assert normalised is not None
    assert raw not in message
    assert normalised not in message


# --- normalise -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("abc", "abc"),
        ("１２３", "123"),
        ("２０２４／４／１", "2024/4/1"),
        ("ＡＢＣ　ｄｅｆ", "ABC def"),
        ("  a   b\tc  ", "a b c"),
        ("\u3000営業部\u3000", "営業部"),
        ("ﾊﾟｰﾄ", "パート"),
        ("営業\u3000\u3000一課", "営業 一課"),
        ("㍻", "平成"),
    ],
)
def test_normalise(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


@pytest.mark.parametrize("raw", [None, "", " ", "\u3000", "\u3000 \t\n"])
def test_normalise_blank_is_none(raw: str | None) -> None:
    assert normalise(raw) is None


@pytest.mark.parametrize("parse", ALL_PARSERS)
@pytest.mark.parametrize("raw", BLANKS)
def test_blank_is_none_for_every_parser(parse: Parser, raw: str | None) -> None:
    assert parse(raw) is None


def test_parsers_table() -> None:
    expected: dict[str, Parser] = {
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
    assert expected == PARSERS


# --- dates ---------------------------------------------------------------------------------------

D = dt.date


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-04-01", D(2024, 4, 1)),
        ("2024/4/1", D(2024, 4, 1)),
        ("2024/04/01", D(2024, 4, 1)),
        ("2024.4.1", D(2024, 4, 1)),
        ("2024-4-1", D(2024, 4, 1)),
        ("20240401", D(2024, 4, 1)),
        ("2024年4月1日", D(2024, 4, 1)),
        ("2024年04月01日", D(2024, 4, 1)),
        ("2024 年 4 月 1 日", D(2024, 4, 1)),
        ("２０２４／４／１", D(2024, 4, 1)),
        ("２０２４－０４－０１", D(2024, 4, 1)),
        ("２０２４０４０１", D(2024, 4, 1)),
        ("２０２４年４月１日", D(2024, 4, 1)),
        ("  2024-04-01  ", D(2024, 4, 1)),
        ("\u30002024/4/1\u3000", D(2024, 4, 1)),
        ("2024-02-29", D(2024, 2, 29)),
        # Japanese eras
        ("令和6年4月1日", D(2024, 4, 1)),
        ("令和６年４月１日", D(2024, 4, 1)),
        ("令和元年5月1日", D(2019, 5, 1)),
        ("令和1年5月1日", D(2019, 5, 1)),
        ("令和 6年 4月 1日", D(2024, 4, 1)),
        ("平成31年4月30日", D(2019, 4, 30)),
        ("平成元年1月8日", D(1989, 1, 8)),
        ("平成2年3月31日", D(1990, 3, 31)),
        ("昭和64年1月7日", D(1989, 1, 7)),
        ("昭和60年10月15日", D(1985, 10, 15)),
        ("昭和元年12月25日", D(1926, 12, 25)),
        ("大正15年12月25日", D(1926, 12, 25)),
        ("大正元年7月30日", D(1912, 7, 30)),
        ("明治45年7月30日", D(1912, 7, 30)),
        ("明治1年1月25日", D(1868, 1, 25)),
        ("明治33年1月1日", D(1900, 1, 1)),
        # era abbreviations
        ("R6.4.1", D(2024, 4, 1)),
        ("r6.4.1", D(2024, 4, 1)),
        ("R6/4/1", D(2024, 4, 1)),
        ("R6-4-1", D(2024, 4, 1)),
        ("R06.04.01", D(2024, 4, 1)),
        ("R元.5.1", D(2019, 5, 1)),
        ("Ｒ６．４．１", D(2024, 4, 1)),
        ("H31.4.30", D(2019, 4, 30)),
        ("h1.1.8", D(1989, 1, 8)),
        ("S64.1.7", D(1989, 1, 7)),
        ("s55.3.3", D(1980, 3, 3)),
        ("T15.12.25", D(1926, 12, 25)),
        ("M45.7.30", D(1912, 7, 30)),
        ("R6年4月1日", D(2024, 4, 1)),
        ("令和6.4.1", D(2024, 4, 1)),
        # era-name ligatures become the era name under NFKC
        ("㍻31年4月30日", D(2019, 4, 30)),
        ("㋿6年4月1日", D(2024, 4, 1)),
        ("㍼64年1月7日", D(1989, 1, 7)),
        ("㍽15年12月25日", D(1926, 12, 25)),
        ("㍾45年7月30日", D(1912, 7, 30)),
    ],
)
def test_parse_date_forms(raw: str, expected: dt.date) -> None:
    assert parse_date(raw) == expected


def test_parse_date_objects() -> None:
    assert parse_date(D(2024, 4, 1)) == D(2024, 4, 1)
    value = parse_date(dt.datetime(2024, 4, 1, 13, 45, 10))
    assert value == D(2024, 4, 1)
    assert type(value) is dt.date


@pytest.mark.parametrize(
    "raw",
    [
        "平成32年1月1日",
        "平成31年5月1日",
        "H32.1.1",
        "令和1年4月30日",
        "令和元年4月30日",
        "R1.4.30",
        "昭和64年1月8日",
        "S65.1.1",
        "平成元年1月7日",
        "大正15年12月26日",
        "大正元年7月29日",
        "明治45年7月31日",
        "明治元年1月24日",
        "令和0年5月1日",
        "H0.1.8",
    ],
)
def test_parse_date_outside_era(raw: str) -> None:
    assert problem(parse_date, raw) == "date is outside the era"


@pytest.mark.parametrize(
    "raw",
    [
        "2024-02-30",
        "2023-02-29",
        "2024/4/31",
        "2024-13-01",
        "2024-00-10",
        "2024-04-00",
        "20240230",
        "20241301",
        "2024年2月30日",
        "令和6年2月30日",
        "R6.13.1",
        "0000-01-01",
    ],
)
def test_parse_date_impossible(raw: str) -> None:
    assert problem(parse_date, raw) == "no such date in the calendar"


@pytest.mark.parametrize(
    "raw",
    [
        "2024-04",
        "2024/4-1",
        "2024.04/01",
        "24-04-01",
        "2024-04-01 00:00:00",
        "2024-04-01T00:00",
        "01/04/2024",
        "2024041",
        "202404011",
        "45383",
        "令和6年4月",
        "令和6年4月1",
        "令和百年4月1日",
        "X6.4.1",
        "R.4.1",
        "R123.4.1",
        "April 1, 2024",
        "yesterday",
        "٢٠٢٤-٠٤-٠١",
    ],
)
def test_parse_date_unrecognised(raw: str) -> None:
    assert problem(parse_date, raw).startswith("not a recognised date")


@pytest.mark.parametrize("raw", [45383, 45383.0, Decimal(45383), True, ("2024", 4, 1)])
def test_parse_date_rejects_other_objects(raw: object) -> None:
    assert problem(parse_date, raw).startswith("not a recognised date")


def test_parse_date_long_value_is_parsed_without_the_cache() -> None:
    assert parse_date(" " * 100 + "2024-04-01" + "\u3000" * 100) == D(2024, 4, 1)
    assert problem(parse_date, "2024-04-01" + " x" * 100).startswith("not a recognised date")


def test_repeated_problem_raises_a_fresh_exception() -> None:
    with pytest.raises(ValueProblem) as first:
        parse_date("2024-02-30")
    with pytest.raises(ValueProblem) as second:
        parse_date("2024-02-30")
    assert first.value is not second.value


# --- months --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-04", (2024, 4)),
        ("2024/04", (2024, 4)),
        ("2024/4", (2024, 4)),
        ("2024-4", (2024, 4)),
        ("2024.4", (2024, 4)),
        ("202404", (2024, 4)),
        ("202412", (2024, 12)),
        ("2024年4月", (2024, 4)),
        ("2024 年 12 月", (2024, 12)),
        ("２０２４／０４", (2024, 4)),
        ("２０２４０４", (2024, 4)),
        ("令和6年4月", (2024, 4)),
        ("令和元年5月", (2019, 5)),
        ("平成31年4月", (2019, 4)),
        ("平成元年1月", (1989, 1)),
        ("昭和64年1月", (1989, 1)),
        ("大正15年12月", (1926, 12)),
        ("昭和元年12月", (1926, 12)),
        ("R6.4", (2024, 4)),
        ("r6.4", (2024, 4)),
        ("R6/4", (2024, 4)),
        ("R06.04", (2024, 4)),
        ("H31.4", (2019, 4)),
        ("Ｒ６．４", (2024, 4)),
        ("㋿6年4月", (2024, 4)),
    ],
)
def test_parse_month_forms(raw: str, expected: tuple[int, int]) -> None:
    assert parse_month(raw) == expected


def test_parse_month_objects() -> None:
    assert parse_month(D(2024, 4, 17)) == (2024, 4)
    assert parse_month(dt.datetime(2024, 12, 1, 0, 0)) == (2024, 12)


@pytest.mark.parametrize("raw", ["2024-13", "2024-00", "202413", "202400", "2024年13月", "R6.13"])
def test_parse_month_out_of_range(raw: str) -> None:
    assert problem(parse_month, raw) == "month must be between 1 and 12"


@pytest.mark.parametrize(
    "raw",
    [
        "令和1年4月",
        "令和元年4月",
        "R1.4",
        "平成31年5月",
        "平成32年1月",
        "昭和64年2月",
        "令和0年5月",
    ],
)
def test_parse_month_outside_era(raw: str) -> None:
    assert problem(parse_month, raw) == "month is outside the era"


@pytest.mark.parametrize(
    "raw",
    [
        "2024-04-01",
        "20240401",
        "2024/4-1",
        "24-04",
        "2024",
        "2024-4月",
        "April 2024",
        "R6",
        "0000-04",
    ],
)
def test_parse_month_unrecognised(raw: str) -> None:
    assert problem(parse_month, raw).startswith("not a recognised month")


@pytest.mark.parametrize("raw", [202404, 45383.0, False])
def test_parse_month_rejects_other_objects(raw: object) -> None:
    assert problem(parse_month, raw).startswith("not a recognised month")


# --- booleans ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("True", True),
        ("false", False),
        ("FALSE", False),
        ("1", True),
        ("0", False),
        ("１", True),
        ("０", False),
        ("yes", True),
        ("Yes", True),
        ("no", False),
        ("NO", False),
        ("y", True),
        ("Y", True),
        ("Ｙ", True),
        ("n", False),
        ("N", False),
        ("はい", True),
        ("いいえ", False),
        ("○", True),
        ("◯", True),
        ("〇", True),
        ("×", False),
        ("✕", False),
        ("有", True),
        ("無", False),
        (" はい ", True),
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        (1.0, True),
        (0.0, False),
        (Decimal("1"), True),
        (Decimal("0.0"), False),
    ],
)
def test_parse_bool_forms(raw: object, expected: bool) -> None:
    assert parse_bool(raw) is expected


@pytest.mark.parametrize(
    "raw",
    [
        "2",
        "-1",
        "yess",
        "ok",
        "x",
        "真",
        "有り",
        "t",
        2,
        0.5,
        float("nan"),
        Decimal("sNaN"),
        D(2024, 4, 1),
    ],
)
def test_parse_bool_rejects(raw: object) -> None:
    assert problem(parse_bool, raw).startswith("not a recognised yes/no value")


# --- word kinds ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("male", "male"),
        ("Male", "male"),
        ("female", "female"),
        ("FEMALE", "female"),
        ("other", "other"),
        ("unknown", "unknown"),
        ("M", "male"),
        ("m", "male"),
        ("F", "female"),
        ("f", "female"),
        ("Ｍ", "male"),
        ("男", "male"),
        ("女", "female"),
        ("男性", "male"),
        ("女性", "female"),
        ("その他", "other"),
        ("不明", "unknown"),
        ("\u3000女性\u3000", "female"),
    ],
)
def test_parse_gender_forms(raw: str, expected: str) -> None:
    assert parse_gender(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("regular", "regular"),
        ("Regular", "regular"),
        ("non_regular", "non_regular"),
        ("non-regular", "non_regular"),
        ("Non-Regular", "non_regular"),
        ("non regular", "non_regular"),
        ("正社員", "regular"),
        ("正規", "regular"),
        ("正規雇用", "regular"),
        ("契約社員", "non_regular"),
        ("パート", "non_regular"),
        ("ﾊﾟｰﾄ", "non_regular"),
        ("パートタイマー", "non_regular"),
        ("アルバイト", "non_regular"),
        ("ｱﾙﾊﾞｲﾄ", "non_regular"),
        ("嘱託", "non_regular"),
        ("非正規", "non_regular"),
        ("非正規雇用", "non_regular"),
    ],
)
def test_parse_employment_type_forms(raw: str, expected: str) -> None:
    assert parse_employment_type(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("voluntary", "voluntary"),
        ("VOLUNTARY", "voluntary"),
        ("自己都合", "voluntary"),
        ("自己都合退職", "voluntary"),
        ("involuntary", "involuntary"),
        ("会社都合", "involuntary"),
        ("会社都合退職", "involuntary"),
        ("解雇", "involuntary"),
        ("retirement", "retirement"),
        ("定年", "retirement"),
        ("定年退職", "retirement"),
        ("other", "other"),
        ("その他", "other"),
    ],
)
def test_parse_exit_reason_forms(raw: str, expected: str) -> None:
    assert parse_exit_reason(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("childcare_leave", "childcare_leave"),
        ("Childcare_Leave", "childcare_leave"),
        ("childcare-leave", "childcare_leave"),
        ("childcare leave", "childcare_leave"),
        ("育児休業", "childcare_leave"),
        ("育児休業等", "childcare_leave"),
        ("childcare_purpose_leave", "childcare_purpose_leave"),
        ("childcare-purpose-leave", "childcare_purpose_leave"),
        ("育児目的休暇", "childcare_purpose_leave"),
    ],
)
def test_parse_leave_type_forms(raw: str, expected: str) -> None:
    assert parse_leave_type(raw) == expected


@pytest.mark.parametrize(
    ("parse", "raw", "message"),
    [
        (parse_gender, "男子", "gender must be male, female, other or unknown"),
        (parse_gender, "X9", "gender must be male, female, other or unknown"),
        (parse_gender, 1, "gender must be male, female, other or unknown"),
        (parse_employment_type, "派遣社員", "employment type must be regular or non_regular"),
        (parse_employment_type, "full-time", "employment type must be regular or non_regular"),
        (
            parse_exit_reason,
            "転籍",
            "exit reason must be voluntary, involuntary, retirement or other",
        ),
        (
            parse_exit_reason,
            "quit",
            "exit reason must be voluntary, involuntary, retirement or other",
        ),
        (
            parse_leave_type,
            "産休",
            "leave type must be childcare_leave or childcare_purpose_leave",
        ),
        (
            parse_leave_type,
            "parental",
            "leave type must be childcare_leave or childcare_purpose_leave",
        ),
    ],
)
def test_word_kinds_reject_unknown_words(parse: Parser, raw: object, message: str) -> None:
    assert problem(parse, raw) == message


# --- numbers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0", 0),
        ("12", 12),
        ("  12 ", 12),
        ("007", 7),
        ("1234", 1234),
        ("1,234", 1234),
        ("12,345", 12345),
        ("123,456", 123456),
        ("1,234,567", 1234567),
        ("１２３", 123),
        ("１，２３４", 1234),
        ("\u3000１２\u3000", 12),
        ("¥1,234", 1234),
        ("￥1,234", 1234),
        ("¥ 1,234", 1234),
        ("\\1,234", 1234),
        ("1,234円", 1234),
        ("1234 円", 1234),
        ("-5", -5),
        ("－５", -5),
        ("\u22125", -5),
        ("-1,234", -1234),
        ("-¥1,234", -1234),
        ("+7", 7),
        ("12.0", 12),
        ("1,234.00", 1234),
        (12, 12),
        (-3, -3),
        (12.0, 12),
        (Decimal("12"), 12),
        (Decimal("12.000"), 12),
    ],
)
def test_parse_int_forms(raw: object, expected: int) -> None:
    value = parse_int(raw)
    assert value == expected
    assert type(value) is int


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0", Decimal("0")),
        ("1234", Decimal("1234")),
        ("1234.5", Decimal("1234.5")),
        ("1,234.5", Decimal("1234.5")),
        ("1,234,567.25", Decimal("1234567.25")),
        ("１２３４．５", Decimal("1234.5")),
        ("１，２３４．５", Decimal("1234.5")),
        (" 0.25 ", Decimal("0.25")),
        ("¥5,000,000", Decimal("5000000")),
        ("￥5,000,000", Decimal("5000000")),
        ("5,000,000円", Decimal("5000000")),
        ("-2.5", Decimal("-2.5")),
        ("\u22122.5", Decimal("-2.5")),
        (12, Decimal(12)),
        (0.1, Decimal("0.1")),
        (45.5, Decimal("45.5")),
        (Decimal("3.14"), Decimal("3.14")),
    ],
)
def test_parse_decimal_forms(raw: object, expected: Decimal) -> None:
    value = parse_decimal(raw)
    assert value == expected
    assert isinstance(value, Decimal)


def test_parse_decimal_keeps_exact_digits() -> None:
    assert parse_decimal("12345678901234567890.123456789") == Decimal(
        "12345678901234567890.123456789"
    )


@pytest.mark.parametrize("parse", [parse_int, parse_decimal])
@pytest.mark.parametrize(
    "raw", ["1,23", "1,23,4", "12,34", "1234,567", "1,2345", "0,123", ",123", "1,"]
)
def test_numbers_reject_bad_comma_grouping(parse: Parser, raw: str) -> None:
    assert problem(parse, raw) == "commas must separate groups of 3 digits"


@pytest.mark.parametrize("parse", [parse_int, parse_decimal])
@pytest.mark.parametrize(
    "raw",
    [
        "1.2.3",
        "12abc",
        "abc",
        ".5",
        "5.",
        "1e5",
        "--5",
        "1 234",
        "1_000",
        "$100",
        "¥",
        "円",
        "١٢٣",
        "inf",
        "NaN",
        True,
        float("nan"),
        float("inf"),
        Decimal("NaN"),
        Decimal("-Infinity"),
        D(2024, 4, 1),
        [1],
    ],
)
def test_numbers_reject(parse: Parser, raw: object) -> None:
    assert problem(parse, raw) == "not a number"


@pytest.mark.parametrize("raw", ["12.5", "1,234.01", 12.5, Decimal("0.1")])
def test_parse_int_rejects_fractions(raw: object) -> None:
    assert problem(parse_int, raw) == "must be a whole number"


@pytest.mark.parametrize("parse", [parse_int, parse_decimal])
def test_numbers_reject_absurd_lengths(parse: Parser) -> None:
    assert problem(parse, "9" * 5000) == "number has too many digits"
    assert problem(parse, "1" * 41) == "number has too many digits"


def test_parse_int_long_but_acceptable() -> None:
    assert parse_int("1" * 40) == int("1" * 40)


# --- text ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("営業部", "営業部"),
        ("  営業部  ", "営業部"),
        ("営業\u3000一課", "営業 一課"),
        ("ＡＢＣ－１２３", "ABC-123"),
        ("ｴｲｷﾞｮｳ", "エイギョウ"),
        ("G3", "G3"),
        (100, "100"),
        (100.0, "100"),
        (1.5, "1.5"),
        (Decimal("2.50"), "2.50"),
        (Decimal("1E+3"), "1000"),
    ],
)
def test_parse_text_forms(raw: object, expected: str) -> None:
    assert parse_text(raw) == expected


def test_parse_text_length() -> None:
    assert parse_text("x" * 200) == "x" * 200
    assert problem(parse_text, "x" * 201) == "text is longer than 200 characters"
    # measured after normalisation: surrounding and repeated spaces do not count
    assert parse_text("  " + "x" * 100 + "     " + "y" * 99 + "  ") == "x" * 100 + " " + "y" * 99
    assert parse_text("abcde", max_length=5) == "abcde"
    assert problem(lambda raw: parse_text(raw, max_length=5), "abcdef") == (
        "text is longer than 5 characters"
    )


@pytest.mark.parametrize("raw", [True, D(2024, 4, 1), float("nan"), object()])
def test_parse_text_rejects_other_objects(raw: object) -> None:
    with pytest.raises(ValueProblem):
        parse_text(raw)
