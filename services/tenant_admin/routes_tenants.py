"""Tenants: create (operators), view, configure, inventory, terminate, deletion certificate."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Query
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import func, insert, select, text, update

from jinji.db import BIGINT_MAX
from jinji.errors import ApiError, Forbidden
from jinji.tenancy import PLATFORM_TENANT_SLUG
from jinji.tokens import CurrentUser, OperatorPrincipal, Principal, require_roles, require_user
from jinji.web import service_router
from services.registry import SPECS
from services.tenant_admin import assets, audit, certificates, identity_api, lifecycle
from services.tenant_admin.context import ContextDep, TenantAdmin
from services.tenant_admin.provisioning import Company, TenantRequest, provision
from services.tenant_admin.tables import companies, deletion_certificates, tenants

router = service_router(SPECS["tenant_admin"])
# The routes below narrow these to the caller's own tenant (operators: any customer tenant).
AdminOrOperator = Annotated[Principal, Depends(require_roles("tenant_admin", "operator"))]
# Other services read a tenant's settings and companies with scope tenants:read.
UserOrReader = Annotated[Principal, Depends(require_user(or_scopes=("tenants:read",)))]

Slug = Annotated[str, Field(min_length=2, max_length=63, pattern=r"^[a-z0-9][a-z0-9-]*$")]
CompanyCode = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]


class CompanyIn(BaseModel):
    code: CompanyCode
    name: str = Field(min_length=1, max_length=200)


class TenantIn(BaseModel):
    slug: Slug
    name: str = Field(min_length=1, max_length=200)
    seats: int = Field(ge=1, le=1_000_000)
    companies: list[CompanyIn] = Field(min_length=1, max_length=500)
    fiscal_year_start_month: int = Field(default=4, ge=1, le=12)
    min_group_size: int = Field(default=5, ge=3, le=1000)
    mfa_required: bool = True
    # 6.1.3: customer data is stored only in Japan.
    data_region: Literal["jp"] = "jp"

    @field_validator("slug")
    @classmethod
    def not_reserved(cls, slug: str) -> str:
        if slug == PLATFORM_TENANT_SLUG:
            raise ValueError("this slug is reserved")
        return slug

    @field_validator("companies")
    @classmethod
    def unique_codes(cls, value: list[CompanyIn]) -> list[CompanyIn]:
        if len({c.code for c in value}) != len(value):
            raise ValueError("company codes must be unique")
        return value


class TenantPatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    seats: int | None = Field(default=None, ge=1, le=1_000_000)
    companies: list[CompanyIn] | None = Field(default=None, min_length=1, max_length=500)
    mfa_required: bool | None = None
    min_group_size: int | None = Field(default=None, ge=3, le=1000)


class TerminateIn(BaseModel):
    contract_end: datetime | None = None


def describe(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "slug": row.slug,
        "name": row.name,
        "status": row.status,
        "seats": row.seats,
        "fiscal_year_start_month": row.fiscal_year_start_month,
        "min_group_size": row.min_group_size,
        "mfa_required": row.mfa_required,
        "data_region": row.data_region,
        "created_at": row.created_at.isoformat(),
        "contract_end": row.contract_end.isoformat() if row.contract_end else None,
        "purge_due_at": row.purge_due_at.isoformat() if row.purge_due_at else None,
    }


async def _visible_tenant(ctx: TenantAdmin, principal: Principal, tenant_id: uuid.UUID) -> Any:
    """The tenant, if the caller may see it: operators any customer tenant; a tenant's own
    users only their own active tenant. Anything else looks like a missing tenant."""
    async with ctx.db.transaction() as s:
        row = (await s.execute(select(tenants).where(tenants.c.id == tenant_id))).first()
    missing = ApiError(404, "tenant_not_found", "No such tenant.")
    if row is None or row.slug == PLATFORM_TENANT_SLUG:
        raise missing
    if "operator" in principal.roles and "mfa" in principal.amr:
        return row
    if principal.is_service or principal.tenant_id != str(tenant_id) or row.status != "active":
        raise missing
    return row


@router.post("/v1/tenants", status_code=201, tags=["tenants"])
async def create_tenant(
    body: TenantIn, principal: OperatorPrincipal, ctx: ContextDep
) -> dict[str, Any]:
    result = await provision(
        ctx,
        TenantRequest(
            slug=body.slug,
            name=body.name,
            seats=body.seats,
            companies=[Company(c.code, c.name) for c in body.companies],
            fiscal_year_start_month=body.fiscal_year_start_month,
            min_group_size=body.min_group_size,
            mfa_required=body.mfa_required,
            data_region=body.data_region,
        ),
        actor=("operator", principal.subject),
    )
    return {
        "id": str(result.id),
        "slug": result.slug,
        "status": result.status,
        "initial_admin": {
            "username": result.admin_username,
            "one_time_password": result.one_time_password,
        },
    }


@router.get("/v1/tenants", tags=["tenants"])
async def list_tenants(
    principal: OperatorPrincipal,
    ctx: ContextDep,
    status: Annotated[
        Literal["provisioning", "active", "terminated", "purged"] | None, Query()
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=BIGINT_MAX)] = 0,
) -> dict[str, Any]:
    conditions = [tenants.c.slug != PLATFORM_TENANT_SLUG]
    if status is not None:
        conditions.append(tenants.c.status == status)
    async with ctx.db.transaction() as s:
        total = await s.scalar(select(func.count()).select_from(tenants).where(*conditions))
        rows = await s.execute(
            select(tenants).where(*conditions).order_by(tenants.c.slug).limit(limit).offset(offset)
        )
        return {"tenants": [describe(r) for r in rows], "total": int(total or 0)}


@router.get("/v1/tenants/{tenant_id}", tags=["tenants"])
async def get_tenant(
    tenant_id: uuid.UUID, principal: CurrentUser, ctx: ContextDep
) -> dict[str, Any]:
    row = await _visible_tenant(ctx, principal, tenant_id)
    body = describe(row)
    if row.status == "active":
        body["admins"] = await identity_api.admins(ctx, tenant_id)
    body["companies"] = await _companies(ctx, tenant_id)
    return body


async def _companies(ctx: TenantAdmin, tenant_id: uuid.UUID) -> list[dict[str, str]]:
    async with ctx.db.transaction() as s:
        rows = await s.execute(
            select(companies.c.code, companies.c.name)
            .where(companies.c.tenant_id == tenant_id)
            .order_by(companies.c.code)
        )
        return [{"code": c, "name": n} for c, n in rows]


async def _readable_tenant(ctx: TenantAdmin, principal: Principal, tenant_id: uuid.UUID) -> Any:
    """The tenant for its own users and operators (as _visible_tenant), and for other services
    holding scope ``tenants:read`` while it is active."""
    if not principal.is_service:
        return await _visible_tenant(ctx, principal, tenant_id)
    async with ctx.db.transaction() as s:
        row = (await s.execute(select(tenants).where(tenants.c.id == tenant_id))).first()
    if row is None or row.status != "active" or row.slug == PLATFORM_TENANT_SLUG:
        raise ApiError(404, "tenant_not_found", "No such tenant.")
    return row


@router.get("/v1/tenants/{tenant_id}/companies", tags=["tenants"])
async def list_companies(
    tenant_id: uuid.UUID, principal: UserOrReader, ctx: ContextDep
) -> dict[str, Any]:
    """For the tenant's users and for other services (scope ``tenants:read``)."""
    await _readable_tenant(ctx, principal, tenant_id)
    return {"tenant_id": str(tenant_id), "companies": await _companies(ctx, tenant_id)}


