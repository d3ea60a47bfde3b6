"""Every operation of every service's OpenAPI, called on tenant A's resources by tenant B's
admin, by a caller without a token and with a tampered token: refused or answered with B's own
data only — never anything of A's — and A's state is the same afterwards."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import Stack

ALPHA_COMPANY = "ALPHAXQ"
ALPHA_NAME = "アルファ秘密会社"
ALPHA_EMPLOYEE = "SECRETEMP0042"
ALPHA_USER = "alpha-hidden-user"
EMPLOYEES = (
    "社員番号,会社コード,部署,性別,生年月日,入社日,退職日,退職理由,雇用形態,管理職,等級\r\n"
    f"{ALPHA_EMPLOYEE},{ALPHA_COMPANY},極秘部,男,1980-01-01,2010-04-01,,,正社員,○,G3\r\n"
).encode("cp932")
# Needs no token: health, discovery, the login steps and token endpoints (their own checks).
PUBLIC = (
    "/healthz",
    "/readyz",
    "/.well-known/",
    "/v1/login",
    "/oauth2/",
    "/scim/v2/ServiceProviderConfig",
    "/scim/v2/Schemas",
    "/scim/v2/ResourceTypes",
    "/audit/v1/keys",
    "/tenants/v1/certificate-keys",  # public keys that verify deletion certificates
    "/audit/v1/checkpoints/latest",
    "/audit/v1/proofs/",
)
# The caller's own account (logout, password, MFA, own sessions): not tenant-scoped, and
# calling them would end the attacker's own session half-way through the matrix.
OWN_ACCOUNT = ("/identity/v1/logout", "/identity/v1/me/")


def _operations(stack: Stack, http: httpx.Client) -> list[tuple[str, str, str]]:
    found = []
    for base, prefix in (
        (stack.base, "identity"),
        (stack.tenant_admin_base, "tenants"),
        (stack.ingestion_base, "ingestion"),
        (stack.analytics_base, "analytics"),
        (stack.audit_base, "audit"),
    ):
        spec = http.get(f"{base}/{prefix}/openapi.json").json()
        for path, item in spec["paths"].items():
            for method in item:
                found.append((base, method.upper(), path))
    return found


def _fill(path: str, ids: dict[str, str]) -> str:
    for name, value in ids.items():
        path = path.replace("{" + name + "}", value)
    return path


def _snapshot(stack: Stack, http: httpx.Client, admin: dict[str, str], tenant_id: str) -> Any:
    reads = [
        stack.url("/v1/users"),
        stack.tenants_url(f"/v1/tenants/{tenant_id}"),
        stack.ingestion_url("/v1/datasets"),
        stack.ingestion_url("/v1/uploads"),
        stack.analytics_url("/v1/dashboards/overview/access"),
    ]
    state = []
    for url in reads:
        response = http.get(url, headers=admin)
        assert response.status_code == 200, (url, response.text)
        state.append(response.json())
    return state


@pytest.fixture(scope="module")
def world(stack: Stack, operator: dict[str, str]) -> dict[str, Any]:
    with httpx.Client(timeout=60) as http:
        alpha = stack.provision(http, operator, {ALPHA_COMPANY: ALPHA_NAME})
        made = stack.upload(http, alpha.admin, EMPLOYEES, "e.csv", "employees", as_of="2024-04")
        assert made.status_code == 201, made.text
        user = http.post(
            stack.url("/v1/users"),
            headers=alpha.admin,
            json={"username": ALPHA_USER, "roles": ["viewer"], "companies": [ALPHA_COMPANY]},
        ).json()
        report = http.post(
            stack.tenants_url("/v1/security-reports"),
            headers=alpha.admin,
            json={"category": "other", "summary": "alpha hidden report", "details": "x"},
        )
        beta = stack.provision(http, operator, {"BETA": "ベータ"})
    return {
        "alpha": alpha,
        "beta": beta,
        "ids": {
            "tenant_id": alpha.id,
            "user_id": user["id"],
            "report_id": report.json().get("id", str(uuid.uuid4())),
            "kind": "employees",
            "period": "2024-04",
            "key": "overview",
            "metric": "headcount",
            "fiscal_year": "2024",
            "session_id": str(uuid.uuid4()),
            "token_id": str(uuid.uuid4()),
            "client_id": "tenant-admin",
            "schema_id": "urn:ietf:params:scim:schemas:core:2.0:User",
            "name": "User",
        },
        "markers": [alpha.slug, ALPHA_COMPANY, ALPHA_NAME, ALPHA_EMPLOYEE, ALPHA_USER, "極秘部"],
    }


def test_no_operation_gives_tenant_b_anything_of_tenant_a(stack, http, world) -> None:
    alpha, beta = world["alpha"], world["beta"]
    before = _snapshot(stack, http, alpha.admin, alpha.id)
    token = beta.admin["Authorization"].removeprefix("Bearer ")
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    callers = {
        "tenant B admin": beta.admin,
        "no token": {},
        "tampered token": {"Authorization": f"Bearer {tampered}"},
    }
    checked = 0
    for base, method, path in _operations(stack, http):
        if path.startswith(OWN_ACCOUNT):
            continue
        url = base + _fill(path, world["ids"])
        public = any(part in path for part in PUBLIC)
        for caller, headers in callers.items():
            body = {} if method in ("POST", "PUT", "PATCH") else None
            response = http.request(method, url, headers=headers, json=body)
            checked += 1
            assert response.status_code < 500, (caller, method, path, response.text)
            for marker in world["markers"]:
                assert marker not in response.text, (caller, method, path, marker)
            if caller != "tenant B admin" and not public:
                assert response.status_code == 401, (caller, method, path, response.status_code)
    assert checked > 200
    assert _snapshot(stack, http, alpha.admin, alpha.id) == before
