"""Service-to-service client: token caching, bounded retries only when safe, clear failure."""

from __future__ import annotations

import base64
from collections import Counter

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from jinji.client import ServiceClient, ServiceTokenSource
from jinji.errors import ServiceUnavailable


class Upstream:
    """A real HTTP callee with a token endpoint and endpoints that fail on demand."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.fail_next: dict[str, list[int]] = {}
        self.issued = 0
        self.valid_tokens: set[str] = set()
        self.app = FastAPI()
        self.app.post("/token")(self.token)
        self.app.api_route("/work", methods=["GET", "POST"])(self.work)

    async def token(self, request: Request) -> JSONResponse:
        form = await request.form()
        basic = base64.b64decode(request.headers["authorization"].split()[1]).decode()
        if basic != "ingestion:s3cret" or form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        self.issued += 1
        token = f"tok-{self.issued}-{form.get('audience')}"
        self.valid_tokens.add(token)
        return JSONResponse({"access_token": token, "expires_in": 300, "token_type": "Bearer"})

    async def work(self, request: Request) -> JSONResponse:
        self.calls[request.method] += 1
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.valid_tokens:
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        queue = self.fail_next.get(request.method, [])
        if queue:
            return JSONResponse({"error": "x"}, status_code=queue.pop(0))
        return JSONResponse({"ok": True, "token": token})


@pytest.fixture
def upstream(live_server):
    up = Upstream()
    with live_server(up.app) as url:
        up.url = url
        yield up


def _client(http: httpx.AsyncClient, url: str, retries: int = 2) -> ServiceClient:
    tokens = ServiceTokenSource(
        http, f"{url}/token", "ingestion", "s3cret", audience="jinji-analytics", scopes=["x:y"]
    )
    return ServiceClient(http, url, tokens, service="analytics", retries=retries, backoff_s=0.01)


async def test_token_is_fetched_once_and_reused(upstream) -> None:
    async with httpx.AsyncClient() as http:
        client = _client(http, upstream.url)
        for _ in range(5):
            response = await client.request("GET", "/work")
            assert response.status_code == 200
            assert response.json()["token"] == "tok-1-jinji-analytics"
    assert upstream.issued == 1


async def test_rejected_token_is_replaced_once(upstream) -> None:
    async with httpx.AsyncClient() as http:
        client = _client(http, upstream.url)
        assert (await client.request("GET", "/work")).status_code == 200
        upstream.valid_tokens.clear()  # e.g. the callee rotated its keys
        response = await client.request("GET", "/work")
    assert response.status_code == 200
    assert upstream.issued == 2


async def test_idempotent_request_is_retried_on_503(upstream) -> None:
    upstream.fail_next["GET"] = [503, 502]
    async with httpx.AsyncClient() as http:
        response = await _client(http, upstream.url).request("GET", "/work")
    assert response.status_code == 200
    assert upstream.calls["GET"] == 3


async def test_retries_are_bounded(upstream) -> None:
    upstream.fail_next["GET"] = [503, 503, 503, 503]
    async with httpx.AsyncClient() as http:
        response = await _client(http, upstream.url, retries=2).request("GET", "/work")
    assert response.status_code == 503
    assert upstream.calls["GET"] == 3


async def test_post_is_not_repeated_unless_marked_idempotent(upstream) -> None:
    upstream.fail_next["POST"] = [503]
    async with httpx.AsyncClient() as http:
        client = _client(http, upstream.url)
        first = await client.request("POST", "/work", json={})
        assert first.status_code == 503
        assert upstream.calls["POST"] == 1
        upstream.fail_next["POST"] = [503]
        second = await client.request("POST", "/work", json={}, idempotent=True)
    assert second.status_code == 200
    assert upstream.calls["POST"] == 3


async def test_unreachable_service_raises_service_unavailable() -> None:
    async with httpx.AsyncClient(timeout=0.5) as http:
        # Port 9 (discard) on loopback: nothing listens, the connection is refused.
        client = ServiceClient(http, "http://127.0.0.1:9", None, service="audit_log", backoff_s=0)
        with pytest.raises(ServiceUnavailable) as err:
            await client.request("GET", "/audit/healthz")
    assert err.value.status == 503
    assert err.value.details == {"service": "audit_log"}
