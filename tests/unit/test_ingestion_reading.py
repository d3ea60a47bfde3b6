"""Reading uploads: encoding detection, CSV and XLSX parsing, limits, errors and templates.

Every file is generated in the test, in ``tmp_path``.
"""

from __future__ import annotations

import datetime as dt
import importlib
import io
import zipfile
from pathlib import Path
from typing import Any

import pytest

from services.ingestion.reading import (
    FileProblem,
    Limits,
    Table,
    detect_encoding,
    read_table,
    write_template_csv,
    write_template_xlsx,
)

openpyxl: Any = importlib.import_module("openpyxl")
importlib.import_module("openpyxl.chart")

HEADER_JA = ["社員番号", "氏名", "性別", "入社日"]
ROWS_JA = [["E001", "山田", "男", "2020-04-01"], ["E002", "佐藤", "女", "2021-10-01"]]
CSV_JA = "社員番号,氏名,性別,入社日\r\nE001,山田,男,2020-04-01\r\nE002,佐藤,女,2021-10-01\r\n"


def write(tmp_path: Path, name: str, data: bytes | str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode(encoding) if isinstance(data, str) else data)
    return path


def rows(table: Table) -> list[tuple[int, list[object]]]:
    return list(table.rows)


def read_all(path: Path, filename: str, **kwargs: Any) -> list[tuple[int, list[object]]]:
    return rows(read_table(path, filename=filename, **kwargs))


def problem(path: Path, filename: str | None = None, **kwargs: Any) -> FileProblem:
    """The problem reading the header or any row of ``path`` raises."""
    with pytest.raises(FileProblem) as caught:
        read_all(path, filename or path.name, **kwargs)
    return caught.value


# --- encodings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "detected"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("cp932", "cp932"), ("shift_jis", "cp932")],
)
def test_japanese_csv_in_each_encoding(tmp_path: Path, encoding: str, detected: str) -> None:
    path = write(tmp_path, "employees.csv", CSV_JA, encoding)
    assert detect_encoding(path) == detected
    table = read_table(path, filename="employees.csv")
    assert table.format == "csv"
    assert table.encoding == detected
    assert table.header == HEADER_JA  # no BOM left on the first header cell
    assert table.header_row == 1
    assert rows(table) == [(2, ROWS_JA[0]), (3, ROWS_JA[1])]


def test_cp932_only_characters(tmp_path: Path) -> None:
    # NEC special characters and the CP932 tilde are not in plain Shift_JIS.
    path = write(tmp_path, "a.csv", "社員番号,備考\nE001,①㈱～\n", "cp932")
    assert detect_encoding(path) == "cp932"
    assert rows(read_table(path, filename="a.csv")) == [(2, ["E001", "①㈱～"])]


def test_ascii_is_utf8(tmp_path: Path) -> None:
    assert detect_encoding(write(tmp_path, "a.csv", "id,name\n1,x\n")) == "utf-8"


@pytest.mark.parametrize("split", [1, 2])
def test_utf8_character_across_chunk_boundary(tmp_path: Path, split: int) -> None:
    # "社" is 3 bytes in UTF-8: put 1 or 2 of them before the 64 KiB mark, the rest after.
    prefix = b"id,name\n" + b"x" * (65536 - 8 - split)
    data = prefix + "社員\n".encode()
    assert data[65536 - split : 65536 - split + 3] == "社".encode()
    path = write(tmp_path, "a.csv", data)
    assert detect_encoding(path) == "utf-8"


def test_cp932_character_across_chunk_boundary(tmp_path: Path) -> None:
    data = b"id,name\n" + b"x" * (65536 - 8 - 1) + "社員\n".encode("cp932")
    path = write(tmp_path, "a.csv", data)
    assert detect_encoding(path) == "cp932"


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_undecodable_bytes_name_their_line(tmp_path: Path, newline: str) -> None:
    # 0x81 0x20 is invalid in UTF-8 (stray continuation byte) and in CP932 (bad trail byte).
    data = newline.join(["id,name", "1,a", "2,b\x81 c", "3,d", ""]).encode("latin-1")
    path = write(tmp_path, "a.csv", data)
    with pytest.raises(FileProblem) as caught:
        detect_encoding(path)
    assert caught.value.code == "undecodable_text"
    assert caught.value.details["line"] == 3
    assert caught.value.details["encoding"] in ("utf-8", "cp932")
    assert "line 3" in caught.value.message.lower()
    assert "UTF-8" in caught.value.message
    assert "Shift_JIS" in caught.value.message
    assert problem(path).code == "undecodable_text"


