from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from jinji import audit as audit_trail
from jinji import outbox
from jinji.client import ServiceClient
from jinji.service import build_service
from jinji.tokens import TokenVerifier
from services.identity import (
    audit,
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
from services.identity.self_tokens import SelfIssuedTokens
from services.identity.settings import IdentitySettings
from services.registry import SPECS


def _audit_client(app: FastAPI, settings: IdentitySettings) -> ServiceClient:
    tokens = SelfIssuedTokens(
        app.state.identity, audience=audit_trail.AUDIENCE, scopes=[audit_trail.SCOPE]
    )
    return ServiceClient(app.state.http, settings.resolved_audit_url, tokens, service="audit_log")


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
        lifespans=[
            context.lifespan(settings),
            own_keys,
            housekeeping.lifespan,
            outbox.relay_lifespan(
                lambda app: outbox.Relay(
                    app.state.db,
                    audit.SOURCE,
                    {"audit": audit_trail.deliverer(_audit_client(app, settings))},
                )
            ),
        ],
    )
