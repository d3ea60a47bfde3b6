"""Security reports (16.1.2): tenant users report, operators investigate and resolve.

Service tokens are refused throughout. A report outside what the caller may see answers 404.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints

from jinji.db import BIGINT_MAX
from jinji.errors import Forbidden
from jinji.tokens import OperatorPrincipal, Principal
from jinji.web import service_router
from services.registry import SPECS
from services.tenant_admin import reports
from services.tenant_admin.context import ContextDep
from services.tenant_admin.routes_notices import (
    UserPrincipal,
    client_ip,
    is_operator,
    tenant_of,
)

router = service_router(SPECS["tenant_admin"])

Status = Literal["received", "investigating", "resolved"]


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"\S")]
    description: Annotated[str, StringConstraints(min_length=1, max_length=20_000, pattern=r"\S")]
    occurred_at: AwareDatetime | None = None


class TransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["investigating", "resolved"]
    note: Annotated[str, StringConstraints(min_length=1, max_length=10_000, pattern=r"\S")]


def _viewer(principal: Principal) -> reports.Viewer:
    if is_operator(principal):
        return reports.Viewer.staff(principal.subject)
    return reports.Viewer(
        operator=False,
        tenant_id=tenant_of(principal),
        user_id=principal.subject,
        tenant_admin="tenant_admin" in principal.roles,
    )


@router.post("/v1/security-reports", status_code=201, tags=["security reports"])
async def submit_report(
    body: ReportIn, principal: UserPrincipal, ctx: ContextDep, request: Request
) -> dict[str, Any]:
    try:
        reporter_id = uuid.UUID(principal.subject)
    except ValueError:
        raise Forbidden("Only signed-in users may do this.") from None
    return await reports.submit(
        ctx,
        tenant_id=tenant_of(principal),
        reporter_id=reporter_id,
        title=body.title,
        description=body.description,
        occurred_at=body.occurred_at,
        source_ip=client_ip(request),
    )


@router.get("/v1/security-reports", tags=["security reports"])
async def list_reports(
    principal: UserPrincipal,
    ctx: ContextDep,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
    offset: Annotated[int, Query(ge=0, le=BIGINT_MAX)] = 0,
) -> dict[str, Any]:
    async with ctx.db.transaction() as s:
        found, total = await reports.list_reports(
            s, _viewer(principal), status=status, limit=limit, offset=offset
        )
    return {"reports": found, "total": total}


@router.get("/v1/security-reports/{report_id}", tags=["security reports"])
async def get_report(
    report_id: uuid.UUID, principal: UserPrincipal, ctx: ContextDep
) -> dict[str, Any]:
    async with ctx.db.transaction() as s:
        return await reports.get_report(s, _viewer(principal), report_id)


@router.post("/v1/security-reports/{report_id}/transitions", tags=["security reports"])
async def transition_report(
    report_id: uuid.UUID,
    body: TransitionIn,
    principal: OperatorPrincipal,
    ctx: ContextDep,
    request: Request,
) -> dict[str, Any]:
    return await reports.transition(
        ctx,
        report_id=report_id,
        status=body.status,
        note=body.note,
        actor=principal.subject,
        source_ip=client_ip(request),
    )
