"""Builds a service app with the standard runtime: database pool, HTTP client, token
verifier, readiness on the database. Services pass only what is theirs."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from fastapi import APIRouter, FastAPI

from jinji import runtime
from jinji.config import Settings
from jinji.web import Lifespan, ReadyCheck, ServiceSpec, create_app


def build_service(
    spec: ServiceSpec,
    settings: Settings,
    *,
    routers: Sequence[APIRouter] = (),
    lifespans: Sequence[Lifespan] = (),
    ready_checks: Callable[[FastAPI], dict[str, ReadyCheck]] | None = None,
) -> FastAPI:
    def checks(app: FastAPI) -> dict[str, ReadyCheck]:
        found = runtime.database_ready(app)
        if ready_checks is not None:
            found.update(ready_checks(app))
        return found

    app = create_app(
        spec,
        routers=routers,
        lifespans=[
            runtime.database(settings, spec.name),
            runtime.http_client(settings),
            runtime.token_verifier(settings, spec.audience),
            *lifespans,
        ],
        ready_checks=checks,
    )
    app.state.settings = settings
    return app
