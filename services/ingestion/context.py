"""What ingestion's handlers need, built once per process by the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import httpx
from fastapi import Depends

from jinji import audit as audit_trail
from jinji import dataset_events
from jinji.client import ServiceClient, ServiceTokens
from jinji.db import Database
from jinji.keys import Envelope
from jinji.runtime import make_envelope
from jinji.service import context_getter, context_lifespan
from jinji.web import Lifespan
from services.ingestion.settings import IngestionSettings


@dataclass
class Ingestion:
    settings: IngestionSettings
    db: Database
    envelope: Envelope
    http: httpx.AsyncClient
    audit: ServiceClient
    analytics: ServiceClient


def build(settings: IngestionSettings, db: Database, http: httpx.AsyncClient) -> Ingestion:
    tokens = ServiceTokens(
        http,
        settings.token_url,
        settings.ingestion_client_id,
        settings.ingestion_client_secret,
    )

    return Ingestion(
        settings=settings,
        db=db,
        envelope=make_envelope(settings, db),
        http=http,
        audit=audit_trail.client(http, settings, tokens),
        analytics=ServiceClient(
            http,
            settings.resolved_analytics_url,
            tokens(dataset_events.AUDIENCE, dataset_events.SCOPE),
            service="analytics",
        ),
    )


def lifespan(settings: IngestionSettings) -> Lifespan:
    return context_lifespan("ingestion", lambda app: build(settings, app.state.db, app.state.http))


ContextDep = Annotated[Ingestion, Depends(context_getter("ingestion", Ingestion))]
