"""Provider operations (9.4.4): only platform operators, only with a second factor in this
session, and every use audited. There is no other privileged path into identity."""

from __future__ import annotations

import asyncio
import secrets
from typing import Annotated, Any

from fastapi import Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import insert, select, update

from jinji.errors import ApiError
from jinji.tokens import OperatorPrincipal
from jinji.web import service_router
from services.identity import audit, operations, passwords
from services.identity.context import IdentityDep
from services.identity.routes_auth import client_ip
from services.identity.tables import service_clients
from services.registry import SPECS

router = service_router(SPECS["identity"])
AUDIENCES = frozenset(spec.audience for spec in SPECS.values())


Operator = OperatorPrincipal


@router.post("/v1/operator/signing-keys/rotate", tags=["operator"])
async def rotate_signing_key(
    principal: Operator, ctx: IdentityDep, request: Request
) -> dict[str, str]:
    kid = await operations.rotate_signing_key(
        ctx, actor=("operator", principal.subject), source_ip=client_ip(request)
    )
    return {"kid": kid}


Scope = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z_]+:[a-z_]+$")]


class ServiceClientIn(BaseModel):
    client_id: str = Field(min_length=3, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")
    audiences: list[str] = Field(min_length=1, max_length=10)
    scopes: list[Scope] = Field(default_factory=list, max_length=50)


@router.post("/v1/operator/service-clients", status_code=201, tags=["operator"])
async def create_service_client(
    body: ServiceClientIn, principal: Operator, ctx: IdentityDep, request: Request
) -> dict[str, Any]:
    unknown = set(body.audiences) - AUDIENCES
    if unknown:
        raise ApiError(422, "unknown_audience", "Unknown audience.", {"audiences": sorted(unknown)})
    secret = secrets.token_urlsafe(32)
    hashed = await asyncio.to_thread(passwords.hash_password, ctx.hasher, secret)
    async with ctx.db.transaction() as s:
        if await s.scalar(
            select(service_clients.c.client_id).where(service_clients.c.client_id == body.client_id)
        ):
            raise ApiError(409, "client_exists", "A service client with this id exists.")
        await s.execute(
            insert(service_clients).values(
                client_id=body.client_id,
                secret_hash=hashed,
                audiences=sorted(set(body.audiences)),
                scopes=sorted(set(body.scopes)),
            )
        )
        await audit.record(
            s,
            "service_client.created",
            actor=("operator", principal.subject),
            tenant_id=ctx.platform_tenant,
            target=("service_client", body.client_id),
            source_ip=client_ip(request),
            details={"scopes": " ".join(sorted(set(body.scopes)))},
        )
    # The secret is shown once; only its argon2id hash is kept.
    return {"client_id": body.client_id, "client_secret": secret}


@router.delete("/v1/operator/service-clients/{client_id}", status_code=204, tags=["operator"])
async def disable_service_client(
    client_id: str, principal: Operator, ctx: IdentityDep, request: Request
) -> Response:
    async with ctx.db.transaction() as s:
        result = await s.execute(
            update(service_clients)
            .where(
                service_clients.c.client_id == client_id, service_clients.c.disabled_at.is_(None)
            )
            .values(disabled_at=ctx.now())
        )
        if not getattr(result, "rowcount", 0):
            raise ApiError(404, "not_found", "No such active service client.")
        await audit.record(
            s,
            "service_client.disabled",
            actor=("operator", principal.subject),
            tenant_id=ctx.platform_tenant,
            target=("service_client", client_id),
            source_ip=client_ip(request),
        )
    return Response(status_code=204)
