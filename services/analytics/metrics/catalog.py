"""What each metric is: its key, unit, the periods it is computed for, its breakdowns.

The definitions follow "Metric definitions" in DATA_FORMATS.md; ``definition`` repeats each in
one line, with the choices made where the reference is silent (see docs/analytics.md).
Every metric is computed per company and for the whole group (company null).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CATALOG",
    "DIMENSIONS",
    "METRICS",
    "Dimension",
    "Frequency",
    "Metric",
    "Rounding",
    "Source",
    "Unit",
]

Unit = Literal["people", "percent", "years", "hours"]
Frequency = Literal["monthly", "yearly"]  # period "YYYY-MM" / fiscal year "YYYY"
Source = Literal["employees", "payroll", "attendance", "childcare"]
Rounding = Literal["none", "half_up_1", "truncate_0"]
Dimension = Literal["department", "gender", "employment_type", "age_band", "job_grade"]

# Breakdown dimensions; age_band is "<30", "30-39", "40-49" or "50+" at the month end.
DIMENSIONS: tuple[Dimension, ...] = (
    "department",
    "gender",
    "employment_type",
    "age_band",
    "job_grade",
)
_ALL = DIMENSIONS
_NO_GENDER: tuple[Dimension, ...] = tuple(d for d in DIMENSIONS if d != "gender")
_NO_AGE: tuple[Dimension, ...] = tuple(d for d in DIMENSIONS if d != "age_band")


@dataclass(frozen=True)
class Metric:
    key: str
    unit: Unit
    frequencies: tuple[Frequency, ...]
    group_by: tuple[Dimension, ...]  # allowed breakdowns besides none
    source: Source
    rounding: Rounding
    definition: str


def _m(
    key: str,
    unit: Unit,
    frequencies: tuple[Frequency, ...],
    group_by: tuple[Dimension, ...],
    source: Source,
    rounding: Rounding,
    definition: str,
) -> Metric:
    return Metric(key, unit, frequencies, group_by, source, rounding, definition)


_MY: tuple[Frequency, ...] = ("monthly", "yearly")
_M: tuple[Frequency, ...] = ("monthly",)
_Y: tuple[Frequency, ...] = ("yearly",)

# fmt: off
METRICS: tuple[Metric, ...] = (
    _m("headcount", "people", _M, _ALL, "employees", "none",
       "rows of the month's snapshot with no exit_date or exit_date after the month's last day"),
    _m("hires", "people", _MY, _ALL, "employees", "none",
       "hire_date in the month (its snapshot); a year adds up its months that have a snapshot"),
    _m("exits", "people", _MY, _ALL, "employees", "none",
       "exit_date in the month (its snapshot); a year adds up its months that have a snapshot"),
    _m("voluntary_exits", "people", _MY, _ALL, "employees", "none",
       "exits with exit_reason voluntary"),
    _m("turnover_rate", "percent", _Y, _ALL, "employees", "half_up_1",
       "exits in the FY ÷ average month-end headcount over the FY's snapshot months × 100"),
    _m("voluntary_turnover_rate", "percent", _Y, _ALL, "employees", "half_up_1",
       "voluntary exits in the FY ÷ average month-end headcount over its snapshot months × 100"),
    _m("female_ratio", "percent", _M, _NO_GENDER, "employees", "half_up_1",
       "women ÷ headcount at the month end × 100"),
    _m("female_manager_ratio", "percent", _M, _NO_GENDER, "employees", "half_up_1",
       "women among managers ÷ managers at the month end × 100"),
    _m("manager_ratio", "percent", _M, _ALL, "employees", "half_up_1",
       "managers ÷ headcount at the month end × 100"),
    _m("average_age", "years", _M, _NO_AGE, "employees", "half_up_1",
       "mean of (month end − birth_date) days ÷ 365.25 over the headcount with a birth_date"),
    _m("average_tenure", "years", _M, _ALL, "employees", "half_up_1",
       "mean of (month end − hire_date) days ÷ 365.25 over the headcount"),
    _m("average_overtime_hours", "hours", _M, _ALL, "attendance", "half_up_1",
       "mean overtime_hours of the employees with an attendance row for the month"),
    _m("overtime_over_45h_ratio", "percent", _M, _ALL, "attendance", "half_up_1",
       "employees with overtime_hours > 45 ÷ employees with an attendance row × 100"),
    _m("overtime_over_80h_ratio", "percent", _M, _ALL, "attendance", "half_up_1",
       "employees with overtime_hours > 80 ÷ employees with an attendance row × 100"),
    _m("paid_leave_usage_rate", "percent", _Y, _ALL, "attendance", "half_up_1",
       "paid leave days taken ÷ days granted over the FY's attendance months × 100"),
    _m("gender_pay_gap", "percent", _Y, (), "payroll", "half_up_1",
       "mean annual_wage of women ÷ mean of men × 100, all workers"),
    _m("gender_pay_gap_regular", "percent", _Y, (), "payroll", "half_up_1",
       "mean annual_wage of women ÷ mean of men × 100, regular workers"),
    _m("gender_pay_gap_non_regular", "percent", _Y, (), "payroll", "half_up_1",
       "mean annual_wage of women ÷ mean of men × 100, non-regular workers"),
    _m("male_childcare_leave_rate", "percent", _Y, (), "childcare", "truncate_0",
       "(man, child) whose first childcare_leave started in the FY ÷ (man, child) born in the FY"),
    _m("male_childcare_leave_or_purpose_rate", "percent", _Y, (), "childcare", "truncate_0",
       "(man, child) whose first childcare_leave or first purpose leave started in the FY"
       " ÷ (man, child) born in the FY"),
)
# fmt: on

CATALOG: dict[str, Metric] = {metric.key: metric for metric in METRICS}
