"""The vectorised CSV validation gives exactly what the row-by-row validation gives.

Every case writes a CSV file to ``tmp_path`` and compares :func:`pipeline.read_and_validate` (and
:func:`columnar.try_fast`) with ``validate.validate`` over ``reading.read_table`` of that file:
the same frames (columns, dtypes, values, order), row count and warnings, or the same errors
(``as_dict`` of every listed error, and the total), or the same :class:`FileProblem` code.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from services.ingestion import columnar, pipeline, reading, validate
from services.ingestion.kinds import SPECS, Kind

KNOWN = frozenset({"C01", "C02", "C03"})
CTX = validate.Context((2024, 3), KNOWN, None, ignore_unknown=False)
SCOPED = validate.Context((2024, 3), KNOWN, frozenset({"C01"}), ignore_unknown=True)

Outcome = tuple[Any, ...]


def outcome_of(run: Any) -> Outcome:
    try:
        result: validate.Validated = run()
    except validate.Invalid as invalid:
        return ("invalid", [e.as_dict() for e in invalid.errors.listed], invalid.errors.total)
    except reading.FileProblem as problem:
        return ("problem", problem.code, problem.details)
    periods = {key: (frame.schema, frame.rows()) for key, frame in sorted(result.periods.items())}
    return ("ok", periods, result.rows, result.warnings, result.periods)


def slow(path: Path, kind: Kind, ctx: validate.Context) -> Outcome:
    def run() -> validate.Validated:
        with reading.read_table(path, filename="x.csv") as table:
            return validate.validate(SPECS[kind], table.header, table.rows, ctx, table.header_row)

    return outcome_of(run)


def same(
    path: Path, kind: Kind, ctx: validate.Context = CTX, *, fast: bool | None = True
) -> Outcome:
    """Assert both paths agree; ``fast``: whether try_fast must take the file (None: either)."""
    expected = slow(path, kind, ctx)
    got = outcome_of(
        lambda: pipeline.read_and_validate(path, "x.csv", kind, None, ctx, reading.Limits())
    )
    assert got[:4] == expected[:4]
    if expected[0] == "ok":
        for key, frame in expected[4].items():
            assert frame.equals(got[4][key])
            assert frame.schema == got[4][key].schema
    taken = none_outcome(lambda: columnar.try_fast(path, SPECS[kind], ctx) or _none())
    if fast is not None:
        assert (taken[0] != "none") is fast
    # Chunks of a line or two: the header, the tables of parsed values, the duplicates and the
    # errors carry across chunks. (The encoding is judged on the first chunk, so a file may
    # take the row-by-row path here and not above.)
    tiny = none_outcome(lambda: columnar.try_fast(path, SPECS[kind], ctx, chunk_size=7) or _none())
    if tiny[0] != "none":
        assert tiny[:4] == expected[:4]
        if expected[0] == "ok":
            for key, frame in expected[4].items():
                assert frame.equals(tiny[4][key])
    return expected


class _NoneError(Exception):
    pass


def _none() -> validate.Validated:
    raise _NoneError


def none_outcome(run: Any) -> Outcome:
    try:
        return outcome_of(run)
    except _NoneError:
        return ("none",)


def write(tmp_path: Path, name: str, lines: list[str], encoding: str, eol: str = "\r\n") -> Path:
    path = tmp_path / name
    path.write_bytes(eol.join(lines).encode(encoding) + eol.encode())
    return path


EMP_HEADER = "社員番号,会社コード,部署,性別,生年月日,入社日,退職日,退職理由,雇用形態,管理職,等級"
EMPLOYEES_OK = [
    EMP_HEADER,
    "E001,C01,営業部,男,1980-01-02,2005-04-01,,,正社員,○,G3",
    "ｅ００２,Ｃ０２, ｿｳﾑ  部 ,女性,昭和55年1月2日,H17.4.1,2023/12/31,自己都合,パート,×,",
    "E003,C01,,F,S60.3.3,令和元年5月1日,,,non-regular,no",
    "E004,C03,開発部,male,19900203,2015年4月1日,2024-03-31,定年退職,regular,はい,Ｇ１",
    " E005 ,C01,開発部,その他,,2024-03-31,,,契約社員,1,G2",
    "E006,C02,\u3000総務\u3000,不明,1970.1.1,2000.4.1,2010.4.1,解雇,嘱託,有,",
]


@pytest.mark.parametrize("encoding", ["cp932", "utf-8", "utf-8-sig"])
def test_valid_employees_are_the_same(tmp_path: Path, encoding: str) -> None:
    path = write(tmp_path, "e.csv", EMPLOYEES_OK, encoding)
    assert same(path, "employees")[0] == "ok"


def test_lf_blank_lines_and_trailing_commas(tmp_path: Path) -> None:
    lines = [
        EMPLOYEES_OK[0] + ",,",
        *[line + ",," if i % 2 else line for i, line in enumerate(EMPLOYEES_OK[1:])],
    ]
    lines[3:3] = ["", " , ,\u3000", ""]
    path = write(tmp_path, "e.csv", [*lines, "", ""], "cp932", eol="\n")
    result = same(path, "employees")
    assert result[0] == "ok"
    assert result[2] == 6


def test_unknown_column_ignored_is_a_warning(tmp_path: Path) -> None:
    lines = [EMPLOYEES_OK[0] + ",氏名", *[line + ",山田" for line in EMPLOYEES_OK[1:]]]
    path = write(tmp_path, "e.csv", lines, "cp932")
    result = same(path, "employees", validate.Context((2024, 3), KNOWN, None, ignore_unknown=True))
    assert result[3] == ["unknown column ignored: 氏名"]


EMPLOYEES_BAD = [
    EMP_HEADER,
    "E001,C01,営業部,男,1980-01-02,2005-04-01,,,正社員,○,G3",
    "E002,C09,営業部,X,1980-13-02,2005-04-01,,,正社員,○,G3",  # parse errors: no rules
    "E003,C09,営業部,男,1980-01-02,2024-04-01,,,正社員,○,G3",  # unknown company, hire > as_of
    "E004,C01,,女,2010-01-01,2005-04-01,2004-01-01,,regular,0",  # exit < hire, no reason, birth
    "E005,C01,,女,,2005-04-01,,定年,regular,0",  # reason without exit
    "E006,C01,,女,,2005-04-01,2024-04-01,定年,regular,0",  # exit > as_of
    "E001,C01,営業部,男,1980-01-02,2005-04-01,,,正社員,○,G3",  # duplicate of row 2
    "E007,C01,,女,,,,,regular",  # hire and is_manager missing (None and "")
    "E007,C01,,女,,2005-04-01,,,regular,maybe",
    "E008,,,,,,,,,,",
    "E009,C01," + "長" * 201 + ",女,,2005-04-01,,,regular,0," + "x" * 201,
    "E010,C01,,女,R1.4.30,2005-04-01,,,regular,0",  # date outside the era
    "E011,C01,,女,,2005-04-01,,,regular,0,G1",
    "Ｅ０１１,C02,,女,,2005-04-01,,,regular,0,G1",  # duplicate after NFKC, company ignored
    "E012,C01,,女,,2025-04-01,,,regular,0",  # rule error: not first_seen
    "E012,C01,,女,,2005-04-01,,,regular,0",  # first clean row of E012
    "E012,C01,,女,,2026-04-01,,,regular,0",  # rule error and duplicate
]


@pytest.mark.parametrize("encoding", ["cp932", "utf-8"])
def test_invalid_employees_give_the_same_errors(tmp_path: Path, encoding: str) -> None:
    path = write(tmp_path, "e.csv", EMPLOYEES_BAD, encoding)
    result = same(path, "employees")
    assert result[0] == "invalid"
    messages = {e["message"] for e in result[1]}
    assert "duplicate of row 2" in messages
    assert "duplicate of row 17" in messages
    assert "before hire_date" in messages


def test_scope_violations(tmp_path: Path) -> None:
    path = write(tmp_path, "e.csv", EMPLOYEES_OK, "cp932")
    result = same(path, "employees", SCOPED)
    assert result[0] == "invalid"
    assert {e["message"] for e in result[1]} == {"you may upload rows of your own companies only"}


@pytest.mark.parametrize(
    "header",
    [
        EMP_HEADER + ",氏名",  # unknown column
        EMP_HEADER + ",employee_id",  # the same column twice
        EMP_HEADER.replace("入社日,", ""),  # a required column missing
    ],
)
def test_header_errors(tmp_path: Path, header: str) -> None:
    path = write(tmp_path, "e.csv", [header, "E001"], "cp932")
    assert same(path, "employees")[0] == "invalid"


def test_header_only_has_no_data_rows(tmp_path: Path) -> None:
    path = write(tmp_path, "e.csv", [EMP_HEADER, ",,,"], "utf-8")
    result = same(path, "employees")
    assert result[1][0]["message"] == "the file has a header but no data rows"


PAYROLL = [
    "社員番号,会社コード,年度,性別,雇用形態,年収",
    'E002,C01,2023,男,正社員,"5,000,000"',
    "E001,C01,2023,女,パート,￥1234",
    "E001,C01,２０２４,女,パート,１２３４５６７円",
    "E003,C02,2024,M,regular,4000000.00",
    "E002,C01,2023,男,正社員,5000000",
]


def test_payroll(tmp_path: Path) -> None:
    good = [line for line in PAYROLL if '"' not in line][:-1]
    path = write(tmp_path, "p.csv", good, "cp932")
    result = same(path, "payroll")
    assert result[0] == "ok"
    assert list(result[1]) == ["2023", "2024"]
    bad = [
        *good,
        "E004,C01,1800,男,正社員,-5",
        "E005,C01,2023,男,正社員,12.5",
        "E006,C01,2023.0,男,正社員,1 234",
        "E001,C01,2024,女,パート,1",
        "E007,C01,2101,女,パート,−１",
        "E008,C01,,女,パート,007",
    ]
    path = write(tmp_path, "p2.csv", bad, "utf-8")
    assert same(path, "payroll")[0] == "invalid"


def test_quotes_fall_back_to_the_row_by_row_path(tmp_path: Path) -> None:
    path = write(tmp_path, "p.csv", PAYROLL, "cp932")
    assert same(path, "payroll", fast=False)[0] == "invalid"
    assert columnar.try_fast(path, SPECS["payroll"], CTX) is None


def test_other_fallbacks(tmp_path: Path) -> None:
    good = [line for line in PAYROLL if '"' not in line][:-1]
    ragged = write(tmp_path, "r.csv", [*good, "E009,C01,2023,男,正社員,1,extra"], "utf-8")
    assert same(ragged, "payroll", fast=False)[0] == "problem"
    lone_cr = write(tmp_path, "cr.csv", good, "utf-8", eol="\r")
    assert same(lone_cr, "payroll", fast=False)[0] == "ok"
    huge = write(tmp_path, "big.csv", [*good, "E009,C01,2023,男,正社員," + "9" * 30], "utf-8")
    # Beyond Int64 the row-by-row path fails building its frame; the fast path leaves it that.
    assert columnar.try_fast(huge, SPECS["payroll"], CTX) is None
    blank_first = write(tmp_path, "b.csv", ["", *good], "utf-8")
    assert same(blank_first, "payroll", fast=False)[0] == "ok"
    spec = SPECS["payroll"]
    # (polars takes the width from the first line: blank lines before the header fall back too)
    assert columnar.try_fast(blank_first, spec, CTX, header_row=2) is None
    for spaces, expected in ((100_000, "ok"), (140_000, "problem"), (1_100_000, "problem")):
        long_line = write(
            tmp_path, "l.csv", [*good, "E9,C01,2023,男,正社員,1" + " " * spaces], "utf-8"
        )
        assert same(long_line, "payroll", fast=None)[0] == expected


def test_bytes_that_do_not_decode_late_in_the_file(tmp_path: Path) -> None:
    good = [line for line in PAYROLL if '"' not in line]
    lines = [*good[:-1], *(f"E{i},C01,2023,男,正社員,{i}" for i in range(100, 400))]
    for encoding, broken in (("utf-8", b"\xff\xfe"), ("cp932", b"\x81\x7f")):
        body = "\r\n".join(lines).encode(encoding) + b"\r\n"
        path = tmp_path / f"late-{encoding}.csv"
        path.write_bytes(body + b"E999,C01,2023," + broken + b",regular,1\r\n")
        assert same(path, "payroll", fast=False) == (
            "problem",
            "undecodable_text",
            {"line": len(lines) + 1, "encoding": encoding},
        )


def test_cp932_after_an_ascii_start(tmp_path: Path) -> None:
    # An English header and ASCII rows first: the encoding shows only further down.
    lines = ["employee_id,company_code,fiscal_year,gender,employment_type,annual_wage"]
    lines += [f"E{i},C01,2023,M,regular,{i}" for i in range(300)]
    lines += ["E900,C02,2023,女,正社員,5000"]
    path = write(tmp_path, "ascii-first.csv", lines, "cp932")
    result = same(path, "payroll")
    assert result[0] == "ok"
    assert result[4]["2023"].filter(pl.col("employee_id") == "E900").row(0)[3] == "female"


def test_header_errors_and_a_later_quote(tmp_path: Path) -> None:
    lines = [
        "社員番号,会社,年度,性別,雇用形態,年収",
        "E1,C01,2023,男,正社員,1",
        'E2,"C01",2023,男,正社員,1',
    ]
    path = write(tmp_path, "hq.csv", lines, "utf-8")
    assert same(path, "payroll", fast=False)[0] == "invalid"


ATTENDANCE = [
    "社員番号,年月,残業時間,有給付与日数,有給取得日数",
    "E002,2024-04,12.50,10,1.5",
    "E001,R6.4,0,,",
    "E001,２０２４年５月,３．２５",
    "E003,202405,-0,1,",
]


def test_attendance(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", ATTENDANCE, "cp932")
    result = same(path, "attendance")
    assert list(result[1]) == ["2024-04", "2024-05"]
    only = write(
        tmp_path, "a1.csv", [",".join(line.split(",")[:3]) for line in ATTENDANCE], "utf-8"
    )
    assert same(only, "attendance")[0] == "ok"
    bad = [
        *ATTENDANCE,
        "E004,2024-13,1,1,1",
        "E005,2024-04,-1.50,-2,-0.000",
        "E001,2024/4,1,1,1",
        "E006,H31.5,1,1,1",
        "E007,2024-04,1,1,abc",
    ]
    path = write(tmp_path, "a2.csv", bad, "utf-8")
    assert same(path, "attendance")[0] == "invalid"


CHILDCARE = [
    "社員番号,会社コード,性別,出生日,休業種別,休業開始日",
    "E001,C01,男,2023-05-01,育児休業,2023-06-01",
    "E001,C01,男,2023-05-01,育児目的休暇,2023-05-10",
    "E002,C02,女,2023-07-01,,",
    "E003,C02,女,2023-08-01",
]


def test_childcare(tmp_path: Path) -> None:
    path = write(tmp_path, "c.csv", CHILDCARE, "cp932")
    assert same(path, "childcare")[0] == "ok"
    bad = [
        *CHILDCARE,
        "E002,C02,女,2023-07-01,,",  # the same row twice, null keys included
        "E003,C02,女,2023-08-01,,",
        "E004,C02,女,2023-08-01,育児休業,",
        "E005,C02,女,2023-08-01,,2023-09-01",
        "E006,C04,女,2023-08-01,育休,2023-09-01",
    ]
    path = write(tmp_path, "c2.csv", bad, "utf-8")
    result = same(path, "childcare")
    assert "duplicate of row 4" in {e["message"] for e in result[1]}


def test_more_than_a_thousand_errors(tmp_path: Path) -> None:
    lines = [EMP_HEADER] + [f"E{i},C01,,X,,2005-04-01,,,regular,1" for i in range(1500)]
    lines += [f"E{i},C01,,男,,2005-04-01,,,regular,1" for i in range(600)]
    path = write(tmp_path, "e.csv", lines, "utf-8")
    result = same(path, "employees")
    assert result[2] == 1500 + 0
    assert len(result[1]) == validate.MAX_LISTED_ERRORS


def test_whitespace_is_pythons() -> None:
    python = {chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()}
    assert set(columnar.WHITESPACE) == python


# --- randomised files: every value form, valid or not, in every column ------------------------

FORMS: dict[str, list[str]] = {
    "text": ["E1", "E2", "Ｅ１", " e1 ", "ｱｲｳ", "a  b", "", " ", "\u3000", "x" * 201, "名" * 201],
    "company": ["C01", "C02", "C03", "C04", "Ｃ０１", "", "c01"],
    "gender": ["男", "女", "M", "f", "Female", "その他", "不明", "", "x", "男 性"],
    "date": [
        "2005-04-01",
        "2005/4/1",
        "H17.4.1",
        "平成17年4月1日",
        "2024-04-01",
        "2024-03-31",
        "1980-01-02",
        "２００５－０４－０１",
        "2005-02-30",
        "R1.4.30",
        "20050401",
        "bad",
        "",
    ],
    "month": ["2024-04", "R6.4", "2024年5月", "202404", "2024-13", "H31.5", "", "2024/4"],
    "exit_reason": ["自己都合", "定年", "other", "", "", "", "bye"],
    "employment_type": ["正社員", "パート", "non-regular", "Non Regular", "", "x"],
    "bool": ["○", "×", "1", "0", "YES", "n", "", "maybe"],
    "int": [
        "2023",
        "2024",
        "１２３",
        "￥1234",
        "１，２３４",
        "12.0",
        "12.5",
        "-5",
        "1800",
        "",
        "x",
    ],
    "decimal": ["1", "1.50", "-0", "-1.5", "３．２５", "１，０００.5", "1，00", "", "abc", "0.000"],
    "leave_type": ["育児休業", "育児目的休暇", "childcare leave", "", "", "x"],
}
KIND_FORMS: dict[Kind, list[str]] = {
    "employees": [
        "text",
        "company",
        "text",
        "gender",
        "date",
        "date",
        "date",
        "exit_reason",
        "employment_type",
        "bool",
        "text",
    ],
    "payroll": ["text", "company", "int", "gender", "employment_type", "int"],
    "attendance": ["text", "month", "decimal", "decimal", "decimal"],
    "childcare": ["text", "company", "gender", "date", "leave_type", "date"],
}


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("kind", ["employees", "payroll", "attendance", "childcare"])
def test_random_files(tmp_path: Path, kind: Kind, seed: int) -> None:
    rng = random.Random(seed)
    spec = SPECS[kind]
    forms = KIND_FORMS[kind]
    ids = [f"E{i}" for i in range(8)] + FORMS["text"]
    header = [c.ja for c in spec.columns]
    order = list(range(len(header)))
    rng.shuffle(order)
    lines = [",".join(header[i] for i in order)]
    for _ in range(rng.choice([5, 40, 300])):
        cells = [rng.choice(FORMS[form]) for form in forms]
        cells[0] = rng.choice(ids)
        line = ",".join(cells[i] for i in order)
        if rng.random() < 0.05:
            line = line.rsplit(",", 1)[0]
        lines.append(line)
    encoding = rng.choice(["cp932", "utf-8", "utf-8-sig"])
    path = write(tmp_path, "r.csv", lines, encoding, eol=rng.choice(["\r\n", "\n"]))
    same(path, kind, rng.choice([CTX, SCOPED]))


def test_valid_random_payroll_is_ok(tmp_path: Path) -> None:
    lines = ["社員番号,会社コード,年度,性別,雇用形態,年収"]
    lines += [f"E{i},C0{i % 3 + 1},{2020 + i % 4},男,正社員,{i * 1000}" for i in range(500)]
    path = write(tmp_path, "p.csv", lines, "cp932")
    result = same(path, "payroll")
    assert result[0] == "ok"
    assert sum(frame.height for frame in result[4].values()) == 500
    assert isinstance(next(iter(result[4].values())), pl.DataFrame)
