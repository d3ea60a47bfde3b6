"""The shell every service shares: readiness follows PostgreSQL, metrics after traffic,
one error envelope, request ids and security headers."""

from __future__ import annotations

import asyncio
import re
import time
import uuid

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from joserfc import jwt
from joserfc.jwk import ECKey
from pydantic import BaseModel, Field
from sqlalchemy import text

from jinji.db import TENANT_STATUS_TTL_S
from jinji.pgembed import EmbeddedPostgres
from jinji.runtime import DatabaseDep
from jinji.service import build_service
from jinji.tokens import CurrentPrincipal
from jinji.web import service_router
from services.analytics.app import create_app as create_analytics
from services.analytics.settings import AnalyticsSettings
from services.registry import SPECS


class Credentials(BaseModel):
    username: str = Field(min_length=3)
    password: str = Field(min_length=12)


def probe_router() -> APIRouter:
    """Routes that exercise the shell's failure paths, mounted on a real service build."""
    router = service_router(SPECS["analytics"])

    @router.get("/v1/probe/db")
    async def touch_db(db: DatabaseDep) -> dict[str, int]:
        async with db.transaction() as s:
            return {"one": int(await s.scalar(text("SELECT 1")) or 0)}

    @router.get("/v1/probe/crash")
    async def crash() -> None:
        raise RuntimeError("secret-internal-detail")

    @router.get("/v1/probe/me")
    async def me(principal: CurrentPrincipal) -> dict[str, str | None]:
        return {"sub": principal.subject, "tid": principal.tenant_id}

    @router.post("/v1/probe/login")
    async def login(body: Credentials) -> dict[str, str]:
        return {"username": body.username}

    return router


def probe_app(database_url: str, **settings: object):
    return build_service(
        SPECS["analytics"],
        AnalyticsSettings(database_url=database_url, **settings),
        routers=[probe_router()],
    )


def _get(url: str) -> httpx.Response:
    return httpx.get(url, timeout=10)


def _wait_for_status(url: str, status: int, timeout_s: float = 20.0) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while True:
        response = _get(url)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


@pytest.mark.fault
def test_readyz_follows_postgresql_down_and_back(embedded_pg_root, live_server) -> None:
    server = EmbeddedPostgres(embedded_pg_root)
    server.start()
    try:
        app = probe_app(server.url())
        with live_server(app) as base:
            ready = _get(f"{base}/analytics/readyz")
            assert ready.status_code == 200
            assert ready.json()["checks"] == {"database": "ok"}

            server.stop()
            down = _wait_for_status(f"{base}/analytics/readyz", 503)
            assert down.status_code == 503
            assert down.json()["error"]["code"] == "not_ready"
            assert down.json()["error"]["details"]["checks"] == {"database": "unavailable"}
            assert down.headers["retry-after"] == "5"
            # Liveness does not depend on the database: the pod must not be restarted.
            assert _get(f"{base}/analytics/healthz").status_code == 200
            # A request that needs the database gets a clear, retryable answer.
            during = _get(f"{base}/analytics/v1/probe/db")
            assert during.status_code == 503
            assert during.json()["error"]["code"] == "database_unavailable"
            assert during.headers["retry-after"] == "5"

            server.start()
            back = _wait_for_status(f"{base}/analytics/readyz", 200)
            assert back.status_code == 200
            # The pool recovered by itself: no restart of the service.
            assert _get(f"{base}/analytics/v1/probe/db").json() == {"one": 1}
    finally:
        server.stop()


def test_metrics_show_requests_and_latency_by_route_template(database_url, live_server) -> None:
    app = create_analytics(AnalyticsSettings(database_url=database_url))
    with live_server(app) as base:
        for _ in range(3):
            assert _get(f"{base}/analytics/healthz").status_code == 200
        assert _get(f"{base}/analytics/no/such/page/123").status_code == 404
        body = _get(f"{base}/metrics").text
    count = re.search(
        r'jinji_http_requests_total\{method="GET",route="/analytics/healthz",'
        r'service="analytics",status="200"\} (\d+\.\d+)',
        body,
    )
    assert count is not None
    assert float(count.group(1)) >= 3
    assert re.search(
        r'jinji_http_request_duration_seconds_bucket\{le="0.005",method="GET",'
        r'route="/analytics/healthz",service="analytics"\}',
        body,
    )
    # Unknown paths are one label value, never the raw path (bounded cardinality).
    assert 'route="unmatched"' in body
    assert "/no/such/page" not in body
    assert 'jinji_db_pool_connections{service="analytics",state="size"}' in body


