from fastapi import FastAPI

from jinji import audit as audit_trail
from jinji import outbox
from jinji.service import build_service
from services.backup import metrics as backup_metrics
from services.registry import SPECS
from services.tenant_admin import (
    context,
    lifecycle,
    notices,
    routes_notices,
    routes_reports,
    routes_tenants,
)
from services.tenant_admin.settings import TenantAdminSettings


def create_app(settings: TenantAdminSettings | None = None) -> FastAPI:
    settings = settings or TenantAdminSettings()
    return build_service(
        SPECS["tenant_admin"],
        settings,
        routers=[routes_tenants.router, routes_notices.router, routes_reports.router],
        lifespans=[
            context.lifespan(settings),
            lifecycle.lifespan,
            # Backups run as CronJobs; tenant-admin exports their recorded results.
            backup_metrics.lifespan,
            outbox.relay_lifespan(
                lambda app: outbox.Relay(
                    app.state.db,
                    "tenant_admin",
                    {
                        "webhook": notices.webhook_deliverer(
                            app.state.tenant_admin, app.state.http
                        ),
                        "audit": audit_trail.deliverer(app.state.tenant_admin.audit),
                    },
                )
            ),
        ],
    )