def test_undecodable_line_after_crlf_across_chunk_boundary(tmp_path: Path) -> None:
    # The CR of line 1's CRLF is the last byte of the first 64 KiB chunk, the LF the first of
    # the next: one line break, not two.
    data = b"x" * 65535 + b"\r\n" + b"bad\x81 byte\r\n"
    caught = problem(write(tmp_path, "a.csv", data))
    assert caught.code == "undecodable_text"
    assert caught.details["line"] == 2


def test_broken_utf8_is_not_read_as_cp932(tmp_path: Path) -> None:
    # CP932 would decode all of this (into mojibake): the UTF-8 lines before the bad byte win.
    lines = ["社員番号,氏名"] + [f"E{i:05},山田" for i in range(10_000)]
    data = ("\r\n".join(lines) + "\r\n").encode() + b"E99999,\xff\xfe\r\n"
    data.decode("cp932")
    path = write(tmp_path, "a.csv", data)
    caught = problem(path)
    assert caught.code == "undecodable_text"
    assert caught.details == {"line": 10_002, "encoding": "utf-8"}
    assert "Line 10002" in caught.message


def test_utf8_cut_inside_a_character(tmp_path: Path) -> None:
    data = "社員番号,氏名\nE001,山田\n".encode()[:-2]  # ends with 1 of the 3 bytes of "田"
    caught = problem(write(tmp_path, "a.csv", data))
    assert caught.code == "undecodable_text"
    assert caught.details == {"line": 2, "encoding": "utf-8"}


