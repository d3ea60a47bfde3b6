"""What analytics' handlers need, built once per process by the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import httpx
from fastapi import Depends

from jinji import audit as audit_trail
from jinji.client import ServiceClient, ServiceTokens
from jinji.db import Database
from jinji.runtime import make_envelope
from jinji.service import context_getter, context_lifespan
from jinji.web import Lifespan
from services.analytics.rendered import Rendered
from services.analytics.results import Results
from services.analytics.settings import AnalyticsSettings
from services.analytics.tenant_settings import TenantSettingsSource

TENANT_ADMIN_AUDIENCE = "jinji-tenant-admin"
TENANTS_READ = "tenants:read"


@dataclass
class Analytics:
    settings: AnalyticsSettings
    db: Database
    results: Results
    rendered: Rendered
    tenants: TenantSettingsSource
    audit: ServiceClient


def build(settings: AnalyticsSettings, db: Database, http: httpx.AsyncClient) -> Analytics:
    tokens = ServiceTokens(
        http,
        settings.token_url,
        settings.analytics_client_id,
        settings.analytics_client_secret,
    )

    tenants = ServiceClient(
        http,
        settings.resolved_tenants_url,
        tokens(TENANT_ADMIN_AUDIENCE, TENANTS_READ),
        service="tenant_admin",
    )
    return Analytics(
        settings=settings,
        db=db,
        results=Results(db, make_envelope(settings, db), settings.result_cache_tenants),
        rendered=Rendered(settings.rendered_cache_entries),
        tenants=TenantSettingsSource(tenants, settings.tenant_settings_ttl_s),
        audit=audit_trail.client(http, settings, tokens),
    )


def lifespan(settings: AnalyticsSettings) -> Lifespan:
    return context_lifespan("analytics", lambda app: build(settings, app.state.db, app.state.http))


ContextDep = Annotated[Analytics, Depends(context_getter("analytics", Analytics))]
