"""Internal API for other services (service tokens with scope ``identity:tenants``), used by
tenant-admin to provision, configure, suspend and purge a tenant's identities."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Response
from pydantic import BaseModel, Field
from sqlalchemy import any_, delete, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from jinji.errors import ApiError
from jinji.tokens import Principal, require_scopes
from jinji.web import service_router
from services.identity import audit, sessions, users
from services.identity.context import IdentityDep
from services.identity.routes_users import Username
from services.identity.tables import scim_tokens, tenants
from services.identity.tables import users as users_table
from services.registry import SPECS

router = service_router(SPECS["identity"])
SCOPE = "identity:tenants"
Service = Annotated[Principal, Depends(require_scopes(SCOPE))]


class TenantPolicy(BaseModel):
    slug: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9][a-z0-9-]*$")
    seats: int = Field(ge=1, le=1_000_000)
    mfa_required: bool = True
    session_idle_s: int = Field(default=1800, ge=300, le=86_400)
    session_absolute_s: int = Field(default=43_200, ge=3600, le=7 * 86_400)


class FirstAdmin(BaseModel):
    username: Username


def _actor(principal: Principal) -> tuple[str, str | None]:
    return ("service", principal.client_id)


@router.put("/internal/v1/tenants/{tenant_id}", tags=["internal"])
async def put_tenant(
    tenant_id: uuid.UUID, body: TenantPolicy, principal: Service, ctx: IdentityDep
) -> dict[str, Any]:
    values = body.model_dump()
    async with ctx.db.transaction() as s:
        await s.execute(
            pg_insert(tenants)
            .values(id=tenant_id, status="active", **values)
            .on_conflict_do_update(
                index_elements=[tenants.c.id], set_={**values, "updated_at": func.now()}
            )
        )
        await audit.record(
            s,
            "tenant.policy_set",
            actor=_actor(principal),
            tenant_id=tenant_id,
            target=("tenant", str(tenant_id)),
            details={k: str(v) for k, v in values.items() if k != "slug"},
        )
    return {"id": str(tenant_id), **values}


@router.post("/internal/v1/tenants/{tenant_id}/admins", status_code=201, tags=["internal"])
async def first_admin(
    tenant_id: uuid.UUID, body: FirstAdmin, principal: Service, ctx: IdentityDep
) -> dict[str, Any]:
    """The tenant's first administrator (9.2.4), with a one-time password to hand over.

    Safe to call again for a provisioning that is being retried: while that administrator
    has never logged in, a new one-time password replaces the one that may have been lost.
    """
    try:
        new = await users.create_user(
            ctx,
            tenant_id=tenant_id,
            username=body.username,
            roles=["tenant_admin"],
            companies=[],
            actor=_actor(principal),
        )
    except users.UsernameTaken:
        async with ctx.db.transaction() as s:
            existing = (
                await s.execute(
                    select(users_table.c.id, users_table.c.must_change_password).where(
                        users_table.c.tenant_id == tenant_id,
                        users_table.c.username == users.normalise_username(body.username),
                    )
                )
            ).one()
        if not existing.must_change_password:
            raise
        otp = await users.reset_user(
            ctx, tenant_id=tenant_id, user_id=existing.id, actor=_actor(principal)
        )
        return {
            "id": str(existing.id),
            "username": users.normalise_username(body.username),
            "one_time_password": otp,
        }
    return {"id": str(new.id), "username": new.username, "one_time_password": new.one_time_password}


async def _set_status(
    ctx: IdentityDep, principal: Principal, tenant_id: uuid.UUID, status: str, action: str
) -> Response:
    async with ctx.db.transaction() as s:
        result = await s.execute(
            update(tenants).where(tenants.c.id == tenant_id).values(status=status)
        )
        if not getattr(result, "rowcount", 0):
            raise ApiError(404, "tenant_not_found", "No such tenant.")
        if status == "suspended":
            await sessions.revoke_all(
                s, reason="tenant_suspended", now=ctx.now(), tenant_id=tenant_id
            )
        await audit.record(
            s,
            action,
            actor=_actor(principal),
            tenant_id=tenant_id,
            target=("tenant", str(tenant_id)),
        )
    return Response(status_code=204)


@router.post("/internal/v1/tenants/{tenant_id}/suspend", status_code=204, tags=["internal"])
async def suspend(tenant_id: uuid.UUID, principal: Service, ctx: IdentityDep) -> Response:
    """Every login refused and every session ended at once."""
    return await _set_status(ctx, principal, tenant_id, "suspended", "tenant.suspended")


@router.post("/internal/v1/tenants/{tenant_id}/resume", status_code=204, tags=["internal"])
async def resume(tenant_id: uuid.UUID, principal: Service, ctx: IdentityDep) -> Response:
    return await _set_status(ctx, principal, tenant_id, "active", "tenant.resumed")


@router.get("/internal/v1/tenants/{tenant_id}/users/summary", tags=["internal"])
async def users_summary(
    tenant_id: uuid.UUID, principal: Service, ctx: IdentityDep
) -> dict[str, Any]:
    """Counts for seat use and the tenant's asset inventory (no names)."""
    async with ctx.db.transaction() as s:
        rows = await s.execute(
            select(users_table.c.status, func.count())
            .where(users_table.c.tenant_id == tenant_id)
            .group_by(users_table.c.status)
        )
        counts = {status: int(n) for status, n in rows}
    return {
        "tenant_id": str(tenant_id),
        "active": counts.get("active", 0),
        "disabled": counts.get("disabled", 0),
        "total": sum(counts.values()),
    }


@router.get("/internal/v1/tenants/{tenant_id}/admins", tags=["internal"])
async def list_admins(tenant_id: uuid.UUID, principal: Service, ctx: IdentityDep) -> dict[str, Any]:
    """The tenant's administrators (ids and usernames), for the operator's tenant view."""
    async with ctx.db.transaction() as s:
        rows = await s.execute(
            select(users_table.c.id, users_table.c.username, users_table.c.status)
            .where(
                users_table.c.tenant_id == tenant_id,
                literal("tenant_admin") == any_(users_table.c.roles),
            )
            .order_by(users_table.c.username)
        )
        return {
            "admins": [{"id": str(i), "username": u, "active": st == "active"} for i, u, st in rows]
        }


@router.delete("/internal/v1/tenants/{tenant_id}", status_code=204, tags=["internal"])
async def purge(tenant_id: uuid.UUID, principal: Service, ctx: IdentityDep) -> Response:
    """Remove every identity of a terminated tenant (CLD8.1.5); idempotent."""
    async with ctx.db.transaction() as s:
        if await s.scalar(select(tenants.c.slug).where(tenants.c.id == tenant_id)) == "platform":
            raise ApiError(409, "platform_tenant", "The platform tenant cannot be purged.")
        removed = await s.execute(delete(users_table).where(users_table.c.tenant_id == tenant_id))
        await s.execute(delete(scim_tokens).where(scim_tokens.c.tenant_id == tenant_id))
        await s.execute(delete(tenants).where(tenants.c.id == tenant_id))
        await audit.record(
            s,
            "tenant.identities_purged",
            actor=_actor(principal),
            tenant_id=tenant_id,
            target=("tenant", str(tenant_id)),
            details={"users_removed": int(getattr(removed, "rowcount", 0))},
        )
    return Response(status_code=204)