def test_invalid_utf8_after_bom(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", b"\xef\xbb\xbfid,name\n1,\x81 \n")
    caught = problem(path)
    assert caught.code == "undecodable_text"
    assert caught.details == {"line": 2, "encoding": "utf-8-sig"}


# --- CSV structure ----------------------------------------------------------------------------


def test_quoted_commas_and_newlines_keep_row_numbers(tmp_path: Path) -> None:
    text = (
        "社員番号,備考,性別\n"  # line 1
        'E001,"東京, 本社",男\n'  # line 2
        'E002,"一行目\n二行目\n三行目",女\n'  # lines 3-5
        'E003,"""引用""",男\n'  # line 6
        "E004,,女\n"  # line 7
    )
    path = write(tmp_path, "a.csv", text)
    assert rows(read_table(path, filename="a.csv")) == [
        (2, ["E001", "東京, 本社", "男"]),
        (3, ["E002", "一行目\n二行目\n三行目", "女"]),
        (6, ["E003", '"引用"', "男"]),
        (7, ["E004", "", "女"]),
    ]


def test_crlf_inside_quotes_stays_in_the_value(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", 'id,memo\r\n1,"a\r\nb"\r\n2,c\r\n')
    assert rows(read_table(path, filename="a.csv")) == [(2, ["1", "a\r\nb"]), (4, ["2", "c"])]


def test_blank_rows_skipped_but_counted(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "\n  \n社員番号,性別\n\nE001,男\n,\n , \nE002,女\n\n")
    table = read_table(path, filename="a.csv")
    assert table.header == ["社員番号", "性別"]
    assert table.header_row == 3
    assert rows(table) == [(5, ["E001", "男"]), (8, ["E002", "女"])]


def test_header_stripped_values_raw(tmp_path: Path) -> None:
    path = write(tmp_path, "a.txt", " 社員番号 ,\t性別\n E001 ,男\n")
    table = read_table(path, filename="a.txt")
    assert table.header == ["社員番号", "性別"]
    assert rows(table) == [(2, [" E001 ", "男"])]


def test_short_rows_padded(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "id,name,memo\n1,a\n2\n3,c,x\n")
    assert rows(read_table(path, filename="a.csv")) == [
        (2, ["1", "a", None]),
        (3, ["2", None, None]),
        (4, ["3", "c", "x"]),
    ]


def test_long_row_is_ragged(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", 'id,name\n1,a\n2,"b\nb"\n3,c,extra\n4,d\n')
    table = read_table(path, filename="a.csv")
    assert next(table.rows) == (2, ["1", "a"])
    assert next(table.rows) == (3, ["2", "b\nb"])
    with pytest.raises(FileProblem) as caught:
        next(table.rows)
    assert caught.value.code == "ragged_row"
    assert caught.value.details == {"line": 5, "cells": 3, "columns": 2}
    assert "Line 5" in caught.value.message


def test_trailing_empty_cells_are_not_ragged(tmp_path: Path) -> None:
    # Excel pads every row with commas up to the widest one.
    path = write(tmp_path, "a.csv", "id,name,,\n1,a,,\n2,b, ,\n")
    table = read_table(path, filename="a.csv")
    assert table.header == ["id", "name"]
    assert rows(table) == [(2, ["1", "a"]), (3, ["2", "b"])]


@pytest.mark.parametrize("content", [b"", b"\n\n\r\n", b"  \n\t\n , ,\n", b"\xef\xbb\xbf\r\n"])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    assert problem(write(tmp_path, "a.csv", content)).code == "empty_file"


def test_too_many_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", ",".join(f"c{i}" for i in range(101)) + "\n")
    caught = problem(path)
    assert caught.code == "too_many_columns"
    assert caught.details == {"columns": 101, "max_columns": 100}
    table = read_table(path, filename="a.csv", limits=Limits(max_columns=101))
    assert len(table.header) == 101


def test_row_longer_than_limit(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", 'id,memo\n1,short\n2,"' + "x" * 500 + "\n" * 10)
    caught = problem(path, limits=Limits(max_csv_row_chars=100))
    assert caught.code == "row_too_long"
    assert caught.details["line"] == 3


def test_rows_are_lazy_and_closable(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "id\n" + "".join(f"{i}\n" for i in range(1000)))
    with read_table(path, filename="a.csv") as table:
        assert next(table.rows) == (2, ["0"])
    assert list(table.rows) == []


# --- formats ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["report.pdf", "data.xls", "noextension", "a.json"])
def test_unsupported_format(tmp_path: Path, name: str) -> None:
    caught = problem(write(tmp_path, "upload.bin", b"%PDF-1.7\n"), filename=name)
    assert caught.code == "unsupported_format"


def test_extension_is_case_insensitive(tmp_path: Path) -> None:
    path = write(tmp_path, "upload.bin", "id\n1\n")
    assert read_table(path, filename="社員.CSV").format == "csv"


@pytest.mark.parametrize(
    "content",
    [b"id,name\n1,a\n", b"PK\x03\x04truncated", bytes.fromhex("d0cf11e0a1b11ae1") + b"\0" * 512],
)
def test_xlsx_that_is_not_a_zip(tmp_path: Path, content: bytes) -> None:
    assert problem(write(tmp_path, "a.xlsx", content)).code == "not_a_spreadsheet"


def test_zip_that_is_not_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "a.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "not a workbook")
    assert problem(path).code == "not_a_spreadsheet"


def test_zip_bomb_is_refused_before_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bomb.xlsx"
    zeros = bytes(1024 * 1024)
    with (
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
        archive.open("xl/worksheets/sheet1.xml", "w") as member,
    ):
        for _ in range(50):  # 50 MB of zeros
            member.write(zeros)
    assert path.stat().st_size < 1024 * 1024

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the workbook was parsed")

    monkeypatch.setattr(openpyxl, "load_workbook", never)
    caught = problem(path)
    assert caught.code == "xlsx_too_large"
    assert caught.details["entry"] == "xl/worksheets/sheet1.xml"
    # The total size is checked as well as the ratio.
    caught = problem(path, limits=Limits(max_xlsx_uncompressed=10_000_000, max_xlsx_ratio=10**6))
    assert caught.code == "xlsx_too_large"
    assert caught.details["max_uncompressed"] == 10_000_000


# --- XLSX -------------------------------------------------------------------------------------


def make_workbook(path: Path) -> None:
    workbook = openpyxl.Workbook()
    first = workbook.active
    first.title = "社員"
    first.append(["社員番号", " 氏名 ", "入社日", "年収", "在籍", None, None])
    first.append(["E001", " 山田 ", dt.date(2020, 4, 1), 5_000_000, True, None, None])
    first.append([None, None, None])  # row 3: blank, skipped
    first.append(["E002", "佐藤", dt.datetime(2021, 10, 1, 9, 30), 4_250_000.5, False])
    first.append(["E003", "  "])  # short, and a blank trailing cell: padded with None
    first["B20"] = "鈴木"  # a row far below, after a gap
    second = workbook.create_sheet("勤怠")
    second.append(["社員番号", "年月", "残業時間"])
    second.append(["E001", "2024-04", 12.5])
    chart = openpyxl.chart.BarChart()
    chart.add_data(openpyxl.chart.Reference(second, min_col=3, min_row=1, max_row=2))
    workbook.create_chartsheet("グラフ").add_chart(chart)  # not a worksheet: never read
    workbook.save(path)


def test_xlsx_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "upload.xlsx"
    make_workbook(path)
    table = read_table(path, filename="社員データ.xlsx")
    assert table.format == "xlsx"
    assert table.encoding is None
    assert table.header == ["社員番号", "氏名", "入社日", "年収", "在籍"]
    got = rows(table)
    assert got == [
        (2, ["E001", "山田", dt.datetime(2020, 4, 1), 5_000_000, True]),
        (4, ["E002", "佐藤", dt.datetime(2021, 10, 1, 9, 30), 4_250_000.5, False]),
        (5, ["E003", None, None, None, None]),
        (20, [None, "鈴木", None, None, None]),
    ]
    assert isinstance(got[0][1][3], int)


def test_xlsx_second_sheet_by_name(tmp_path: Path) -> None:
    path = tmp_path / "upload.xlsx"
    make_workbook(path)
    table = read_table(path, filename="a.xlsx", sheet="勤怠")
    assert table.header == ["社員番号", "年月", "残業時間"]
    assert rows(table) == [(2, ["E001", "2024-04", 12.5])]


@pytest.mark.parametrize("sheet", ["存在しない", "グラフ"])
def test_xlsx_sheet_not_found(tmp_path: Path, sheet: str) -> None:
    path = tmp_path / "upload.xlsx"
    make_workbook(path)
    caught = problem(path, sheet=sheet)
    assert caught.code == "sheet_not_found"
    assert caught.details == {"sheet": sheet, "sheets": ["社員", "勤怠"]}


def test_xlsx_long_row_is_ragged(tmp_path: Path) -> None:
    path = tmp_path / "a.xlsx"
    workbook = openpyxl.Workbook()
    workbook.active.append(["id", "name"])
    workbook.active.append(["1", "a", None, "stray"])
    workbook.save(path)
    caught = problem(path)
    assert caught.code == "ragged_row"
    assert caught.details == {"row": 2, "cells": 4, "columns": 2}


def test_xlsx_empty_sheet(tmp_path: Path) -> None:
    path = tmp_path / "a.xlsx"
    openpyxl.Workbook().save(path)
    assert problem(path).code == "empty_file"


def test_xlsx_wrong_dimension_still_reads_every_row(tmp_path: Path) -> None:
    # Some writers record a too-small <dimension ref>; read-only openpyxl would stop there.
    source = tmp_path / "source.xlsx"
    workbook = openpyxl.Workbook()
    for i in range(5):
        workbook.active.append([f"c{i}", i])
    workbook.save(source)
    path = tmp_path / "a.xlsx"
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(path, "w") as new:
        for item in old.infolist():
            data = old.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                assert b'<dimension ref="A1:B5"' in data
                data = data.replace(b'<dimension ref="A1:B5"', b'<dimension ref="A1"')
            new.writestr(item, data)
    assert rows(read_table(path, filename="a.xlsx"))[-1] == (5, ["c4", 4])


def test_xlsx_workbook_closed_after_iteration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "upload.xlsx"
    make_workbook(path)
    closed: list[bool] = []
    real_load = openpyxl.load_workbook

    def load(*args: Any, **kwargs: Any) -> Any:
        workbook = real_load(*args, **kwargs)
        real_close = workbook.close

        def close() -> None:
            closed.append(True)
            real_close()

        workbook.close = close
        return workbook

    monkeypatch.setattr(openpyxl, "load_workbook", load)
    table = read_table(path, filename="a.xlsx")
    assert closed == []
    rows(table)
    assert closed == [True]
    with read_table(path, filename="a.xlsx") as early:
        next(early.rows)
    assert closed == [True, True]


# --- templates --------------------------------------------------------------------------------


def test_template_csv_cp932(tmp_path: Path) -> None:
    data = write_template_csv(HEADER_JA, encoding="cp932")
    assert data.endswith(b"\r\n")
    assert data.decode("cp932") == "社員番号,氏名,性別,入社日\r\n"
    path = write(tmp_path, "template.csv", data)
    table = read_table(path, filename="template.csv")
    assert (table.encoding, table.header, rows(table)) == ("cp932", HEADER_JA, [])


def test_template_csv_utf8_sig_quotes_when_needed() -> None:
    data = write_template_csv(["id", "a,b", 'say "hi"'], encoding="utf-8-sig")
    assert data == b'\xef\xbb\xbfid,"a,b","say ""hi"""\r\n'


def test_template_xlsx(tmp_path: Path) -> None:
    data = write_template_xlsx(HEADER_JA)
    workbook = openpyxl.load_workbook(io.BytesIO(data))
    assert workbook.sheetnames == ["data"]
    assert [cell.value for cell in workbook["data"][1]] == HEADER_JA
    assert workbook["data"].max_row == 1
    path = write(tmp_path, "template.xlsx", data)
    table = read_table(path, filename="template.xlsx")
    assert (table.header, rows(table)) == (HEADER_JA, [])
