"""services.analytics.exporting: CSV and XLSX read back as Excel would, and download names."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

import openpyxl
import pytest

from services.analytics.exporting import (
    Cell,
    content_disposition,
    neutralise,
    safe_filename,
    safe_sheet_title,
    to_csv,
    to_xlsx,
)

HEADER = ["部署", "氏名", "人数", "比率", "基準日", "在籍"]
ROWS: list[list[Cell]] = [
    ["営業部", "山田 太郎", 12, 0.25, date(2024, 3, 31), True],
    ['=HYPERLINK("http://x")', "+81 3", -5, -0.5, datetime(2024, 4, 1, 9, 30), False],
    ["-2+3", "@SUM(A1)", 0, None, None, None],
    ["\tタブ", "\r復帰", Decimal("-1.50"), float("nan"), date(1999, 1, 1), None],
    ['カンマ, と "引用"', "改行\nあり", 10**12, 1e-7, None, None],
]


def read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    text = data[3:].decode("utf-8")
    return list(csv.reader(io.StringIO(text, newline="")))


# Formula neutralisation


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+81", "'+81"),
        ("-5", "'-5"),
        ("@cmd", "'@cmd"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("\n=1", "'\n=1"),
        ("'=1", "'=1"),
        ("a=1", "a=1"),
        ("", ""),
        ("営業", "営業"),
        ("＝1", "＝1"),
    ],
)
def test_neutralise(text: str, expected: str) -> None:
    assert neutralise(text) == expected


# CSV


def test_csv_reads_back_with_bom_crlf_japanese_and_quoting() -> None:
    data = to_csv(HEADER, ROWS)

    assert data.startswith(b"\xef\xbb\xbf\xe9\x83\xa8\xe7\xbd\xb2,")  # BOM, then 部署
    assert data.endswith(b"\r\n")
    assert data.count(b"\r\n") == len(ROWS) + 1  # a cell's own line breaks stay inside quotes
    assert b'"\xe6\x94\xb9\xe8\xa1\x8c\n\xe3\x81\x82\xe3\x82\x8a"' in data  # "改行\nあり" quoted
    assert read_csv(data) == [
        HEADER,
        ["営業部", "山田 太郎", "12", "0.25", "2024-03-31", "TRUE"],
        ['\'=HYPERLINK("http://x")', "'+81 3", "-5", "-0.5", "2024-04-01 09:30:00", "FALSE"],
        ["'-2+3", "'@SUM(A1)", "0", "", "", ""],
        ["'\tタブ", "'\r復帰", "-1.50", "", "1999-01-01", ""],
        ['カンマ, と "引用"', "改行\nあり", "1000000000000", "1e-07", "", ""],
    ]


def test_csv_quotes_only_what_rfc_4180_needs() -> None:
    data = to_csv(["a", "b"], [["x,y", 'say "hi"'], ["plain", -1]])

    assert data == b'\xef\xbb\xbfa,b\r\n"x,y","say ""hi"""\r\nplain,-1\r\n'


def test_csv_header_is_neutralised_too() -> None:
    assert read_csv(to_csv(["=cmd", "ok"], []))[0] == ["'=cmd", "ok"]


def test_negative_numbers_are_numbers_but_negative_looking_text_is_not() -> None:
    rows = read_csv(to_csv(["v"], [[-3], [-2.5], [Decimal("-7")], ["-3"]]))

    assert rows[1:] == [["-3"], ["-2.5"], ["-7"], ["'-3"]]


# XLSX


def read_xlsx(data: bytes) -> Any:
    return openpyxl.load_workbook(io.BytesIO(data)).active


def test_xlsx_reads_back_with_types_and_no_formula() -> None:
    sheet = read_xlsx(to_xlsx(HEADER, ROWS, "人事レポート"))

    assert sheet.title == "人事レポート"
    assert sheet.freeze_panes == "A2"
    assert sheet.max_row == len(ROWS) + 1
    header = sheet[1]
    assert [c.value for c in header] == HEADER
    assert all(c.font.b and c.data_type == "s" for c in header)

    values = [[c.value for c in row] for row in sheet.iter_rows(min_row=2)]
    assert values == [
        ["営業部", "山田 太郎", 12, 0.25, datetime(2024, 3, 31), True],
        ['\'=HYPERLINK("http://x")', "'+81 3", -5, -0.5, datetime(2024, 4, 1, 9, 30), False],
        ["'-2+3", "'@SUM(A1)", 0, None, None, None],
        # (XML reads a bare CR as LF; Excel breaks lines at LF anyway.)
        ["'\tタブ", "'\n復帰", -1.5, None, datetime(1999, 1, 1), None],
        ['カンマ, と "引用"', "改行\nあり", 10**12, 1e-7, None, None],
    ]
    for row in sheet.iter_rows(min_row=2):
        assert [c.data_type for c in row[:3]] == ["s", "s", "n"]
    assert sheet["D2"].data_type == "n"
    for date_cell, form in (("E2", "yyyy-mm-dd"), ("E3", "yyyy-mm-dd hh:mm:ss")):
        assert sheet[date_cell].is_date
        assert sheet[date_cell].number_format == form
    assert sheet["F2"].data_type == "b"
    assert not any(c.data_type == "f" for row in sheet.iter_rows() for c in row)


