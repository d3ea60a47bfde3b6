"""What tenant-admin's handlers need, built once per process by the app's lifespan."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import httpx
from fastapi import Depends

from jinji import audit as audit_trail
from jinji.client import ServiceClient, ServiceTokens
from jinji.db import Database
from jinji.keys import DekCache, Envelope, KeyProvider
from jinji.runtime import key_provider, make_envelope
from jinji.service import context_getter, context_lifespan
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
    tokens = ServiceTokens(
        http,
        settings.token_url,
        settings.identity_client_id,
        settings.identity_client_secret,
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
        audit=audit_trail.client(http, settings, tokens),
    )


def lifespan(settings: TenantAdminSettings) -> Lifespan:
    return context_lifespan(
        "tenant_admin", lambda app: build(settings, app.state.db, app.state.http)
    )


ContextDep = Annotated[TenantAdmin, Depends(context_getter("tenant_admin", TenantAdmin))]
