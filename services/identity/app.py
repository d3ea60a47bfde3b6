from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from jinji.service import build_service
from jinji.tokens import TokenVerifier
from services.identity import (
    context,
    housekeeping,
    routes_auth,
    routes_internal,
    routes_me,
    routes_operator,
    routes_scim,
    routes_users,
)
from services.identity.keyring import StoredKeys
from services.identity.settings import IdentitySettings
from services.registry import SPECS


def create_app(settings: IdentitySettings | None = None) -> FastAPI:
    settings = settings or IdentitySettings()
    spec = SPECS["identity"]

    @asynccontextmanager
    async def own_keys(app: FastAPI) -> AsyncIterator[None]:
        # Identity verifies the tokens it signed from its own key table, not over HTTP.
        app.state.token_verifier = TokenVerifier(
            StoredKeys(app.state.db),
            issuer=settings.issuer,
            audience=spec.audience,
            leeway_s=settings.token_leeway_s,
        )
        yield

    return build_service(
        spec,
        settings,
        routers=[
            routes_auth.router,
            routes_me.router,
            routes_users.router,
            routes_internal.router,
            routes_operator.router,
            routes_scim.router,
        ],
        lifespans=[context.lifespan(settings), own_keys, housekeeping.lifespan],
    )
