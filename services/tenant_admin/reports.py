"""Security reports (16.1.2): a tenant's users tell us about a suspected security problem and
follow its handling.

A report moves received → investigating → resolved (or straight from received to resolved);
each operator transition carries a note. The reporter and their tenant's administrators see
the report and when its status changed; the notes are operator-internal. Another tenant's
report is "not found", never "forbidden", so its existence does not leak.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, insert, select, true, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from jinji.errors import ApiError
from services.tenant_admin import audit
from services.tenant_admin.context import TenantAdmin
from services.tenant_admin.tables import security_report_notes, security_reports, tenants

STATUSES = ("received", "investigating", "resolved")
TRANSITIONS: dict[str, frozenset[str]] = {
    "received": frozenset({"investigating", "resolved"}),
    "investigating": frozenset({"resolved"}),
    "resolved": frozenset(),
}
# Clocks differ a little; an occurred_at this far ahead of ours is still "now".
CLOCK_SKEW = timedelta(minutes=5)


class ReportNotFound(ApiError):
    def __init__(self) -> None:
        super().__init__(404, "not_found", "No such security report.")


class InvalidTransition(ApiError):
    def __init__(self, current: str, wanted: str) -> None:
        super().__init__(
            409,
            "invalid_transition",
            f"A report cannot go from {current} to {wanted}.",
            {"from": current, "to": wanted, "allowed": sorted(TRANSITIONS[current])},
        )


class OccurredInFuture(ApiError):
    def __init__(self) -> None:
        super().__init__(422, "occurred_in_future", "occurred_at cannot be in the future.")


class TenantNotFound(ApiError):
    def __init__(self) -> None:
        super().__init__(404, "tenant_not_found", "No such tenant.")


@dataclass(frozen=True)
class Viewer:
    """Who is looking: an operator (everything), a tenant administrator (their tenant's
    reports) or any other user (their own reports)."""

    operator: bool
    tenant_id: uuid.UUID | None
    user_id: str
    tenant_admin: bool = False

    @classmethod
    def staff(cls, user_id: str) -> Viewer:
        return cls(operator=True, tenant_id=None, user_id=user_id)

    def visible(self) -> ColumnElement[bool]:
        if self.operator:
            return true()
        if self.tenant_id is None:
            return false()
        same_tenant = security_reports.c.tenant_id == self.tenant_id
        if self.tenant_admin:
            return same_tenant
        try:
            reporter = uuid.UUID(self.user_id)
        except ValueError:
            return false()
        return and_(same_tenant, security_reports.c.reporter_id == reporter)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def summary(row: RowMapping) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "tenant_id": str(row["tenant_id"]),
        "reporter_id": str(row["reporter_id"]),
        "title": row["title"],
        "status": row["status"],
        "occurred_at": _iso(row["occurred_at"]),
        "created_at": _iso(row["created_at"]),
        "updated_at": _iso(row["updated_at"]),
    }


async def submit(
    ctx: TenantAdmin,
    *,
    tenant_id: uuid.UUID,
    reporter_id: uuid.UUID,
    title: str,
    description: str,
    occurred_at: datetime | None,
    source_ip: str | None,
) -> dict[str, Any]:
    if occurred_at is not None and occurred_at > ctx.now() + CLOCK_SKEW:
        raise OccurredInFuture()
    report_id = uuid.uuid4()
    async with ctx.db.transaction() as s:
        if await s.scalar(select(tenants.c.id).where(tenants.c.id == tenant_id)) is None:
            raise TenantNotFound()
        created_at = await s.scalar(
            insert(security_reports)
            .values(
                id=report_id,
                tenant_id=tenant_id,
                reporter_id=reporter_id,
                title=title,
                description=description,
                occurred_at=occurred_at,
                status="received",
            )
            .returning(security_reports.c.created_at)
        )
        # Ids only: a report's title and description may describe the weakness itself.
        await audit.record(
            s,
            "security_report.received",
            actor=("user", str(reporter_id)),
            tenant_id=tenant_id,
            target=("security_report", str(report_id)),
            source_ip=source_ip,
        )
    assert created_at is not None
    return {"id": str(report_id), "status": "received", "created_at": created_at.isoformat()}


async def list_reports(
    s: AsyncSession, viewer: Viewer, *, status: str | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    where = [viewer.visible()]
    if status is not None:
        where.append(security_reports.c.status == status)
    total = await s.scalar(select(func.count()).select_from(security_reports).where(*where))
    rows = (
        (
            await s.execute(
                select(security_reports)
                .where(*where)
                .order_by(security_reports.c.created_at.desc(), security_reports.c.id.desc())
                .limit(limit)
                .offset(offset)
            )
        )
        .mappings()
        .all()
    )
    return [summary(r) for r in rows], int(total or 0)


async def get_report(s: AsyncSession, viewer: Viewer, report_id: uuid.UUID) -> dict[str, Any]:
    row = (
        (
            await s.execute(
                select(security_reports).where(security_reports.c.id == report_id, viewer.visible())
            )
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise ReportNotFound()
    notes = (
        (
            await s.execute(
                select(security_report_notes)
                .where(security_report_notes.c.report_id == report_id)
                .order_by(security_report_notes.c.created_at, security_report_notes.c.id)
            )
        )
        .mappings()
        .all()
    )
    history: list[dict[str, Any]] = [{"status": "received", "at": _iso(row["created_at"])}]
    for note in notes:
        entry: dict[str, Any] = {"status": note["status"], "at": _iso(note["created_at"])}
        if viewer.operator:
            entry["note"] = note["note"]
            entry["author_id"] = note["author_id"]
        history.append(entry)
    return {**summary(row), "description": row["description"], "history": history}


async def transition(
    ctx: TenantAdmin,
    *,
    report_id: uuid.UUID,
    status: str,
    note: str,
    actor: str,
    source_ip: str | None,
) -> dict[str, Any]:
    async with ctx.db.transaction() as s:
        row = (
            await s.execute(
                select(security_reports.c.tenant_id, security_reports.c.status)
                .where(security_reports.c.id == report_id)
                .with_for_update()
            )
        ).one_or_none()
        if row is None:
            raise ReportNotFound()
        current = str(row.status)
        if status not in TRANSITIONS.get(current, frozenset()):
            raise InvalidTransition(current, status)
        await s.execute(
            update(security_reports)
            .where(security_reports.c.id == report_id)
            .values(status=status, updated_at=func.now())
        )
        await s.execute(
            insert(security_report_notes).values(
                id=uuid.uuid4(), report_id=report_id, author_id=actor, status=status, note=note
            )
        )
        await audit.record(
            s,
            "security_report.status_changed",
            actor=("operator", actor),
            tenant_id=row.tenant_id,
            target=("security_report", str(report_id)),
            source_ip=source_ip,
            details={"from": current, "to": status},
        )
        return await get_report(s, Viewer.staff(actor), report_id)
