"""The human-capital figures Japanese listed companies file (有価証券報告書), per group company
and for the group: female manager ratio (at the fiscal year's last month end), gender pay gap
(all, regular, non-regular workers) and the two male childcare leave rates, each with its
basis (numerator and denominator as the metric engine defines them).

Company figures are not suppressed (the law requires them); only tenant_admin and
group_viewer see them (see access).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from services.analytics.queries import fiscal_months

_PAY = {
    "all": "gender_pay_gap",
    "regular": "gender_pay_gap_regular",
    "non_regular": "gender_pay_gap_non_regular",
}
_CHILDCARE = ("male_childcare_leave_rate", "male_childcare_leave_or_purpose_rate")
COLUMNS = (
    "company_code",
    "female_manager_ratio",
    "gender_pay_gap_all",
    "gender_pay_gap_regular",
    "gender_pay_gap_non_regular",
    "male_childcare_leave_rate",
    "male_childcare_leave_or_purpose_rate",
)


def report(
    results: pl.DataFrame, fiscal_year: int, start: int, companies: list[str]
) -> dict[str, Any]:
    months = fiscal_months(fiscal_year, start)
    year_end = months[-1]
    totals = results.filter(
        pl.col("group_by").is_null(),
        pl.col("period").is_in([str(fiscal_year), year_end]),
    )
    cells: dict[tuple[str, str, str | None], dict[str, Any]] = {
        (row["metric"], row["period"], row["company"]): row for row in totals.iter_rows(named=True)
    }

    def figure(metric: str, period: str, company: str | None) -> tuple[Any, dict[str, Any]]:
        row = cells.get((metric, period, company))
        if row is None:
            return None, {"numerator": None, "denominator": None}
        return row["value"], {"numerator": row["numerator"], "denominator": row["denominator"]}

    def entry(company: str | None) -> dict[str, Any]:
        fy = str(fiscal_year)
        managers, managers_basis = figure("female_manager_ratio", year_end, company)
        pay: dict[str, Any] = {}
        pay_basis: dict[str, Any] = {}
        for name, metric in _PAY.items():
            pay[name], pay_basis[name] = figure(metric, fy, company)
        body: dict[str, Any] = {
            "female_manager_ratio": managers,
            "gender_pay_gap": pay,
        }
        basis: dict[str, Any] = {
            "female_manager_ratio": {**managers_basis, "as_of": year_end},
            "gender_pay_gap": pay_basis,
        }
        for metric in _CHILDCARE:
            body[metric], basis[metric] = figure(metric, fy, company)
        body["basis"] = basis
        return body

    return {
        "fiscal_year": fiscal_year,
        "period": {"start": months[0], "end": year_end},
        "companies": [{"company_code": code, **entry(code)} for code in companies],
        "consolidated": entry(None),
    }


def table(body: dict[str, Any]) -> list[list[Any]]:
    """The report as rows of :data:`COLUMNS` (the group last, company code 連結/consolidated)."""
    rows = []
    for item in [*body["companies"], {**body["consolidated"], "company_code": "consolidated"}]:
        pay = item["gender_pay_gap"]
        rows.append(
            [
                item["company_code"],
                item["female_manager_ratio"],
                pay["all"],
                pay["regular"],
                pay["non_regular"],
                item["male_childcare_leave_rate"],
                item["male_childcare_leave_or_purpose_rate"],
            ]
        )
    return rows
