"""What ingestion's handlers need, built once per process by the app's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI, Request

from jinji import audit as audit_trail
from jinji.client import ServiceClient, ServiceTokenSource
from jinji.db import Database
from jinji.keys import Envelope
from jinji.runtime import make_envelope
from jinji.web import Lifespan
from services.ingestion.settings import IngestionSettings


@dataclass
class Ingestion:
    settings: IngestionSettings
    db: Database
    envelope: Envelope
    http: httpx.AsyncClient
    audit: ServiceClient


def build(settings: IngestionSettings, db: Database, http: httpx.AsyncClient) -> Ingestion:
    secret = settings.ingestion_client_secret
    tokens = (
        ServiceTokenSource(
            http,
            f"{settings.issuer}/oauth2/token",
            settings.ingestion_client_id,
            secret.get_secret_value(),
            audience=audit_trail.AUDIENCE,
            scopes=[audit_trail.SCOPE],
        )
        if secret is not None
        else None
    )
    return Ingestion(
        settings=settings,
        db=db,
        envelope=make_envelope(settings, db),
        http=http,
        audit=ServiceClient(http, settings.resolved_audit_url, tokens, service="audit_log"),
    )


def lifespan(settings: IngestionSettings) -> Lifespan:
    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        app.state.ingestion = build(settings, app.state.db, app.state.http)
        yield

    return run


def get_context(request: Request) -> Ingestion:
    ctx: Ingestion = request.app.state.ingestion
    return ctx


ContextDep = Annotated[Ingestion, Depends(get_context)]
