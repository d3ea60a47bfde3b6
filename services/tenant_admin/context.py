"""What tenant-admin's handlers need, built once per process by the app's lifespan."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI, Request

from jinji import audit as audit_trail
from jinji.client import ServiceClient, ServiceTokenSource
from jinji.db import Database
from jinji.keys import DekCache, Envelope, KeyProvider
from jinji.runtime import key_provider, make_envelope
from jinji.tenancy import platform_tenant_id
from jinji.web import Lifespan
from services.registry import SPECS
from services.tenant_admin.settings import TenantAdminSettings


@dataclass
class TenantAdmin:
    settings: TenantAdminSettings
    db: Database
    provider: KeyProvider
    envelope: Envelope
    dek_cache: DekCache
    identity: ServiceClient
    audit: ServiceClient

    @staticmethod
    def now() -> datetime:
        return datetime.now(UTC)

    async def platform_tenant(self) -> uuid.UUID:
        async with self.db.transaction() as s:
            return await platform_tenant_id(s)


def build(settings: TenantAdminSettings, db: Database, http: httpx.AsyncClient) -> TenantAdmin:
    secret = settings.identity_client_secret

    def tokens(audience: str, scope: str) -> ServiceTokenSource | None:
        if secret is None:
            return None
        return ServiceTokenSource(
            http,
            f"{settings.resolved_identity_url}/oauth2/token",
            settings.identity_client_id,
            secret.get_secret_value(),
            audience=audience,
            scopes=[scope],
        )

    cache = DekCache(ttl=settings.dek_cache_ttl_s)
    return TenantAdmin(
        settings=settings,
        db=db,
        provider=key_provider(settings),
        envelope=make_envelope(settings, db, cache),
        dek_cache=cache,
        identity=ServiceClient(
            http,
            settings.resolved_identity_url,
            tokens(SPECS["identity"].audience, "identity:tenants"),
            service="identity",
        ),
        audit=ServiceClient(
            http,
            settings.resolved_audit_url,
            tokens(audit_trail.AUDIENCE, audit_trail.SCOPE),
            service="audit_log",
        ),
    )


def lifespan(settings: TenantAdminSettings) -> Lifespan:
    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        app.state.tenant_admin = build(settings, app.state.db, app.state.http)
        yield

    return run


def get_context(request: Request) -> TenantAdmin:
    ctx: TenantAdmin = request.app.state.tenant_admin
    return ctx


ContextDep = Annotated[TenantAdmin, Depends(get_context)]