def test_xlsx_stores_text_starting_with_equals_as_a_string_not_a_formula() -> None:
    data = to_xlsx(["=A1"], [["=1+1"], ["=cmd|' /C calc'!A0"]], "s")
    sheet = read_xlsx(data)

    cells = [sheet.cell(row, 1) for row in (1, 2, 3)]
    assert [c.value for c in cells] == ["'=A1", "'=1+1", "'=cmd|' /C calc'!A0"]
    assert [c.data_type for c in cells] == ["s", "s", "s"]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        sheet_xml = archive.read("xl/worksheets/sheet1.xml")
    assert b"<f>" not in sheet_xml


def test_xlsx_drops_characters_xml_cannot_hold() -> None:
    sheet = read_xlsx(to_xlsx(["v"], [["a\x00b\x1fc\td"]], "s"))

    assert sheet["A2"].value == "abc\td"


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("人事レポート", "人事レポート"),
        ("a[b]c:d*e?f/g\\h", "a_b_c_d_e_f_g_h"),
        (
            "2024年度 人的資本レポート(連結) 部署別・性別・雇用形態別",
            "2024年度 人的資本レポート(連結) 部署別・性別・雇用形態",
        ),
        ("'quoted'", "quoted"),
        ("", "Sheet1"),
        ("[]", "__"),
        ("history", "history_"),
        ("x" * 30 + "😀", "x" * 30),
    ],
)
def test_sheet_titles_follow_excel_rules(title: str, expected: str) -> None:
    cleaned = safe_sheet_title(title)

    assert cleaned == expected
    assert len(cleaned.encode("utf-16-le")) <= 62
    assert read_xlsx(to_xlsx(["v"], [], title)).title == expected


# Both formats


@pytest.mark.parametrize("export", [to_csv, lambda h, r: to_xlsx(h, r, "s")])
def test_rows_must_match_the_header(export: Any) -> None:
    with pytest.raises(ValueError, match="row 2 has 1 cells, the header has 2"):
        export(["a", "b"], [[1, 2], [1]])


@pytest.mark.parametrize("export", [to_csv, lambda h, r: to_xlsx(h, r, "s")])
def test_timezone_aware_datetimes_are_refused(export: Any) -> None:
    jst = timezone(timedelta(hours=9))
    with pytest.raises(ValueError, match="timezone"):
        export(["t"], [[datetime(2024, 4, 1, tzinfo=jst)]])


@pytest.mark.parametrize("export", [to_csv, lambda h, r: to_xlsx(h, r, "s")])
def test_unknown_cell_types_are_refused(export: Any) -> None:
    with pytest.raises(TypeError, match="cannot export a list"):
        export(["x"], [[[1]]])


# Download names


def parse(header: str) -> tuple[str, str]:
    """(filename, filename*) of a Content-Disposition value, as RFC 6266 browsers read them.

    (``email.message`` is no help: it prefers the ASCII ``filename`` over ``filename*``.)
    """
    match = re.fullmatch(
        r"attachment; filename=\"([^\"\\]*)\"; filename\*=UTF-8''([^;\s]+)", header
    )
    assert match, header
    return match[1], unquote(match[2], errors="strict")


def test_content_disposition_carries_a_japanese_name() -> None:
    header = content_disposition("人事レポート 2024年3月.xlsx")

    assert header == (
        'attachment; filename="2024_3.xlsx"; '
        "filename*=UTF-8''%E4%BA%BA%E4%BA%8B%E3%83%AC%E3%83%9D%E3%83%BC%E3%83%88"
        "%202024%E5%B9%B43%E6%9C%88.xlsx"
    )
    assert parse(header) == ("2024_3.xlsx", "人事レポート 2024年3月.xlsx")
    header.encode("ascii")  # header values must be ASCII


@pytest.mark.parametrize(
    ("name", "fallback", "decoded"),
    [
        ("report.csv", "report.csv", "report.csv"),
        ("人事.csv", "download.csv", "人事.csv"),
        ("ＡＢＣ社_人数.xlsx", "ABC.xlsx", "ＡＢＣ社_人数.xlsx"),
        ('a"b\\c/d.csv', "a_b_c_d.csv", "a_b_c_d.csv"),
        ("x\r\nSet-Cookie: y.csv", "x_Set-Cookie_ y.csv", "x__Set-Cookie_ y.csv"),
        ("100%.csv", "100.csv", "100%.csv"),
        ("請求書\u202excsl.exe", "xcsl.exe", "請求書xcsl.exe"),  # right-to-left override
        ("../../etc/passwd", "etc_passwd", "_.._etc_passwd"),
        ("CON.csv", "CON.csv", "_CON.csv"),
        ("", "download", "download"),
        ("  . ", "download", "download"),
    ],
)
def test_content_disposition_names_are_safe(name: str, fallback: str, decoded: str) -> None:
    header = content_disposition(name)

    assert parse(header) == (fallback, decoded)
    header.encode("ascii")


def test_safe_filename_keeps_the_extension_of_a_long_name() -> None:
    name = safe_filename("部署別" * 100 + ".xlsx")

    assert name == ("部署別" * 100)[:145] + ".xlsx"
    assert len(name) == 150


def test_macos_decomposed_kana_is_composed() -> None:
    decomposed = "ハ\u309aーソナル.csv"  # パ as ハ + combining handakuten
    assert safe_filename(decomposed) == "パーソナル.csv"
