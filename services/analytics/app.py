from fastapi import FastAPI

from jinji import audit as audit_trail
from jinji import outbox
from jinji.service import build_service
from services.analytics import audit, context, routes, routes_internal
from services.analytics.settings import AnalyticsSettings
from services.registry import SPECS


def create_app(settings: AnalyticsSettings | None = None) -> FastAPI:
    settings = settings or AnalyticsSettings()
    return build_service(
        SPECS["analytics"],
        settings,
        routers=[routes.router, routes_internal.router],
        lifespans=[
            context.lifespan(settings),
            outbox.relay_lifespan(
                lambda app: outbox.Relay(
                    app.state.db,
                    audit.SOURCE,
                    {"audit": audit_trail.deliverer(app.state.analytics.audit)},
                )
            ),
        ],
    )
