"""Tenant administrators manage their own tenant's users (9.2.1, 9.2.2)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Query, Request, Response
from pydantic import BaseModel, Field

from jinji.db import BIGINT_MAX
from jinji.tokens import Principal, require_roles
from jinji.web import service_router
from services.identity import users
from services.identity.context import IdentityDep
from services.identity.routes_auth import client_ip
from services.registry import SPECS

router = service_router(SPECS["identity"])
TenantAdmin = Annotated[Principal, Depends(require_roles("tenant_admin"))]

Username = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._@-]+$")]
CompanyCode = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]
Role = Annotated[str, Field(min_length=1, max_length=32)]


class UserIn(BaseModel):
    username: Username
    roles: list[Role] = Field(min_length=1, max_length=4)
    companies: list[CompanyCode] = Field(default_factory=list, max_length=500)


class UserPatch(BaseModel):
    roles: list[Role] | None = Field(default=None, min_length=1, max_length=4)
    companies: list[CompanyCode] | None = Field(default=None, max_length=500)
    active: bool | None = None


def _tenant(principal: Principal) -> uuid.UUID:
    # Tenant admins act on their own tenant only: the tenant comes from the token, never
    # from the request.
    assert principal.tenant_id is not None
    return uuid.UUID(principal.tenant_id)


def _actor(principal: Principal) -> tuple[str, str | None]:
    return ("user", principal.subject)


@router.get("/v1/users", tags=["users"])
async def list_users(
    principal: TenantAdmin,
    ctx: IdentityDep,
    username: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=BIGINT_MAX)] = 0,
) -> dict[str, Any]:
    async with ctx.db.transaction() as s:
        rows, total = await users.list_users(
            s, _tenant(principal), username=username, limit=limit, offset=offset
        )
    return {"users": [users.describe(r) for r in rows], "total": total}


@router.post("/v1/users", status_code=201, tags=["users"])
async def create_user(
    body: UserIn, principal: TenantAdmin, ctx: IdentityDep, request: Request
) -> dict[str, Any]:
    new = await users.create_user(
        ctx,
        tenant_id=_tenant(principal),
        username=body.username,
        roles=body.roles,
        companies=body.companies,
        actor=_actor(principal),
        source_ip=client_ip(request),
    )
    return {
        "id": str(new.id),
        "username": new.username,
        "roles": new.roles,
        "companies": new.companies,
        "one_time_password": new.one_time_password,
    }


@router.get("/v1/users/{user_id}", tags=["users"])
async def get_user(user_id: uuid.UUID, principal: TenantAdmin, ctx: IdentityDep) -> dict[str, Any]:
    async with ctx.db.transaction() as s:
        return users.describe(await users.get_user(s, _tenant(principal), user_id))


@router.patch("/v1/users/{user_id}", tags=["users"])
async def patch_user(
    user_id: uuid.UUID, body: UserPatch, principal: TenantAdmin, ctx: IdentityDep, request: Request
) -> dict[str, Any]:
    return await users.update_user(
        ctx,
        tenant_id=_tenant(principal),
        user_id=user_id,
        roles=body.roles,
        companies=body.companies,
        active=body.active,
        actor=_actor(principal),
        source_ip=client_ip(request),
    )


@router.delete("/v1/users/{user_id}", status_code=204, tags=["users"])
async def delete_user(
    user_id: uuid.UUID, principal: TenantAdmin, ctx: IdentityDep, request: Request
) -> Response:
    await users.delete_user(
        ctx,
        tenant_id=_tenant(principal),
        user_id=user_id,
        actor=_actor(principal),
        source_ip=client_ip(request),
    )
    return Response(status_code=204)


@router.post("/v1/users/{user_id}/reset", tags=["users"])
async def reset_user(
    user_id: uuid.UUID, principal: TenantAdmin, ctx: IdentityDep, request: Request
) -> dict[str, str]:
    otp = await users.reset_user(
        ctx,
        tenant_id=_tenant(principal),
        user_id=user_id,
        actor=_actor(principal),
        source_ip=client_ip(request),
    )
    return {"id": str(user_id), "one_time_password": otp}
