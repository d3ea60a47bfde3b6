"""services.analytics.metrics, workforce: headcount, hires and exits, ratios, averages, turnover.

Every expected number is worked out by hand in the comment next to it.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl
import pytest

from services.analytics.metrics import Datasets, compute_all

EMPLOYEES = {
    "employee_id": pl.String,
    "company_code": pl.String,
    "department": pl.String,
    "gender": pl.String,
    "birth_date": pl.Date,
    "hire_date": pl.Date,
    "exit_date": pl.Date,
    "exit_reason": pl.String,
    "employment_type": pl.String,
    "is_manager": pl.Boolean,
    "job_grade": pl.String,
}


def person(
    employee_id: str,
    company: str = "A",
    *,
    department: str | None = "Sales",
    gender: str = "male",
    birth: date | None = None,
    hire: date = date(2020, 4, 1),
    exit: date | None = None,
    reason: str | None = None,
    employment_type: str = "regular",
    manager: bool = False,
    grade: str | None = None,
) -> dict[str, Any]:
    return {
        "employee_id": employee_id,
        "company_code": company,
        "department": department,
        "gender": gender,
        "birth_date": birth,
        "hire_date": hire,
        "exit_date": exit,
        "exit_reason": reason,
        "employment_type": employment_type,
        "is_manager": manager,
        "job_grade": grade,
    }


def snapshot(*rows: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=EMPLOYEES)


def cell(
    result: pl.DataFrame,
    metric: str,
    period: str,
    company: str | None = None,
    group_by: str | None = None,
    group: str | None = None,
) -> dict[str, Any]:
    """The one row of a cell (null company / group_by / group match null)."""

    def match(column: str, value: str | None) -> pl.Expr:
        return pl.col(column).is_null() if value is None else pl.col(column) == value

    rows = result.filter(
        pl.col("metric") == metric,
        pl.col("period") == period,
        match("company", company),
        match("group_by", group_by),
        match("group", group),
    )
    assert rows.height == 1, rows
    return rows.row(0, named=True)


def value(result: pl.DataFrame, *key: str | None) -> float | None:
    v = cell(result, *key)["value"]  # type: ignore[arg-type]
    assert v is None or isinstance(v, float)
    return v


# April 2024 (month end 2024-04-30), companies A and B.
APRIL = snapshot(
    person("a1", gender="female", birth=date(1994, 4, 30), hire=date(2020, 4, 1),
           manager=True, grade="G3"),
    person("a2", birth=date(1994, 5, 1), hire=date(2024, 4, 1), manager=True, grade="G1"),
    # Leaves on the month's last day: an exit of April, not in April's headcount.
    person("a3", department="Dev", birth=date(1980, 1, 15), hire=date(2010, 10, 1),
           exit=date(2024, 4, 30), reason="voluntary", manager=True, grade="G3"),
    person("a4", department="Dev", gender="female", hire=date(2022, 4, 1),
           employment_type="non_regular"),
    person("b1", "B", department=None, birth=date(1970, 6, 1), hire=date(1995, 4, 1),
           exit=date(2024, 4, 15), reason="involuntary", manager=True, grade="G4"),
    person("b2", "B", department="Ops", gender="female", birth=date(1990, 12, 31),
           hire=date(2015, 4, 1), grade="G4"),
)  # fmt: skip


@pytest.fixture(scope="module")
def april() -> pl.DataFrame:
    return compute_all(Datasets(employees={"2024-04": APRIL}))


def test_headcount_hires_and_exits_per_company_and_group(april: pl.DataFrame) -> None:
    # Headcount: no exit_date or exit_date after 2024-04-30. A: a1, a2, a4 (a3 left on the
    # 30th) = 3; B: b2 = 1 (b1 left on the 15th); group 4.
    assert [value(april, "headcount", "2024-04", c) for c in ("A", "B", None)] == [3, 1, 4]
    # Hires in April: a2 (A).
    assert [value(april, "hires", "2024-04", c) for c in ("A", "B", None)] == [1, 0, 1]
    # Exits in April: a3 (A, voluntary), b1 (B, involuntary).
    assert [value(april, "exits", "2024-04", c) for c in ("A", "B", None)] == [1, 1, 2]
    assert [value(april, "voluntary_exits", "2024-04", c) for c in ("A", "B", None)] == [1, 0, 1]
    # n of a count is the count; its basis is the count.
    assert cell(april, "headcount", "2024-04", "A")["n"] == 3
    assert cell(april, "exits", "2024-04")["numerator"] == 2.0


def test_ratios_at_month_end_with_zero_denominator_null(april: pl.DataFrame) -> None:
    # Women ÷ headcount: A 2/3 = 66.67 → 66.7; B 1/1 → 100.0; group 3/4 → 75.0.
    assert [value(april, "female_ratio", "2024-04", c) for c in ("A", "B", None)] == [
        66.7,
        100.0,
        75.0,
    ]
    # Managers in the headcount: A a1 (woman), a2 (a3 left) → women 1/2 = 50.0; B none → null;
    # group 1/2 = 50.0.
    assert [value(april, "female_manager_ratio", "2024-04", c) for c in ("A", "B", None)] == [
        50.0,
        None,
        50.0,
    ]
    b = cell(april, "female_manager_ratio", "2024-04", "B")
    assert (b["n"], b["numerator"], b["denominator"]) == (0, 0.0, 0.0)
    # Managers ÷ headcount: A 2/3 → 66.7; B 0/1 → 0.0 (a real zero, not null); group 2/4 → 50.0.
    assert [value(april, "manager_ratio", "2024-04", c) for c in ("A", "B", None)] == [
        66.7,
        0.0,
        50.0,
    ]
    group = cell(april, "female_ratio", "2024-04")
    assert (group["n"], group["numerator"], group["denominator"]) == (4, 3.0, 4.0)


def test_average_age_and_tenure_in_days_over_365_25(april: pl.DataFrame) -> None:
    # Ages at 2024-04-30 in days: a1 (1994-04-30) 10958 = 30 × 365 + 8 leap days; a2
    # (1994-05-01) 10957; a4 has no birth date; b2 (1990-12-31) 12174.
    # A: (10958 + 10957) / 2 / 365.25 = 29.99993 → 30.0, n = 2 (a4 not counted).
    # B: 12174 / 365.25 = 33.331 → 33.3; group: 34089 / 3 / 365.25 = 31.110 → 31.1.
    assert [value(april, "average_age", "2024-04", c) for c in ("A", "B", None)] == [
        30.0,
        33.3,
        31.1,
    ]
    assert [cell(april, "average_age", "2024-04", c)["n"] for c in ("A", "B", None)] == [2, 1, 3]
    # Tenure days: a1 (2020-04-01) 1490, a2 (2024-04-01) 29, a4 (2022-04-01) 760, b2
    # (2015-04-01) 3317. A: 2279 / 3 / 365.25 = 2.0798 → 2.1; B: 3317 / 365.25 = 9.0815 → 9.1;
    # group: 5596 / 4 / 365.25 = 3.8303 → 3.8.
    assert [value(april, "average_tenure", "2024-04", c) for c in ("A", "B", None)] == [
        2.1,
        9.1,
        3.8,
    ]


def test_breakdowns_by_dimension_with_n(april: pl.DataFrame) -> None:
    # Headcount by gender (group): women a1, a4, b2 = 3; men a2 = 1.
    assert value(april, "headcount", "2024-04", None, "gender", "female") == 3
    assert value(april, "headcount", "2024-04", None, "gender", "male") == 1
    # Age bands in completed years at 2024-04-30: a1 turns 30 that day → "30-39"; a2 is 29
    # → "<30"; b2 33 → "30-39"; a4 has no birth date → group null.
    assert value(april, "headcount", "2024-04", None, "age_band", "30-39") == 2
    assert value(april, "headcount", "2024-04", None, "age_band", "<30") == 1
    assert value(april, "headcount", "2024-04", None, "age_band", None) == 1
    # Leavers keep their attributes: a3 is 44 ("40-49"), b1 53 ("50+"); b1 has no department.
    assert value(april, "exits", "2024-04", None, "age_band", "40-49") == 1
    assert value(april, "exits", "2024-04", None, "age_band", "50+") == 1
    assert value(april, "exits", "2024-04", "B", "department", None) == 1
    # Manager ratio by gender: women 1 manager (a1) of 3 → 33.3, n = 3; men a2 of 1 → 100.0.
    women = cell(april, "manager_ratio", "2024-04", None, "gender", "female")
    assert (women["value"], women["n"]) == (33.3, 3)
    # Female ratio by employment type (group): regular a1, a2, b2 → 2/3 = 66.7; non-regular
    # a4 → 1/1 = 100.0. Per company: A regular a1, a2 → 1/2 = 50.0.
    assert value(april, "female_ratio", "2024-04", None, "employment_type", "regular") == 66.7
    assert value(april, "female_ratio", "2024-04", None, "employment_type", "non_regular") == 100
    assert value(april, "female_ratio", "2024-04", "A", "employment_type", "regular") == 50.0
    # Job grade: G3 headcount a1 (a3 left) = 1; G4 b2 = 1.
    assert value(april, "headcount", "2024-04", None, "job_grade", "G3") == 1


def test_breakdowns_only_where_the_catalog_allows(april: pl.DataFrame) -> None:
    # A female ratio by gender, or an average age by age band, says nothing.
    by = april.filter(pl.col("metric") == "female_ratio")["group_by"].unique().to_list()
    assert "gender" not in by
    assert "department" in by
    by = april.filter(pl.col("metric") == "average_age")["group_by"].unique().to_list()
    assert "age_band" not in by
    assert "gender" in by


def test_rounding_is_half_up_at_the_second_decimal() -> None:
    # 16 people, 1 woman, 3 managers: female ratio 100 × 1/16 = 6.25 → 6.3 (not 6.2 as
    # round-half-even would give); manager ratio 100 × 3/16 = 18.75 → 18.8.
    people = [
        person(f"p{i}", gender="female" if i == 0 else "male", manager=i < 3) for i in range(16)
    ]
    result = compute_all(Datasets(employees={"2024-04": snapshot(*people)}))
    assert value(result, "female_ratio", "2024-04") == 6.3
    assert value(result, "manager_ratio", "2024-04") == 18.8


# Three snapshots. A: p1..p4 in February; p4 leaves 2024-03-10 (voluntary); p5 and p6 join
# 2024-04-01, p3 leaves 2024-04-30 (involuntary, not in April's headcount), p6 (department
# Temp) leaves 2024-04-20. B: b1 all along.
FEBRUARY = snapshot(*(person(f"p{i}") for i in range(1, 5)), person("b1", "B"))
MARCH = snapshot(
    *(person(f"p{i}") for i in range(1, 4)),
    person("p4", exit=date(2024, 3, 10), reason="voluntary"),
    person("b1", "B"),
)
APRIL_TURNOVER = snapshot(
    person("p1"),
    person("p2"),
    person("p3", exit=date(2024, 4, 30), reason="involuntary"),
    person("p5", hire=date(2024, 4, 1)),
    person("p6", department="Temp", hire=date(2024, 4, 1), exit=date(2024, 4, 20), reason="other"),
    person("b1", "B"),
)
TURNOVER = Datasets(employees={"2024-02": FEBRUARY, "2024-03": MARCH, "2024-04": APRIL_TURNOVER})


def test_turnover_over_the_fiscal_year_months_with_a_snapshot_april_start() -> None:
    result = compute_all(TURNOVER, fiscal_year_start=4)
    # Month-end headcounts of A: Feb 4, Mar 3 (p4 left), Apr 3 (p1, p2, p5).
    # FY2023 (Apr 2023–Mar 2024) has Feb and Mar: exits 1 (p4) ÷ (4 + 3) / 2 = 3.5 → 28.57
    # → 28.6; all voluntary → 28.6; n = 3.5 rounded down = 3.
    fy2023 = cell(result, "turnover_rate", "2023", "A")
    assert (fy2023["value"], fy2023["n"], fy2023["denominator"]) == (28.6, 3, 3.5)
    assert value(result, "voluntary_turnover_rate", "2023", "A") == 28.6
    # FY2024 has April only: exits 2 (p3, p6) ÷ 3 → 66.67 → 66.7; no voluntary exit → 0.0.
    assert value(result, "turnover_rate", "2024", "A") == 66.7
    assert value(result, "voluntary_turnover_rate", "2024", "A") == 0.0
    # Group (with B's one employee): FY2023 1 ÷ ((5 + 4) / 2) → 22.22 → 22.2; FY2024
    # 2 ÷ 4 → 50.0; B never loses anyone → 0.0.
    assert value(result, "turnover_rate", "2023") == 22.2
    assert value(result, "turnover_rate", "2024") == 50.0
    assert value(result, "turnover_rate", "2024", "B") == 0.0
    # Department Temp: p6 joined and left in April, never in a month-end headcount: 1 exit
    # over an average headcount of 0 → null.
    temp = cell(result, "turnover_rate", "2024", "A", "department", "Temp")
    assert (temp["value"], temp["n"], temp["numerator"]) == (None, 0, 1.0)
    # Yearly hires and exits add up the FY's months: FY2024 hires p5, p6; exits p3, p6.
    assert value(result, "hires", "2024", "A") == 2
    assert value(result, "exits", "2024") == 2
    assert value(result, "exits", "2023") == 1


def test_turnover_with_a_january_fiscal_year() -> None:
    result = compute_all(TURNOVER, fiscal_year_start=1)
    # FY2024 = calendar 2024, months Feb, Mar, Apr. A: exits 3 (p4, p3, p6) ÷ ((4 + 3 + 3) / 3)
    # = 3 × 3 / 10 → 90.0; voluntary 1 (p4) → 30.0. Group: 3 ÷ ((5 + 4 + 4) / 3) = 9 / 13
    # → 69.23 → 69.2.
    assert value(result, "turnover_rate", "2024", "A") == 90.0
    assert value(result, "voluntary_turnover_rate", "2024", "A") == 30.0
    assert value(result, "turnover_rate", "2024") == 69.2
    assert result.filter(pl.col("period") == "2023").is_empty()
