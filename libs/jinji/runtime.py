"""Lifespan pieces a service composes: its database pool, token verifier and HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request

from jinji import metrics
from jinji.config import Settings
from jinji.db import Database
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