@router.get("/v1/tenants/{tenant_id}/settings", tags=["tenants"])
async def tenant_settings(
    tenant_id: uuid.UUID, principal: UserOrReader, ctx: ContextDep
) -> dict[str, Any]:
    """What the other services apply for the tenant: its fiscal year, the minimum group size
    of dashboard breakdowns, its companies (the tenant's users and scope ``tenants:read``)."""
    row = await _readable_tenant(ctx, principal, tenant_id)
    return {
        "tenant_id": str(tenant_id),
        "fiscal_year_start_month": row.fiscal_year_start_month,
        "min_group_size": row.min_group_size,
        "companies": await _companies(ctx, tenant_id),
    }


@router.patch("/v1/tenants/{tenant_id}", tags=["tenants"])
async def patch_tenant(
    tenant_id: uuid.UUID, body: TenantPatch, principal: AdminOrOperator, ctx: ContextDep
) -> dict[str, Any]:
    row = await _visible_tenant(ctx, principal, tenant_id)
    is_operator = "operator" in principal.roles
    contract = body.name is not None or body.seats is not None or body.companies is not None
    if not is_operator and contract:
        # A tenant's administrators may change only their own security settings.
        raise Forbidden("Only the provider changes the contract (name, seats, companies).")
    if row.status != "active":
        raise ApiError(409, "tenant_not_active", "Only an active tenant can be changed.")
    values = body.model_dump(exclude_none=True, exclude={"companies"})
    async with ctx.db.transaction() as s:
        if body.companies is not None:
            await _replace_companies(ctx, s, tenant_id, body.companies)
        if values:
            await s.execute(
                update(tenants)
                .where(tenants.c.id == tenant_id)
                .values(**values, updated_at=ctx.now())
            )
        await audit.record(
            s,
            "tenant.updated",
            actor=("operator" if is_operator else "user", principal.subject),
            tenant_id=tenant_id,
            target=("tenant", str(tenant_id)),
            details={k: str(v) for k, v in values.items() if k != "name"},
        )
    updated = await _visible_tenant(ctx, principal, tenant_id)
    if {"seats", "mfa_required"} & values.keys():
        await identity_api.set_policy(
            ctx,
            tenant_id,
            {"slug": updated.slug, "seats": updated.seats, "mfa_required": updated.mfa_required},
        )
    return {**describe(updated), "companies": await _companies(ctx, tenant_id)}


