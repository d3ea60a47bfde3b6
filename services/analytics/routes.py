"""Metrics, dashboards, dashboard access rules and the disclosure report (prefix /analytics)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

import polars as pl
from fastapi import Depends, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from jinji.errors import ApiError, Forbidden
from jinji.tenant_tables import dashboard_access
from jinji.tokens import Principal, require_roles
from jinji.web import file_responses, service_router
from services.analytics import access, audit, disclosure, exporting, queries
from services.analytics.access import Rule, Scope
from services.analytics.context import Analytics, ContextDep
from services.analytics.dashboards import DASHBOARDS, Dashboard, Widget
from services.analytics.metrics.periods import fiscal_year_of_month
from services.analytics.rendered import Entry
from services.analytics.results import VersionRef, current_versions, fingerprint
from services.analytics.tenant_settings import TenantSettings
from services.registry import SPECS as SERVICES

router = service_router(SERVICES["analytics"])
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Member = Annotated[Principal, Depends(require_roles(*access.TENANT_ROLES))]
Admin = Annotated[Principal, Depends(require_roles("tenant_admin"))]
FiscalYear = Annotated[int | None, Query(ge=1900, le=2100)]
Company = Annotated[str | None, Query(min_length=1, max_length=50)]
ExportFormat = Literal["csv", "xlsx"]
EXPORT_COLUMNS = ["widget", "metric", "period", "company", "group_by", "group", "value", "n"]


async def _audit(
    ctx: Analytics, principal: Principal, action: str, target: tuple[str, str], **details: Any
) -> None:
    async with ctx.db.transaction() as s:
        await audit.record(
            s,
            action,
            actor=("user", principal.subject),
            tenant_id=access.tenant_of(principal),
            target=target,
            details=details,
        )


def _company(scope: Scope, settings: TenantSettings, company: str | None) -> str | None:
    if company is not None and (
        company not in settings.companies or not scope.may_see_company(company)
    ):
        raise ApiError(404, "company_not_found", "No such company.", {"company": company})
    return company


def _latest_fiscal_year(shown: queries.Shown, start: int) -> int:
    if shown.latest_month is None:
        today = dt.date.today()
        return int(fiscal_year_of_month(f"{today.year:04d}-{today.month:02d}", start))
    return int(fiscal_year_of_month(shown.latest_month, start))


# --- metrics ------------------------------------------------------------------------------


@router.get("/v1/metrics/{metric}", tags=["metrics"])
async def metric_series(
    metric: str,
    principal: Member,
    ctx: ContextDep,
    from_: Annotated[str | None, Query(alias="from", max_length=7)] = None,
    to: Annotated[str | None, Query(max_length=7)] = None,
    fiscal_year: FiscalYear = None,
    company: Company = None,
    group_by: Annotated[str | None, Query(max_length=30)] = None,
) -> dict[str, Any]:
    found = queries.metric_of(metric)
    scope = access.scope_of(principal)
    if found.key in access.PAY_METRICS and not scope.pay:
        raise Forbidden("Pay figures are for tenant_admin and group_viewer.")
    queries.check_group_by(found, group_by)
    tenant_id = access.tenant_of(principal)
    settings = await ctx.tenants.get(tenant_id)
    if fiscal_year is not None:
        if from_ is not None or to is not None:
            raise ApiError(422, "invalid_range", "Give fiscal_year or from/to, not both.")
        periods = (
            [str(fiscal_year)]
            if "yearly" in found.frequencies
            else queries.fiscal_months(fiscal_year, settings.fiscal_year_start)
        )
    elif from_ is not None and to is not None:
        if "monthly" not in found.frequencies:
            raise ApiError(422, "yearly_metric", "This metric is per fiscal year: use fiscal_year.")
        periods = queries.month_range(from_, to)
    else:
        raise ApiError(422, "period_required", "Give from and to (YYYY-MM) or fiscal_year.")
    query = queries.Query(found, periods, _company(scope, settings, company), group_by)
    shown = await ctx.results.shown(tenant_id, settings)
    return {
        "metric": found.key,
        "unit": found.unit,
        "series": queries.series(queries.select(shown, query, scope)),
    }


# --- dashboards ---------------------------------------------------------------------------


async def _rules_in(session: AsyncSession) -> dict[str, Rule]:
    """Every dashboard's rule (inside the tenant's transaction): set by an admin, or default."""
    rows = await session.execute(
        select(dashboard_access.c.dashboard, dashboard_access.c.roles, dashboard_access.c.users)
    )
    custom = {r.dashboard: Rule(tuple(r.roles), tuple(r.users), custom=True) for r in rows}
    return {
        key: custom.get(key, Rule(board.default_roles, (), custom=False))
        for key, board in DASHBOARDS.items()
    }


async def _rules(ctx: Analytics, tenant_id: uuid.UUID) -> dict[str, Rule]:
    async with ctx.db.tenant_transaction(tenant_id) as tx:
        return await _rules_in(tx.session)


def _board(key: str) -> Dashboard:
    board = DASHBOARDS.get(key)
    if board is None:
        raise ApiError(404, "dashboard_not_found", "No such dashboard.", {"dashboard": key})
    return board


def _refuse_unless_visible(rules: dict[str, Rule], principal: Principal, board: Dashboard) -> None:
    if not access.may_view(rules[board.key], principal, needs_pay=board.pay):
        # Looks like a missing dashboard: who may see what is not the caller's business.
        raise ApiError(404, "dashboard_not_found", "No such dashboard.", {"dashboard": board.key})


async def _visible_board(ctx: Analytics, principal: Principal, key: str) -> Dashboard:
    board = _board(key)
    _refuse_unless_visible(await _rules(ctx, access.tenant_of(principal)), principal, board)
    return board


async def _open_dashboard(
    ctx: Analytics, principal: Principal, key: str, action: str, **details: Any
) -> tuple[Dashboard, list[VersionRef]]:
    """One short transaction per read: the dashboard's rule, the tenant's current dataset
    versions (what the figures must be computed from), and the audit event of the access."""
    board = _board(key)
    tenant_id = access.tenant_of(principal)
    async with ctx.db.tenant_transaction(tenant_id) as tx:
        _refuse_unless_visible(await _rules_in(tx.session), principal, board)
        refs = await current_versions(tx.session)

        async def record(session: AsyncSession) -> None:
            await audit.record(
                session,
                action,
                actor=("user", principal.subject),
                tenant_id=tenant_id,
                target=("dashboard", key),
                details=details,
            )

        tx.platform_writes.append(record)
    return board, refs


def _title(ja: str, en: str) -> dict[str, str]:
    return {"ja": ja, "en": en}


@router.get("/v1/dashboards", tags=["dashboards"])
async def list_dashboards(principal: Member, ctx: ContextDep) -> dict[str, Any]:
    rules = await _rules(ctx, access.tenant_of(principal))
    return {
        "dashboards": [
            {"key": board.key, "title": _title(board.title_ja, board.title_en)}
            for board in DASHBOARDS.values()
            if access.may_view(rules[board.key], principal, needs_pay=board.pay)
        ]
    }


def _widget_periods(
    widget: Widget, shown: queries.Shown, months: list[str], year: int
) -> list[str]:
    if widget.span == "months":
        return months
    if widget.span == "year":
        return [str(year)]
    if widget.span == "year_end":
        return [months[-1]]
    present = (
        shown.metric(widget.metric).filter(pl.col("period").is_in(months)).get_column("period")
    )
    return [] if present.is_empty() else [str(present.max())]


async def _dashboard_data(
    ctx: Analytics,
    principal: Principal,
    board: Dashboard,
    refs: list[VersionRef],
    fiscal_year: int | None,
    company: str | None,
) -> Entry:
    tenant_id = access.tenant_of(principal)
    scope = access.scope_of(principal)
    settings = await ctx.tenants.get(tenant_id)
    company = _company(scope, settings, company)
    view = (
        tenant_id,
        fingerprint(refs, settings.fiscal_year_start),
        settings.min_group_size,
        board.key,
        fiscal_year,
        company,
        scope,
    )
    cached = ctx.rendered.get(view)
    if cached is not None:
        return cached
    shown = await ctx.results.shown_for(tenant_id, refs, settings)
    year = fiscal_year or _latest_fiscal_year(shown, settings.fiscal_year_start)
    months = queries.fiscal_months(year, settings.fiscal_year_start)
    widgets = []
    for widget in board.widgets:
        if widget.pay and not scope.pay:
            continue
        metric = queries.metric_of(widget.metric)
        periods = _widget_periods(widget, shown, months, year)
        query = queries.Query(metric, periods, company, widget.group_by)
        widgets.append(
            {
                "key": widget.key,
                "title": _title(widget.title_ja, widget.title_en),
                "metric": metric.key,
                "unit": metric.unit,
                "chart": widget.chart,
                "group_by": widget.group_by,
                "series": queries.series(queries.select(shown, query, scope)),
            }
        )
    body = {
        "key": board.key,
        "title": _title(board.title_ja, board.title_en),
        "fiscal_year": year,
        "period": {"start": months[0], "end": months[-1]},
        "company": company,
        "widgets": widgets,
    }
    return ctx.rendered.put(view, body)


@router.get("/v1/dashboards/{key}", tags=["dashboards"])
async def get_dashboard(
    key: str,
    principal: Member,
    ctx: ContextDep,
    fiscal_year: FiscalYear = None,
    company: Company = None,
) -> Response:
    board, refs = await _open_dashboard(
        ctx, principal, key, "dashboard.viewed", fiscal_year=fiscal_year
    )
    entry = await _dashboard_data(ctx, principal, board, refs, fiscal_year, company)
    return Response(entry.json, media_type="application/json")


@router.get(
    "/v1/dashboards/{key}/export",
    tags=["dashboards"],
    response_class=Response,
    responses=file_responses("text/csv", XLSX),
)
async def export_dashboard(
    key: str,
    principal: Member,
    ctx: ContextDep,
    format: ExportFormat = "csv",
    fiscal_year: FiscalYear = None,
    company: Company = None,
) -> Response:
    board, refs = await _open_dashboard(
        ctx, principal, key, "dashboard.exported", fiscal_year=fiscal_year, format=format
    )
    body = (await _dashboard_data(ctx, principal, board, refs, fiscal_year, company)).body
    rows = [
        [
            widget["key"],
            widget["metric"],
            cell["period"],
            cell["company"] if cell["company"] is not None else "consolidated",
            widget["group_by"],
            cell["group"],
            cell["value"],
            cell["n"],
        ]
        for widget in body["widgets"]
        for cell in widget["series"]
    ]
    return _download(f"{key}-{body['fiscal_year']}", format, EXPORT_COLUMNS, rows)


def _download(
    name: str, format: ExportFormat, header: list[str], rows: list[list[Any]]
) -> Response:
    if format == "csv":
        content = exporting.to_csv(header, rows)
        media = "text/csv; charset=utf-8"
    else:
        content = exporting.to_xlsx(header, rows, name)
        media = XLSX
    return Response(
        content,
        media_type=media,
        headers={"Content-Disposition": exporting.content_disposition(f"{name}.{format}")},
    )


# --- access rules -------------------------------------------------------------------------


class AccessIn(BaseModel):
    roles: list[Literal["tenant_admin", "group_viewer", "viewer", "data_updater"]] = Field(
        max_length=4
    )
    users: list[uuid.UUID] = Field(max_length=1000)


@router.get("/v1/dashboards/{key}/access", tags=["access rules"])
async def get_access(key: str, principal: Admin, ctx: ContextDep) -> dict[str, Any]:
    _board(key)
    rule = (await _rules(ctx, access.tenant_of(principal)))[key]
    return {"dashboard": key, **rule.as_dict()}


@router.put("/v1/dashboards/{key}/access", tags=["access rules"])
async def put_access(key: str, body: AccessIn, principal: Admin, ctx: ContextDep) -> dict[str, Any]:
    board = _board(key)
    roles = sorted(set(body.roles))
    users = sorted(set(body.users))
    if board.pay and not set(roles) <= access.PAY_ROLES:
        raise ApiError(
            422,
            "pay_figures_restricted",
            "This dashboard shows pay figures: only tenant_admin and group_viewer may see it.",
            {"allowed_roles": sorted(access.PAY_ROLES)},
        )
    tenant_id = access.tenant_of(principal)
    async with ctx.db.tenant_transaction(tenant_id) as tx:
        values = {
            "roles": roles,
            "users": users,
            "updated_by": uuid.UUID(principal.subject),
            "updated_at": dt.datetime.now(dt.UTC),
        }
        await tx.session.execute(
            pg_insert(dashboard_access)
            .values(dashboard=key, **values)
            .on_conflict_do_update(index_elements=["dashboard"], set_=values)
        )

        async def record(session: Any) -> None:
            await audit.record(
                session,
                "dashboard_access.changed",
                actor=("user", principal.subject),
                tenant_id=tenant_id,
                target=("dashboard", key),
                details={"roles": " ".join(roles), "users": len(users)},
            )

        tx.platform_writes.append(record)
    return {"dashboard": key, **Rule(tuple(roles), tuple(users), custom=True).as_dict()}


@router.delete("/v1/dashboards/{key}/access", tags=["access rules"])
async def reset_access(key: str, principal: Admin, ctx: ContextDep) -> dict[str, Any]:
    """Back to the dashboard's default rule."""
    board = _board(key)
    tenant_id = access.tenant_of(principal)
    async with ctx.db.tenant_transaction(tenant_id) as tx:
        await tx.session.execute(
            delete(dashboard_access).where(dashboard_access.c.dashboard == key)
        )

        async def record(session: Any) -> None:
            await audit.record(
                session,
                "dashboard_access.reset",
                actor=("user", principal.subject),
                tenant_id=tenant_id,
                target=("dashboard", key),
            )

        tx.platform_writes.append(record)
    return {"dashboard": key, **Rule(board.default_roles, (), custom=False).as_dict()}


