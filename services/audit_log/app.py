from fastapi import FastAPI

from jinji.service import build_service
from services.audit_log import context, routes
from services.audit_log.settings import AuditLogSettings
from services.registry import SPECS


def create_app(settings: AuditLogSettings | None = None) -> FastAPI:
    settings = settings or AuditLogSettings()
    return build_service(
        SPECS["audit_log"],
        settings,
        routers=[routes.router],
        lifespans=[context.lifespan(settings)],
    )
