"""Calls from one service to another: a cached service token, timeouts, bounded retries.

The token comes from identity's OAuth2 ``client_credentials`` grant (audience = the callee)
and is reused until shortly before it expires. Retries are limited to requests that are safe
to repeat: idempotent methods, or a request the caller marks idempotent because the receiver
deduplicates it (e.g. audit events carrying their event ids).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import httpx
from pydantic import SecretStr

from jinji.errors import ServiceUnavailable

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({502, 503, 504})
REFRESH_MARGIN_S = 30.0


class TokenRequestFailed(Exception):
    pass


class TokenSource(Protocol):
    """Where a service client's bearer tokens come from."""

    async def token(self) -> str: ...

    def invalidate(self) -> None: ...


class ServiceTokenSource:
    def __init__(
        self,
        http: httpx.AsyncClient,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        audience: str,
        scopes: Sequence[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._token_url = token_url
        self._auth = (client_id, client_secret)
        self._form = {"grant_type": "client_credentials", "audience": audience}
        if scopes:
            self._form["scope"] = " ".join(scopes)
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        async with self._lock:
            if self._token is None or self._clock() >= self._expires_at - REFRESH_MARGIN_S:
                await self._fetch()
            assert self._token is not None
            return self._token

    def invalidate(self) -> None:
        self._token = None

    async def _fetch(self) -> None:
        response = await self._http.post(self._token_url, data=self._form, auth=self._auth)
        if response.status_code != 200:
            raise TokenRequestFailed(f"token endpoint answered {response.status_code}")
        body = response.json()
        self._token = str(body["access_token"])
        self._expires_at = self._clock() + float(body.get("expires_in", 60))


class ServiceTokens:
    """One service client's credentials: a token source per (audience, scope) it asks for,
    or None for each when no secret is configured (calls then go without a token)."""

    def __init__(
        self, http: httpx.AsyncClient, token_url: str, client_id: str, secret: SecretStr | None
    ) -> None:
        self._http = http
        self._token_url = token_url
        self._client_id = client_id
        self._secret = secret

    def __call__(self, audience: str, scope: str) -> ServiceTokenSource | None:
        if self._secret is None:
            return None
        return ServiceTokenSource(
            self._http,
            self._token_url,
            self._client_id,
            self._secret.get_secret_value(),
            audience=audience,
            scopes=[scope],
        )


class ServiceClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        tokens: TokenSource | None,
        *,
        service: str,
        retries: int = 2,
        backoff_s: float = 0.2,
    ) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._tokens = tokens
        self.service = service
        self._retries = retries
        self._backoff_s = backoff_s

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Send with auth; retry transport errors and 502/503/504 when safe to repeat.

        Raises :class:`ServiceUnavailable` if the callee cannot be reached after the retries;
        any HTTP answer (including 4xx/5xx) is returned to the caller to interpret.
        """
        method = method.upper()
        may_retry = idempotent if idempotent is not None else method in IDEMPOTENT_METHODS
        attempts = 1 + (self._retries if may_retry else 0)
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._send(method, path, json, params, headers)
            except (httpx.TransportError, TokenRequestFailed) as exc:
                if attempt >= attempts:
                    raise ServiceUnavailable(
                        f"{self.service} is not reachable.", {"service": self.service}
                    ) from exc
            else:
                if response.status_code == 401 and self._tokens is not None and not refreshed:
                    # The callee may have rotated keys or the token expired early: once.
                    self._tokens.invalidate()
                    refreshed = True
                    attempt -= 1
                    continue
                if response.status_code not in RETRY_STATUSES or attempt >= attempts:
                    return response
            await asyncio.sleep(self._backoff_s * (2 ** (attempt - 1)))

    async def _send(
        self,
        method: str,
        path: str,
        json: Any,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        merged = dict(headers or {})
        if self._tokens is not None:
            merged["Authorization"] = f"Bearer {await self._tokens.token()}"
        return await self._http.request(
            method, f"{self._base}{path}", json=json, params=params, headers=merged
        )
