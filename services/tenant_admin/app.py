from fastapi import FastAPI

from jinji.service import build_service
from services.registry import SPECS
from services.tenant_admin import context, lifecycle, routes_tenants
from services.tenant_admin.settings import TenantAdminSettings


def create_app(settings: TenantAdminSettings | None = None) -> FastAPI:
    settings = settings or TenantAdminSettings()
    return build_service(
        SPECS["tenant_admin"],
        settings,
        routers=[routes_tenants.router],
        lifespans=[context.lifespan(settings), lifecycle.lifespan],
    )
