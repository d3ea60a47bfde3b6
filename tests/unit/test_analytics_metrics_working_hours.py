"""services.analytics.metrics, working hours: overtime averages and shares, paid leave usage.

Attendance rows are matched to the employees snapshot of their month, else the latest one
before it. Every expected number is worked out by hand in the comment next to it.
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
ATTENDANCE = {
    "employee_id": pl.String,
    "month": pl.String,
    "overtime_hours": pl.Float64,
    "paid_leave_granted_days": pl.Float64,
    "paid_leave_taken_days": pl.Float64,
}


def snapshot(*people: tuple[str, str, str]) -> pl.DataFrame:
    """(employee_id, company, gender) each, hired 2020-04-01, regular, in department Sales."""
    rows = [
        {
            "employee_id": employee_id,
            "company_code": company,
            "department": "Sales",
            "gender": gender,
            "birth_date": None,
            "hire_date": date(2020, 4, 1),
            "exit_date": None,
            "exit_reason": None,
            "employment_type": "regular",
            "is_manager": False,
            "job_grade": None,
        }
        for employee_id, company, gender in people
    ]
    return pl.DataFrame(rows, schema=EMPLOYEES)


def attendance(month: str, *rows: tuple[str, float, float | None, float | None]) -> pl.DataFrame:
    """(employee_id, overtime_hours, granted days, taken days) each."""
    return pl.DataFrame(
        [
            {
                "employee_id": employee_id,
                "month": month,
                "overtime_hours": overtime,
                "paid_leave_granted_days": granted,
                "paid_leave_taken_days": taken,
            }
            for employee_id, overtime, granted, taken in rows
        ],
        schema=ATTENDANCE,
    )


def cell(
    result: pl.DataFrame,
    metric: str,
    period: str,
    company: str | None = None,
    group_by: str | None = None,
    group: str | None = None,
) -> dict[str, Any]:
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


# e1 moves from A to B in June. x9 is in no snapshot. March has no snapshot at or before it;
# May has none of its own and is matched to April's.
DATA = Datasets(
    employees={
        "2024-04": snapshot(("e1", "A", "female"), ("e2", "A", "male"), ("e3", "B", "male")),
        "2024-06": snapshot(("e1", "B", "female"), ("e2", "A", "male"), ("e3", "B", "male")),
    },
    attendance={
        "2024-03": attendance("2024-03", ("e1", 5.0, None, None)),
        "2024-04": attendance(
            "2024-04",
            ("e1", 10.35, 10.0, 1.0),
            ("e2", 50.0, 8.0, 0.5),
            ("e3", 81.0, 0.0, 0.0),
            ("x9", 0.0, None, None),
        ),
        "2024-05": attendance("2024-05", ("e1", 45.0, 0.0, 2.0), ("e2", 45.01, 0.0, 0.0)),
        "2024-06": attendance("2024-06", ("e1", 0.0, 0.0, 1.0)),
    },
)


@pytest.fixture(scope="module")
def result() -> pl.DataFrame:
    return compute_all(DATA, fiscal_year_start=4)


def test_monthly_overtime_per_company_and_group(result: pl.DataFrame) -> None:
    # April. A: e1, e2 → (10.35 + 50) / 2 = 30.175 → 30.2; B: e3 → 81.0; group with x9:
    # (10.35 + 50 + 81 + 0) / 4 = 35.3375 → 35.3, n = 4.
    assert [cell(result, "average_overtime_hours", "2024-04", c)["value"] for c in "AB"] == [
        30.2,
        81.0,
    ]
    group = cell(result, "average_overtime_hours", "2024-04")
    assert (group["value"], group["n"], group["numerator"]) == (35.3, 4, 141.35)
    # Over 45 h: A e2 → 1/2 = 50.0; group e2, e3 → 2/4 = 50.0. Over 80 h: group e3 → 25.0.
    assert cell(result, "overtime_over_45h_ratio", "2024-04", "A")["value"] == 50.0
    assert cell(result, "overtime_over_45h_ratio", "2024-04")["value"] == 50.0
    assert cell(result, "overtime_over_80h_ratio", "2024-04")["value"] == 25.0
    assert cell(result, "overtime_over_80h_ratio", "2024-04", "A")["value"] == 0.0


def test_over_45_hours_means_strictly_more(result: pl.DataFrame) -> None:
    # May: e1 45.0 is not over 45 h, e2 45.01 is → 1/2 = 50.0.
    assert cell(result, "overtime_over_45h_ratio", "2024-05", "A")["value"] == 50.0


def test_average_rounds_half_up_where_a_float_would_round_down(result: pl.DataFrame) -> None:
    # e1 alone, the only woman in April: 10.35 h. As a float 10.35 is 10.3499999..., so
    # round(10.35, 1) gives 10.3; half up at the 2nd decimal gives 10.4.
    assert (
        cell(result, "average_overtime_hours", "2024-04", None, "gender", "female")["value"] == 10.4
    )


def test_rows_are_matched_to_the_month_or_latest_earlier_snapshot(result: pl.DataFrame) -> None:
    # May has no snapshot: matched to April's, where e1 and e2 are in A.
    may = cell(result, "average_overtime_hours", "2024-05", "A")
    assert (may["value"], may["n"]) == (45.0, 2)  # (45 + 45.01) / 2 = 45.005 → 45.0
    # June: e1 is in B in June's snapshot.
    assert cell(result, "average_overtime_hours", "2024-06", "B")["n"] == 1
    overtime = result.filter(pl.col("metric") == "average_overtime_hours")
    assert overtime.filter(pl.col("period") == "2024-06", pl.col("company") == "A").is_empty()
    # x9 (in no snapshot) counts in the group only, with unknown attributes: the group's
    # April gender breakdown has a null-gender cell of 1 person.
    unknown = cell(result, "average_overtime_hours", "2024-04", None, "gender", None)
    assert (unknown["value"], unknown["n"]) == (0.0, 1)
    assert cell(result, "average_overtime_hours", "2024-04", "A")["n"] == 2
    # March: no snapshot at or before it, so the group alone has the figure.
    assert cell(result, "average_overtime_hours", "2024-03")["value"] == 5.0
    assert overtime.filter(pl.col("period") == "2024-03")["company"].is_null().all()


def test_paid_leave_usage_over_the_fiscal_year(result: pl.DataFrame) -> None:
    # FY2024 = April–June here. A: e1 in April and May, e2: taken 1 + 0.5 + 2 + 0 = 3.5,
    # granted 10 + 8 = 18 → 19.44 → 19.4, n = 2 people.
    a = cell(result, "paid_leave_usage_rate", "2024", "A")
    assert (a["value"], a["n"], a["numerator"], a["denominator"]) == (19.4, 2, 3.5, 18.0)
    # B: e3 (0 of 0) and e1 in June (1 of 0): taken 1, granted 0 → null; n = 2.
    b = cell(result, "paid_leave_usage_rate", "2024", "B")
    assert (b["value"], b["n"]) == (None, 2)
    # Group: taken 4.5 of 18 → 25.0; n = 4 distinct people (e1 counted once).
    group = cell(result, "paid_leave_usage_rate", "2024")
    assert (group["value"], group["n"]) == (25.0, 4)
    # Men (e2, e3): 0.5 of 8 = 6.25 → 6.3.
    assert cell(result, "paid_leave_usage_rate", "2024", None, "gender", "male")["value"] == 6.3
    # FY2023 = March 2024 only: e1, blank days count as 0 → 0 of 0 → null.
    assert cell(result, "paid_leave_usage_rate", "2023")["value"] is None
