"""Identity's own service tokens: it is the issuer, so it signs them directly instead of
calling its token endpoint over HTTP (a :class:`jinji.client.TokenSource`)."""

from __future__ import annotations

import time

from services.identity.context import LazyIdentity
from services.identity.issuing import service_token

CLIENT_ID = "identity"
REFRESH_MARGIN_S = 30.0


class SelfIssuedTokens:
    def __init__(self, lazy: LazyIdentity, *, audience: str, scopes: list[str]) -> None:
        self.lazy = lazy
        self.audience = audience
        self.scopes = scopes
        self._token: str | None = None
        self._expires_at = 0.0

    async def token(self) -> str:
        if self._token is None or time.monotonic() >= self._expires_at - REFRESH_MARGIN_S:
            ctx = await self.lazy.get()
            self._token, ttl = await service_token(
                ctx, client_id=CLIENT_ID, audience=self.audience, scopes=self.scopes
            )
            self._expires_at = time.monotonic() + ttl
        return self._token

    def invalidate(self) -> None:
        self._token = None
