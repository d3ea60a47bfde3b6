"""services.analytics.metrics, gender pay gap: women's mean wage ÷ men's × 100, rounded half up
at the 2nd decimal, for all, regular and non-regular workers. Expected numbers by hand."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from services.analytics.metrics import Datasets, compute_all

PAYROLL = {
    "employee_id": pl.String,
    "company_code": pl.String,
    "fiscal_year": pl.Int64,
    "gender": pl.String,
    "employment_type": pl.String,
    "annual_wage": pl.Int64,
}


def payroll(year: int, *rows: tuple[str, str, str, int]) -> pl.DataFrame:
    """(company, gender, employment_type, annual_wage) each."""
    return pl.DataFrame(
        [
            {
                "employee_id": f"e{i}",
                "company_code": company,
                "fiscal_year": year,
                "gender": gender,
                "employment_type": employment_type,
                "annual_wage": wage,
            }
            for i, (company, gender, employment_type, wage) in enumerate(rows)
        ],
        schema=PAYROLL,
    )


@pytest.fixture(scope="module")
def result() -> pl.DataFrame:
    fy2024 = payroll(
        2024,
        ("A", "female", "regular", 3_010_000),
        ("A", "male", "regular", 4_000_000),
        ("A", "female", "non_regular", 1_500_000),
        ("A", "female", "non_regular", 1_509_900),
        ("A", "male", "non_regular", 2_000_000),
        ("A", "other", "regular", 9_999_999),  # neither women nor men: not counted
        ("B", "male", "regular", 5_000_000),
    )
    return compute_all(Datasets(payroll={"2024": fy2024}))


def gap(result: pl.DataFrame, metric: str, company: str | None) -> dict[str, Any]:
    rows = result.filter(
        pl.col("metric") == metric,
        pl.col("period") == "2024",
        pl.col("company").is_null() if company is None else pl.col("company") == company,
    )
    assert rows.height == 1, rows
    return rows.row(0, named=True)


def test_half_up_exactly_at_the_boundary(result: pl.DataFrame) -> None:
    # A regular: 3,010,000 ÷ 4,000,000 × 100 = 75.25 exactly → 75.3 (half up; a float
    # computation or half-even rounding could give 75.2).
    assert gap(result, "gender_pay_gap_regular", "A")["value"] == 75.3
    # A non-regular: women's mean (1,500,000 + 1,509,900) / 2 = 1,504,950 ÷ 2,000,000 × 100
    # = 75.2475 → 2nd decimal 4 → 75.2.
    non_regular = gap(result, "gender_pay_gap_non_regular", "A")
    assert non_regular["value"] == 75.2
    assert (non_regular["numerator"], non_regular["denominator"]) == (1_504_950.0, 2_000_000.0)


def test_all_workers_per_company_and_group(result: pl.DataFrame) -> None:
    # A all: women 6,019,900 / 3 = 2,006,633.3; men 6,000,000 / 2 = 3,000,000
    # → 66.888 → 66.9; n = min(3 women, 2 men) = 2 ("other" is left out).
    a = gap(result, "gender_pay_gap", "A")
    assert (a["value"], a["n"]) == (66.9, 2)
    # Group: women 6,019,900 / 3; men (4,000,000 + 2,000,000 + 5,000,000) / 3 → 6,019,900 ÷
    # 11,000,000 × 100 = 54.726 → 54.7, n = 3. Regular: 3,010,000 ÷ (9,000,000 / 2) = 66.89
    # → 66.9.
    group = gap(result, "gender_pay_gap", None)
    assert (group["value"], group["n"]) == (54.7, 3)
    assert gap(result, "gender_pay_gap_regular", None)["value"] == 66.9
    assert gap(result, "gender_pay_gap_non_regular", None)["value"] == 75.2


def test_no_women_gives_null(result: pl.DataFrame) -> None:
    # B has one man and no woman: no mean to compare, null (and no non-regular cell at all).
    b = gap(result, "gender_pay_gap", "B")
    assert (b["value"], b["n"], b["numerator"]) == (None, 0, None)
    assert result.filter(
        pl.col("metric") == "gender_pay_gap_non_regular", pl.col("company") == "B"
    ).is_empty()


def test_pay_gap_has_no_breakdowns(result: pl.DataFrame) -> None:
    assert result["group_by"].is_null().all()
    assert set(result["metric"]) == {
        "gender_pay_gap",
        "gender_pay_gap_regular",
        "gender_pay_gap_non_regular",
    }
