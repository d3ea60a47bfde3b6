"""The dashboards, as data: each widget is a metric query over the chosen fiscal year.

A widget's ``span`` says which periods of the fiscal year it shows: ``months`` (each month of
the year, a trend), ``latest`` (the year's latest month with data, for breakdowns), ``year``
(the fiscal year itself, for yearly metrics) or ``year_end`` (the year's last month, as the
law takes the female manager ratio).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from services.analytics.access import PAY_METRICS, PAY_ROLES, TENANT_ROLES

Span = Literal["months", "latest", "year", "year_end"]
Chart = Literal["line", "bar", "number", "table"]


@dataclass(frozen=True)
class Widget:
    key: str
    metric: str
    span: Span
    chart: Chart
    title_ja: str
    title_en: str
    group_by: str | None = None

    @property
    def pay(self) -> bool:
        return self.metric in PAY_METRICS


@dataclass(frozen=True)
class Dashboard:
    key: str
    title_ja: str
    title_en: str
    widgets: tuple[Widget, ...]
    default_roles: tuple[str, ...]
    pay: bool = False  # the whole dashboard is pay/disclosure figures


def _w(
    key: str,
    metric: str,
    span: Span,
    chart: Chart,
    ja: str,
    en: str,
    group_by: str | None = None,
) -> Widget:
    return Widget(key, metric, span, chart, ja, en, group_by)


# fmt: off
DASHBOARDS: dict[str, Dashboard] = {d.key: d for d in (
    Dashboard("overview", "概要", "Overview", (
        _w("headcount", "headcount", "months", "line", "従業員数の推移", "Headcount"),
        _w("hires", "hires", "months", "bar", "入社者数", "Hires"),
        _w("exits", "exits", "months", "bar", "退職者数", "Exits"),
        _w("turnover_rate", "turnover_rate", "year", "number", "離職率", "Turnover rate"),
        _w("female_ratio", "female_ratio", "months", "line", "女性比率", "Female ratio"),
        _w("average_age", "average_age", "latest", "number", "平均年齢", "Average age"),
        _w("average_overtime", "average_overtime_hours", "months", "line",
           "平均時間外労働時間", "Average overtime hours"),
    ), TENANT_ROLES),
    Dashboard("workforce", "人員構成", "Workforce", (
        _w("headcount", "headcount", "months", "line", "従業員数の推移", "Headcount"),
        _w("by_department", "headcount", "latest", "bar", "部署別従業員数",
           "Headcount by department", "department"),
        _w("by_employment_type", "headcount", "latest", "bar", "雇用形態別従業員数",
           "Headcount by employment type", "employment_type"),
        _w("by_age_band", "headcount", "latest", "bar", "年齢層別従業員数",
           "Headcount by age band", "age_band"),
        _w("by_job_grade", "headcount", "latest", "bar", "等級別従業員数",
           "Headcount by job grade", "job_grade"),
        _w("average_tenure", "average_tenure", "months", "line", "平均勤続年数",
           "Average tenure"),
        _w("manager_ratio", "manager_ratio", "months", "line", "管理職比率", "Manager ratio"),
    ), TENANT_ROLES),
    Dashboard("diversity", "ダイバーシティ", "Diversity", (
        _w("female_ratio", "female_ratio", "months", "line", "女性比率", "Female ratio"),
        _w("female_manager_ratio", "female_manager_ratio", "months", "line",
           "女性管理職比率", "Female manager ratio"),
        _w("female_ratio_by_department", "female_ratio", "latest", "bar",
           "部署別女性比率", "Female ratio by department", "department"),
        _w("female_ratio_by_employment_type", "female_ratio", "latest", "bar",
           "雇用形態別女性比率", "Female ratio by employment type", "employment_type"),
        _w("gender_pay_gap", "gender_pay_gap", "year", "number",
           "男女の賃金の差異", "Gender pay gap"),
        _w("male_childcare_leave_rate", "male_childcare_leave_rate", "year", "number",
           "男性の育児休業等取得率", "Male childcare leave rate"),
    ), TENANT_ROLES),
    Dashboard("turnover", "離職", "Turnover", (
        _w("turnover_rate", "turnover_rate", "year", "number", "離職率", "Turnover rate"),
        _w("voluntary_turnover_rate", "voluntary_turnover_rate", "year", "number",
           "自己都合離職率", "Voluntary turnover rate"),
        _w("exits", "exits", "months", "bar", "退職者数", "Exits"),
        _w("voluntary_exits", "voluntary_exits", "months", "bar", "自己都合退職者数",
           "Voluntary exits"),
        _w("turnover_by_department", "turnover_rate", "year", "bar", "部署別離職率",
           "Turnover rate by department", "department"),
        _w("turnover_by_age_band", "turnover_rate", "year", "bar", "年齢層別離職率",
           "Turnover rate by age band", "age_band"),
    ), TENANT_ROLES),
    Dashboard("working_hours", "労働時間", "Working hours", (
        _w("average_overtime", "average_overtime_hours", "months", "line",
           "平均時間外労働時間", "Average overtime hours"),
        _w("over_45h", "overtime_over_45h_ratio", "months", "line", "月45時間超の割合",
           "Share over 45 h"),
        _w("over_80h", "overtime_over_80h_ratio", "months", "line", "月80時間超の割合",
           "Share over 80 h"),
        _w("paid_leave_usage", "paid_leave_usage_rate", "year", "number", "有給休暇取得率",
           "Paid leave usage rate"),
        _w("overtime_by_department", "average_overtime_hours", "latest", "bar",
           "部署別平均時間外労働時間", "Average overtime by department", "department"),
    ), TENANT_ROLES),
    Dashboard("disclosure", "人的資本開示", "Disclosure", (
        _w("female_manager_ratio", "female_manager_ratio", "year_end", "table",
           "女性管理職比率", "Female manager ratio"),
        _w("gender_pay_gap", "gender_pay_gap", "year", "table", "男女の賃金の差異（全労働者）",
           "Gender pay gap (all workers)"),
        _w("gender_pay_gap_regular", "gender_pay_gap_regular", "year", "table",
           "男女の賃金の差異（正規雇用）", "Gender pay gap (regular)"),
        _w("gender_pay_gap_non_regular", "gender_pay_gap_non_regular", "year", "table",
           "男女の賃金の差異（非正規雇用）", "Gender pay gap (non-regular)"),
        _w("male_childcare_leave_rate", "male_childcare_leave_rate", "year", "table",
           "男性の育児休業等取得率", "Male childcare leave rate"),
        _w("male_childcare_leave_or_purpose_rate", "male_childcare_leave_or_purpose_rate",
           "year", "table", "男性の育児休業等と育児目的休暇の取得率",
           "Male childcare leave or purpose leave rate"),
    ), tuple(sorted(PAY_ROLES)), pay=True),
)}
# fmt: on
