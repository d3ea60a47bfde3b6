from fastapi import FastAPI

from jinji import audit as audit_trail
from jinji import dataset_events, outbox
from jinji.service import build_service
from services.ingestion import audit, context, routes
from services.ingestion.settings import IngestionSettings
from services.registry import SPECS


def create_app(settings: IngestionSettings | None = None) -> FastAPI:
    settings = settings or IngestionSettings()
    return build_service(
        SPECS["ingestion"],
        settings,
        routers=[routes.router],
        lifespans=[
            context.lifespan(settings),
            # Audit events, and "datasets changed" messages for analytics.
            outbox.relay_lifespan(
                lambda app: outbox.Relay(
                    app.state.db,
                    audit.SOURCE,
                    {
                        "audit": audit_trail.deliverer(app.state.ingestion.audit),
                        dataset_events.DESTINATION: dataset_events.deliverer(
                            app.state.ingestion.analytics
                        ),
                    },
                )
            ),
        ],
    )
