"""services.analytics.metrics, male childcare-leave rates per fiscal year, per company and for
the group. A child is one (employee, child_birth_date). Expected numbers by hand."""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl
import pytest

from services.analytics.metrics import Datasets, compute_all

LEAVE, PURPOSE = "childcare_leave", "childcare_purpose_leave"
RATE, EITHER = "male_childcare_leave_rate", "male_childcare_leave_or_purpose_rate"


def history(*rows: tuple[str, str, str, date, str | None, date | None]) -> pl.DataFrame:
    """(employee_id, company, gender, child_birth_date, leave_type, leave_start_date) each."""
    columns = ("employee_id", "company_code", "gender", "child_birth_date")
    return pl.DataFrame(
        [dict(zip((*columns, "leave_type", "leave_start_date"), row, strict=True)) for row in rows],
        schema={
            "employee_id": pl.String,
            "company_code": pl.String,
            "gender": pl.String,
            "child_birth_date": pl.Date,
            "leave_type": pl.String,
            "leave_start_date": pl.Date,
        },
    )


HISTORY = history(
    # m1: child born 2024-03-20, childcare leaves from 2024-04-05, 2024-06-01 and 2025-05-01.
    ("m1", "A", "male", date(2024, 3, 20), LEAVE, date(2024, 4, 5)),
    ("m1", "A", "male", date(2024, 3, 20), LEAVE, date(2024, 6, 1)),
    ("m1", "A", "male", date(2024, 3, 20), LEAVE, date(2025, 5, 1)),
    # m2: purpose leave 2023-05-12, then childcare leave 2023-07-01.
    ("m2", "A", "male", date(2023, 5, 10), PURPOSE, date(2023, 5, 12)),
    ("m2", "A", "male", date(2023, 5, 10), LEAVE, date(2023, 7, 1)),
    # m3: twins born 2023-08-01 (one birth), purpose leave only.
    ("m3", "A", "male", date(2023, 8, 1), None, None),
    ("m3", "A", "male", date(2023, 8, 1), PURPOSE, date(2023, 8, 3)),
    # m4 (company B): a birth with no leave.
    ("m4", "B", "male", date(2023, 11, 11), None, None),
    # m5: born 2023-01-10, purpose leave 2023-03-01, childcare leave 2023-04-10.
    ("m5", "A", "male", date(2023, 1, 10), PURPOSE, date(2023, 3, 1)),
    ("m5", "A", "male", date(2023, 1, 10), LEAVE, date(2023, 4, 10)),
    # A woman's leave is not in these rates.
    ("f1", "A", "female", date(2023, 6, 1), LEAVE, date(2023, 7, 1)),
)


def rate(result: pl.DataFrame, metric: str, year: str, company: str | None) -> dict[str, Any]:
    rows = result.filter(
        pl.col("metric") == metric,
        pl.col("period") == year,
        pl.col("company").is_null() if company is None else pl.col("company") == company,
    )
    assert rows.height == 1, rows
    return rows.row(0, named=True)


@pytest.fixture(scope="module")
def april() -> pl.DataFrame:
    return compute_all(Datasets(childcare=HISTORY), fiscal_year_start=4)


def test_april_fiscal_year_group(april: pl.DataFrame) -> None:
    # FY2023 (2023-04..2024-03) births: m1 (2024-03-20), m2, m3 (twins: one), m4 = 4.
    # First childcare leave in FY2023: m2 (2023-07-01), m5 (2023-04-10, child of FY2022)
    # = 2; m1's first (2024-04-05) is in FY2024; m1's later leaves never count.
    # 2 / 4 × 100 = 50.
    fy2023 = rate(april, RATE, "2023", None)
    assert (fy2023["value"], fy2023["n"], fy2023["numerator"]) == (50.0, 4, 2.0)
    # Leave or purpose leave first started in FY2023: m2 (both, counted once), m3 (purpose),
    # m5 (leave) = 3 → 75.
    assert rate(april, EITHER, "2023", None)["value"] == 75.0


def test_birth_in_one_year_and_leave_in_the_next(april: pl.DataFrame) -> None:
    # FY2024: m1's first leave (numerator 1, his second leave in FY2024 not counted again),
    # but no child born in FY2024 → null, n = 0.
    fy2024 = rate(april, RATE, "2024", None)
    assert (fy2024["value"], fy2024["n"], fy2024["numerator"]) == (None, 0, 1.0)
    # His third leave (2025-05-01) is not a first: FY2025 has nothing to count.
    assert april.filter(pl.col("period") == "2025").is_empty()
    # FY2022: m5's child born 2023-01-10; his first childcare leave is in FY2023 (0 here),
    # his first purpose leave 2023-03-01 in FY2022 → rates 0 and 100. m5 counts in the
    # either-rate of FY2022 and FY2023 (each first leave in its own year), so that rate is
    # never below the first.
    assert rate(april, RATE, "2022", None)["value"] == 0.0
    assert rate(april, EITHER, "2022", None)["value"] == 100.0


def test_rate_is_truncated_per_company(april: pl.DataFrame) -> None:
    # A, FY2023: births m1, m2, m3 = 3; first childcare leave m2, m5 = 2 → 66.67 truncated
    # to 66 (rounding would give 67); either: m2, m3, m5 = 3 → 100.
    assert rate(april, RATE, "2023", "A")["value"] == 66.0
    assert rate(april, EITHER, "2023", "A")["value"] == 100.0
    # B, FY2023: m4's birth, no leave → 0 of 1 = 0 (a real zero).
    b = rate(april, RATE, "2023", "B")
    assert (b["value"], b["n"]) == (0.0, 1)


def test_january_fiscal_year() -> None:
    result = compute_all(Datasets(childcare=HISTORY), fiscal_year_start=1)
    # 2023: births m5, m2, m3, m4 = 4; first leave m2, m5 = 2 → 50; either m2, m3, m5 → 75.
    assert rate(result, RATE, "2023", None)["value"] == 50.0
    assert rate(result, EITHER, "2023", None)["value"] == 75.0
    # 2024: m1 born 2024-03-20 and on leave from 2024-04-05, same year: 1 / 1 → 100.
    fy2024 = rate(result, RATE, "2024", None)
    assert (fy2024["value"], fy2024["n"]) == (100.0, 1)