# --- disclosure ---------------------------------------------------------------------------


@router.get(
    "/v1/disclosures/{fiscal_year}",
    tags=["disclosure"],
    response_model=None,
    responses=file_responses("text/csv", XLSX),  # besides JSON (format=json, the default)
)
async def get_disclosure(
    fiscal_year: int,
    principal: Member,
    ctx: ContextDep,
    format: Literal["json", "csv", "xlsx"] = "json",
) -> dict[str, Any] | Response:
    if not 1900 <= fiscal_year <= 2100:
        raise ApiError(422, "invalid_fiscal_year", "fiscal_year must be 1900..2100.")
    scope = access.scope_of(principal)
    if not scope.pay:
        raise Forbidden("The disclosure report is for tenant_admin and group_viewer.")
    board = await _visible_board(ctx, principal, "disclosure")
    tenant_id = access.tenant_of(principal)
    settings = await ctx.tenants.get(tenant_id)
    raw = await ctx.results.current(tenant_id, settings.fiscal_year_start)
    body = disclosure.report(raw, fiscal_year, settings.fiscal_year_start, list(settings.companies))
    action = "disclosure.viewed" if format == "json" else "disclosure.exported"
    await _audit(ctx, principal, action, ("dashboard", board.key), fiscal_year=fiscal_year)
    if format == "json":
        return body
    return _download(
        f"disclosure-{fiscal_year}", format, list(disclosure.COLUMNS), disclosure.table(body)
    )
