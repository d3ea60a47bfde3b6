"""Access tokens (ES256 JWTs) for users and for service clients."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

from services.identity.context import Identity
from services.identity.metrics import TOKENS
from services.registry import SPECS

# A user's token is accepted by every service; each checks its own audience is listed.
USER_AUDIENCES = sorted(spec.audience for spec in SPECS.values())


async def access_token(
    ctx: Identity,
    *,
    user_id: uuid.UUID,
    tenant_id: uuid.UUID,
    roles: Sequence[str],
    companies: Sequence[str],
    amr: Sequence[str],
    session_id: uuid.UUID,
    grant: str,
) -> tuple[str, int]:
    TOKENS.labels(grant).inc()
    ttl = ctx.settings.access_token_ttl_s
    now = int(time.time())
    claims = {
        "iss": ctx.settings.issuer,
        "sub": str(user_id),
        "aud": USER_AUDIENCES,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "jti": uuid.uuid4().hex,
        "tid": str(tenant_id),
        "roles": sorted(roles),
        "companies": sorted(companies),
        "amr": list(amr),
        "sid": str(session_id),
    }
    return await ctx.keyring.sign(claims), ttl


async def service_token(
    ctx: Identity, *, client_id: str, audience: str, scopes: Sequence[str]
) -> tuple[str, int]:
    TOKENS.labels("client_credentials").inc()
    ttl = ctx.settings.service_token_ttl_s
    now = int(time.time())
    claims = {
        "iss": ctx.settings.issuer,
        "sub": client_id,
        "client_id": client_id,
        "aud": audience,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "jti": uuid.uuid4().hex,
        "scope": " ".join(sorted(scopes)),
    }
    return await ctx.keyring.sign(claims), ttl
