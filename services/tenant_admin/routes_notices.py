"""Service notices (12.1.2, 16.1.1) and each tenant's notice webhook.

Operators publish notices; every signed-in user reads those addressed to their tenant. Tenant
administrators point their tenant's webhook at a URL of theirs to receive notices as signed
POSTs. Service tokens are refused throughout: these are people's endpoints.
"""

from __future__ import annotations

import ipaddress
import uuid
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from jinji.db import BIGINT_MAX
from jinji.errors import Forbidden
from jinji.tokens import (
    CurrentUser,
    OperatorPrincipal,
    Principal,
    require_operator,
    require_roles,
)
from jinji.web import service_router
from services.registry import SPECS
from services.tenant_admin import notices
from services.tenant_admin.context import ContextDep

router = service_router(SPECS["tenant_admin"])

_UNKNOWN_PEER = str(ipaddress.IPv4Address(0))


def client_ip(request: Request) -> str:
    host = request.client.host if request.client else ""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return _UNKNOWN_PEER


async def signed_in_user(caller: CurrentUser) -> Principal:
    """A person signed in to a tenant; operators only with their second factor."""
    if is_operator(caller):
        await require_operator(caller)
    return caller


UserPrincipal = Annotated[Principal, Depends(signed_in_user)]
TenantAdminPrincipal = Annotated[Principal, Depends(require_roles("tenant_admin"))]


def is_operator(principal: Principal) -> bool:
    return not principal.is_service and "operator" in principal.roles


def tenant_of(principal: Principal) -> uuid.UUID:
    # The tenant always comes from the token, never from the request.
    try:
        return uuid.UUID(str(principal.tenant_id))
    except ValueError:
        raise Forbidden("Only signed-in users may do this.") from None


Title = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"\S")]
Body = Annotated[str, StringConstraints(min_length=1, max_length=10_000, pattern=r"\S")]


class TitleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ja: Title
    en: Title


class BodyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ja: Body
    en: Body


class NoticeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["change", "maintenance", "incident"]
    severity: Literal["info", "warning", "critical"]
    title: TitleIn
    body: BodyIn
    starts_at: AwareDatetime
    ends_at: AwareDatetime | None = None
    tenants: Literal["all"] | Annotated[list[uuid.UUID], Field(min_length=1, max_length=1000)]


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=2000)
    secret: str = Field(min_length=16, max_length=256)


@router.post("/v1/notices", status_code=201, tags=["notices"])
async def publish_notice(
    body: NoticeIn, principal: OperatorPrincipal, ctx: ContextDep, request: Request
) -> dict[str, Any]:
    draft = notices.NoticeDraft(
        kind=body.kind,
        severity=body.severity,
        title_ja=body.title.ja,
        title_en=body.title.en,
        body_ja=body.body.ja,
        body_en=body.body.en,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        tenant_ids=None if body.tenants == "all" else list(dict.fromkeys(body.tenants)),
    )
    return await notices.publish(ctx, draft, actor=principal.subject, source_ip=client_ip(request))


@router.get("/v1/notices", tags=["notices"])
async def list_notices(
    principal: UserPrincipal,
    ctx: ContextDep,
    include_past: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
    offset: Annotated[int, Query(ge=0, le=BIGINT_MAX)] = 0,
) -> dict[str, Any]:
    operator = is_operator(principal)
    if include_past and not operator:
        raise Forbidden("Only operators may list ended notices.")
    async with ctx.db.transaction() as s:
        rows = await notices.list_notices(
            s,
            now=ctx.now(),
            tenant_id=None if operator else tenant_of(principal),
            include_past=include_past,
            limit=limit,
            offset=offset,
        )
    return {"notices": [notices.describe(r, operator=operator) for r in rows]}


@router.put("/v1/webhook", tags=["webhook"])
async def put_webhook(
    body: WebhookIn, principal: TenantAdminPrincipal, ctx: ContextDep, request: Request
) -> dict[str, Any]:
    return await notices.set_webhook(
        ctx,
        tenant_id=tenant_of(principal),
        url=body.url,
        secret=body.secret,
        actor=principal.subject,
        source_ip=client_ip(request),
    )


@router.get("/v1/webhook", tags=["webhook"])
async def get_webhook(principal: TenantAdminPrincipal, ctx: ContextDep) -> dict[str, Any]:
    return await notices.get_webhook(ctx, tenant_of(principal))


@router.delete("/v1/webhook", status_code=204, tags=["webhook"])
async def delete_webhook(
    principal: TenantAdminPrincipal, ctx: ContextDep, request: Request
) -> Response:
    await notices.delete_webhook(
        ctx, tenant_id=tenant_of(principal), actor=principal.subject, source_ip=client_ip(request)
    )
    return Response(status_code=204)
