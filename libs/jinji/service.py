"""Builds a service app with the standard runtime: database pool, HTTP client, token
verifier, readiness on the database. Services pass only what is theirs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar

from fastapi import APIRouter, FastAPI, Request

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


T = TypeVar("T")


def context_lifespan(attr: str, build: Callable[[FastAPI], object]) -> Lifespan:
    """Builds what a service's handlers need once per process, as ``app.state.<attr>`` (after
    the standard runtime: ``app.state.db`` and ``app.state.http`` exist by then)."""

    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        setattr(app.state, attr, build(app))
        yield

    return run


def context_getter(attr: str, kind: type[T]) -> Callable[[Request], T]:
    """The dependency handing handlers ``app.state.<attr>``."""

    def get(request: Request) -> T:
        value = getattr(request.app.state, attr)
        assert isinstance(value, kind)
        return value

    return get