async def _replace_companies(
    ctx: TenantAdmin, s: Any, tenant_id: uuid.UUID, wanted: list[CompanyIn]
) -> None:
    current = {c["code"]: c["name"] for c in await _companies(ctx, tenant_id)}
    new = {c.code: c.name for c in wanted}
    removed = set(current) - set(new)
    if removed and await _has_data(ctx, tenant_id):
        raise ApiError(
            409,
            "company_has_data",
            "A company cannot be removed while the tenant holds data; add or rename instead.",
            {"companies": sorted(removed)},
        )
    for code in removed:
        await s.execute(
            companies.delete().where(companies.c.tenant_id == tenant_id, companies.c.code == code)
        )
    for code, name in new.items():
        if code not in current:
            await s.execute(insert(companies).values(tenant_id=tenant_id, code=code, name=name))
        elif current[code] != name:
            await s.execute(
                update(companies)
                .where(companies.c.tenant_id == tenant_id, companies.c.code == code)
                .values(name=name)
            )


async def _has_data(ctx: TenantAdmin, tenant_id: uuid.UUID) -> bool:
    async with ctx.db.tenant_transaction(tenant_id) as tx:
        return bool(await tx.session.scalar(text("SELECT EXISTS (SELECT 1 FROM dataset_versions)")))


@router.get("/v1/tenants/{tenant_id}/assets", tags=["tenants"])
async def get_assets(
    tenant_id: uuid.UUID, principal: AdminOrOperator, ctx: ContextDep
) -> dict[str, Any]:
    row = await _visible_tenant(ctx, principal, tenant_id)
    if row.status not in ("active", "terminated"):
        raise ApiError(409, "no_assets", "This tenant holds no data any more.")
    return await assets.inventory(ctx, tenant_id, kek_ref=row.kek_ref)


@router.post("/v1/tenants/{tenant_id}/terminate", tags=["tenants"])
async def terminate(
    tenant_id: uuid.UUID, body: TerminateIn, principal: OperatorPrincipal, ctx: ContextDep
) -> dict[str, Any]:
    return await lifecycle.terminate(
        ctx, tenant_id, body.contract_end, actor=("operator", principal.subject)
    )


@router.get("/v1/tenants/{tenant_id}/deletion-certificate", tags=["tenants"])
async def deletion_certificate(
    tenant_id: uuid.UUID, principal: OperatorPrincipal, ctx: ContextDep
) -> dict[str, Any]:
    async with ctx.db.transaction() as s:
        row = (
            await s.execute(
                select(
                    deletion_certificates.c.certificate,
                    deletion_certificates.c.signature,
                    deletion_certificates.c.kid,
                )
                .join(tenants, tenants.c.id == deletion_certificates.c.tenant_id)
                .where(deletion_certificates.c.tenant_id == tenant_id, tenants.c.status == "purged")
            )
        ).first()
    if row is None:
        raise ApiError(404, "not_found", "No deletion certificate: the tenant is not purged.")
    return {
        "certificate": row.certificate,
        "signature": base64.b64encode(bytes(row.signature)).decode(),
        "kid": row.kid,
        "alg": "Ed25519",
    }


@router.get("/v1/certificate-keys", tags=["tenants"])
async def certificate_keys(ctx: ContextDep) -> dict[str, Any]:
    """Public keys that verify deletion certificates (signature over the canonical JSON:
    sorted keys, no spaces, UTF-8)."""
    async with ctx.db.transaction() as s:
        return {"keys": await certificates.public_keys(s)}