def test_errors_use_one_envelope_with_request_id_and_security_headers(
    database_url, live_server
) -> None:
    app = create_analytics(AnalyticsSettings(database_url=database_url))
    with live_server(app) as base:
        missing = httpx.get(f"{base}/analytics/nothing", headers={"X-Request-ID": "abc-123"})
        wrong_method = httpx.delete(f"{base}/analytics/healthz")
        hostile_id = httpx.get(f"{base}/analytics/healthz", headers={"X-Request-ID": "<script>"})
        spec = httpx.get(f"{base}/analytics/openapi.json")
    assert missing.status_code == 404
    assert missing.json() == {"error": {"code": "not_found", "message": "Not Found", "details": {}}}
    assert missing.headers["x-request-id"] == "abc-123"
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"
    assert re.fullmatch(r"[0-9a-f]{32}", hostile_id.headers["x-request-id"])
    for response in (missing, hostile_id):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert spec.status_code == 200
    assert "/analytics/readyz" in spec.json()["paths"]


def test_unhandled_error_is_a_500_envelope_without_internals(database_url, live_server) -> None:
    with live_server(probe_app(database_url)) as base:
        response = httpx.get(f"{base}/analytics/v1/probe/crash")
    assert response.status_code == 500
    body = response.json()
    assert body["error"]["code"] == "internal_error"
    assert body["error"]["details"]["request_id"] == response.headers["x-request-id"]
    assert "secret-internal-detail" not in response.text
    assert response.headers["x-content-type-options"] == "nosniff"


def test_validation_error_names_the_field_but_never_echoes_the_value(
    database_url, live_server
) -> None:
    with live_server(probe_app(database_url)) as base:
        response = httpx.post(
            f"{base}/analytics/v1/probe/login",
            json={"username": "yamada", "password": "hunter2-pw"},
        )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert [e["loc"] for e in error["details"]["errors"]] == [["body", "password"]]
    assert "hunter2-pw" not in response.text


async def test_service_verifies_access_tokens_against_identity_jwks(
    database_url, db, live_server
) -> None:
    key = ECKey.generate_key("P-256", {"kid": "k1"})
    jwks = FastAPI()

    @jwks.get("/identity/.well-known/jwks.json")
    async def keys() -> dict[str, object]:
        return {"keys": [{**key.as_dict(private=False), "alg": "ES256", "use": "sig"}]}

    tenant_id = uuid.uuid4()
    async with db.transaction() as s:
        await s.execute(
            text(
                "INSERT INTO tenancy.tenants (id, slug, name, status) "
                "VALUES (:id, :slug, 'probe', 'active')"
            ),
            {"id": tenant_id, "slug": f"p{tenant_id.hex[:8]}"},
        )
    now = int(time.time())
    claims = {"iss": "", "aud": ["jinji-analytics"], "sub": "u-1", "tid": str(tenant_id)}
    claims |= {"jti": "j-1", "iat": now, "exp": now + 300, "roles": ["viewer"]}
    with live_server(jwks) as identity:
        issuer = f"{identity}/identity"
        app = probe_app(database_url, issuer=issuer)
        token = jwt.encode({"alg": "ES256", "kid": "k1"}, {**claims, "iss": issuer}, key)
        other_audience = jwt.encode(
            {"alg": "ES256", "kid": "k1"}, {**claims, "iss": issuer, "aud": "jinji-identity"}, key
        )
        with live_server(app) as base:
            url = f"{base}/analytics/v1/probe/me"
            client = httpx.AsyncClient(timeout=10)
            anonymous = await client.get(url)
            valid = await client.get(url, headers={"Authorization": f"Bearer {token}"})
            wrong_aud = await client.get(url, headers={"Authorization": f"Bearer {other_audience}"})
            # The contract ends: the same unexpired token is refused from the next request.
            async with db.transaction() as s:
                await s.execute(
                    text("UPDATE tenancy.tenants SET status = 'terminated' WHERE id = :id"),
                    {"id": tenant_id},
                )
            await asyncio.sleep(TENANT_STATUS_TTL_S)  # the service re-reads it this often
            ended = await client.get(url, headers={"Authorization": f"Bearer {token}"})
            await client.aclose()
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthorized"
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert valid.status_code == 200
    assert valid.json() == {"sub": "u-1", "tid": str(tenant_id)}
    # A token issued for another service is not accepted here.
    assert wrong_aud.status_code == 401
    assert other_audience not in wrong_aud.text
    assert ended.status_code == 401
    assert ended.json()["error"]["message"] == "The tenant's contract has ended."
