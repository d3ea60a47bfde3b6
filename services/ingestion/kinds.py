"""The four dataset kinds customers upload: their columns (English names and Japanese
aliases), value types, required columns, unique keys and how a file maps to periods.
Definitions follow DATA_FORMATS.md exactly."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Literal

Kind = Literal["employees", "payroll", "attendance", "childcare"]


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # a key of services.ingestion.values.PARSERS
    required: bool
    aliases: tuple[str, ...] = ()
    ja: str = ""  # the header of the Japanese template


@dataclass(frozen=True)
class KindSpec:
    kind: Kind
    columns: tuple[Column, ...]
    unique: tuple[str, ...]  # columns whose combination is unique in a file

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def _c(name: str, type_: str, required: bool, *aliases: str) -> Column:
    return Column(name, type_, required, aliases, aliases[0] if aliases else name)


SPECS: dict[Kind, KindSpec] = {
    "employees": KindSpec(
        "employees",
        (
            _c("employee_id", "text", True, "社員番号", "従業員番号"),
            _c("company_code", "text", True, "会社コード"),
            _c("department", "text", False, "部署", "所属"),
            _c("gender", "gender", True, "性別"),
            _c("birth_date", "date", False, "生年月日"),
            _c("hire_date", "date", True, "入社日"),
            _c("exit_date", "date", False, "退職日"),
            _c("exit_reason", "exit_reason", False, "退職理由"),
            _c("employment_type", "employment_type", True, "雇用形態"),
            _c("is_manager", "bool", True, "管理職"),
            _c("job_grade", "text", False, "等級", "職位"),
        ),
        ("employee_id",),
    ),
    "payroll": KindSpec(
        "payroll",
        (
            _c("employee_id", "text", True, "社員番号"),
            _c("company_code", "text", True, "会社コード"),
            _c("fiscal_year", "int", True, "年度"),
            _c("gender", "gender", True, "性別"),
            _c("employment_type", "employment_type", True, "雇用形態"),
            _c("annual_wage", "int", True, "年間賃金", "年収"),
        ),
        ("employee_id", "fiscal_year"),
    ),
    "attendance": KindSpec(
        "attendance",
        (
            _c("employee_id", "text", True, "社員番号"),
            _c("month", "month", True, "年月"),
            _c("overtime_hours", "decimal", True, "時間外労働時間", "残業時間"),
            _c("paid_leave_granted_days", "decimal", False, "有給付与日数"),
            _c("paid_leave_taken_days", "decimal", False, "有給取得日数"),
        ),
        ("employee_id", "month"),
    ),
    "childcare": KindSpec(
        "childcare",
        (
            _c("employee_id", "text", True, "社員番号"),
            _c("company_code", "text", True, "会社コード"),
            _c("gender", "gender", True, "性別"),
            _c("child_birth_date", "date", True, "出生日", "子の生年月日"),
            _c("leave_type", "leave_type", False, "休業種別"),
            _c("leave_start_date", "date", False, "休業開始日"),
        ),
        # Several rows may describe one child; only a fully identical row twice is an error.
        (
            "employee_id",
            "company_code",
            "gender",
            "child_birth_date",
            "leave_type",
            "leave_start_date",
        ),
    ),
}


def header_key(header: str) -> str:
    """Headers match case-insensitively, ignoring surrounding spaces and full/half width."""
    return unicodedata.normalize("NFKC", header).strip().casefold()


def header_index(spec: KindSpec) -> dict[str, str]:
    """Every accepted header spelling → the column's English name."""
    index: dict[str, str] = {}
    for column in spec.columns:
        for spelling in (column.name, *column.aliases):
            index[header_key(spelling)] = column.name
    return index
