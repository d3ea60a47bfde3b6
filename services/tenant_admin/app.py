from fastapi import FastAPI

from jinji.service import build_service
from services.registry import SPECS
from services.tenant_admin.settings import TenantAdminSettings


def create_app(settings: TenantAdminSettings | None = None) -> FastAPI:
    return build_service(SPECS["tenant_admin"], settings or TenantAdminSettings())
