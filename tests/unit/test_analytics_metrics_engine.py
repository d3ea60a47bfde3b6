"""services.analytics.metrics: the result frame, the catalog it follows, fiscal years."""

from __future__ import annotations

import re
from datetime import date

import polars as pl
import pytest

from services.analytics.metrics import CATALOG, RESULT_SCHEMA, Datasets, compute_all
from services.analytics.metrics.periods import fiscal_year_of_month, month_bounds


def _all_kinds() -> Datasets:
    employee = {
        "employee_id": "e1",
        "company_code": "A",
        "department": "Sales",
        "gender": "female",
        "birth_date": date(1990, 1, 1),
        "hire_date": date(2020, 4, 1),
        "exit_date": None,
        "exit_reason": None,
        "employment_type": "regular",
        "is_manager": True,
        "job_grade": "G1",
    }
    employees = pl.DataFrame(
        [employee, {**employee, "employee_id": "e2", "gender": "male", "is_manager": False}]
    )
    attendance = pl.DataFrame(
        {
            "employee_id": ["e1", "e2"],
            "month": ["2024-04"] * 2,
            "overtime_hours": [10.0, 50.0],
            "paid_leave_granted_days": [10.0, 10.0],
            "paid_leave_taken_days": [5.0, 2.0],
        }
    )
    payroll = pl.DataFrame(
        {
            "employee_id": ["e1", "e2", "e3", "e4"],
            "company_code": ["A"] * 4,
            "fiscal_year": [2024] * 4,
            "gender": ["female", "male"] * 2,
            "employment_type": ["regular", "regular", "non_regular", "non_regular"],
            "annual_wage": [4_000_000, 5_000_000, 2_000_000, 2_500_000],
        }
    )
    childcare = pl.DataFrame(
        {
            "employee_id": ["e2"],
            "company_code": ["A"],
            "gender": ["male"],
            "child_birth_date": [date(2024, 5, 1)],
            "leave_type": ["childcare_leave"],
            "leave_start_date": [date(2024, 5, 2)],
        }
    )
    return Datasets(
        employees={"2024-04": employees},
        payroll={"2024": payroll},
        attendance={"2024-04": attendance},
        childcare=childcare,
    )


@pytest.fixture(scope="module")
def result() -> pl.DataFrame:
    return compute_all(_all_kinds())


def test_result_columns_and_order(result: pl.DataFrame) -> None:
    assert result.schema == RESULT_SCHEMA
    keys = ["metric", "period", "company", "group_by", "group"]
    assert result.equals(result.sort(keys, nulls_last=False))
    assert result.select(keys).is_duplicated().sum() == 0


def test_every_catalog_metric_with_its_periods_and_breakdowns(result: pl.DataFrame) -> None:
    assert set(result["metric"]) == set(CATALOG)
    for key, metric in CATALOG.items():
        rows = result.filter(pl.col("metric") == key)
        forms = {"monthly" if re.fullmatch(r"\d{4}-\d{2}", p) else "yearly" for p in rows["period"]}
        assert forms == set(metric.frequencies), key
        assert set(rows["group_by"].drop_nulls()) == set(metric.group_by), key
        # Each is there per company and for the whole group.
        assert set(rows["company"]) == {"A", None}, key


def test_no_data_gives_an_empty_frame() -> None:
    empty = compute_all(Datasets())
    assert empty.schema == RESULT_SCHEMA
    assert empty.is_empty()


@pytest.mark.parametrize("start", [0, 13, True])
def test_fiscal_year_start_must_be_a_month(start: int) -> None:
    with pytest.raises(ValueError, match="fiscal_year_start"):
        compute_all(_all_kinds(), fiscal_year_start=start)


@pytest.mark.parametrize(
    ("month", "start", "year"),
    [
        ("2024-03", 4, "2023"),
        ("2024-04", 4, "2024"),
        ("2024-01", 1, "2024"),
        ("2024-12", 1, "2024"),
        ("2024-09", 10, "2023"),
        ("2024-10", 10, "2024"),
    ],
)
def test_fiscal_year_is_named_by_its_first_calendar_year(month: str, start: int, year: str) -> None:
    assert fiscal_year_of_month(month, start) == year


def test_month_bounds_know_leap_years() -> None:
    assert month_bounds("2024-02") == (date(2024, 2, 1), date(2024, 2, 29))
    assert month_bounds("2023-02") == (date(2023, 2, 1), date(2023, 2, 28))
    with pytest.raises(ValueError, match="YYYY-MM"):
        month_bounds("2024-13")
