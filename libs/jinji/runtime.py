"""Lifespan pieces a service composes: its database pool, token verifier and HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI, Request

from jinji import metrics
from jinji.config import Settings
from jinji.db import ActiveTenants, Database
from jinji.keys import DekCache, Envelope, KeyProvider, make_provider
from jinji.keys.sql_store import SqlDekStore
from jinji.tokens import JwksCache, TokenVerifier
from jinji.web import Lifespan, ReadyCheck


def require_database_url(settings: Settings) -> str:
    if settings.database_url is None:
        raise SystemExit(
            "JINJI_DATABASE_URL is not set. `jinji up` starts an embedded PostgreSQL; "
            "`jinji serve` expects a database URL."
        )
    return settings.database_url.get_secret_value()


def database(settings: Settings, service: str) -> Lifespan:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(
            require_database_url(settings),
            application_name=f"jinji-{service}",
            pool_size=settings.db_pool_size,
            pool_timeout_s=settings.db_pool_timeout_s,
            statement_timeout_ms=settings.db_statement_timeout_ms,
        )
        app.state.db = db
        metrics.DB_POOLS.register(service, db)
        try:
            yield
        finally:
            metrics.DB_POOLS.unregister(service)
            await db.dispose()

    return lifespan


def http_client(settings: Settings) -> Lifespan:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=settings.http_timeout_s) as client:
            app.state.http = client
            yield

    return lifespan


def database_ready(app: FastAPI) -> dict[str, ReadyCheck]:
    db: Database = app.state.db
    return {"database": db.ping}


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


DatabaseDep = Annotated[Database, Depends(get_db)]


def token_verifier(settings: Settings, audience: str) -> Lifespan:
    """Verifies access tokens locally against identity's JWKS (fetched lazily, cached), and
    that a user's tenant is still active."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Runs after http_client(): the JWKS is fetched with the app's shared client.
        app.state.token_verifier = TokenVerifier(
            JwksCache(settings.resolved_jwks_url, app.state.http),
            issuer=settings.issuer,
            audience=audience,
            leeway_s=settings.token_leeway_s,
        )
        # Runs after database(): a user's tenant is checked against the tenant registry.
        app.state.tenant_gate = ActiveTenants(app.state.db)
        yield

    return lifespan


def key_provider(settings: Settings) -> KeyProvider:
    return make_provider(
        settings.key_provider,
        key_dir=settings.resolved_key_dir,
        kms_region=settings.kms_region,
        kms_endpoint_url=settings.kms_endpoint_url,
    )


def make_envelope(settings: Settings, db: Database, cache: DekCache | None = None) -> Envelope:
    """Envelope encryption for this deployment: the configured KEK provider, DEKs in
    ``tenancy.data_keys``, unwrapped DEKs cached briefly in memory."""
    return Envelope(
        key_provider(settings),
        SqlDekStore(db),
        cache if cache is not None else DekCache(ttl=settings.dek_cache_ttl_s),
    )
