"""CLD9.5.1: every tenant-scoped endpoint of tenant-admin, called by every kind of caller
that must not reach tenant A, is refused, and the refusal carries none of A's data."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import httpx
import pytest

from jinji.db import TENANT_STATUS_TTL_S

PASS = "the tenant's passphrase"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class World:
    tenant_c: str
    tenant_a: str
    slug_a: str
    report_a: str
    callers: dict[str, dict[str, str]]


def _sign_in(http: httpx.Client, stack, slug: str, username: str, password: str) -> str:
    step = http.post(
        stack.url("/v1/login"), json={"tenant": slug, "username": username, "password": password}
    ).json()
    if step.get("challenge") == "password_change":
        step = http.post(
            stack.url("/v1/login/challenge"),
            json={"challenge_token": step["challenge_token"], "new_password": PASS},
        ).json()
    return str(step["access_token"])


def _tenant(http, stack, operator, prefix: str) -> tuple[str, str, dict[str, str]]:
    slug = f"{prefix}{uuid.uuid4().hex[:6]}"
    created = http.post(
        stack.tenants_url("/v1/tenants"),
        headers=operator,
        json={
            "slug": slug,
            "name": f"{prefix.upper()} 秘密の会社",
            "seats": 20,
            "companies": [{"code": "SECRETCO", "name": "極秘子会社"}],
            "mfa_required": False,
        },
    ).json()
    admin = bearer(
        _sign_in(http, stack, slug, "admin", created["initial_admin"]["one_time_password"])
    )
    return created["id"], slug, admin


def _user(http, stack, slug: str, admin: dict[str, str], role: str) -> dict[str, str]:
    made = http.post(
        stack.url("/v1/users"),
        headers=admin,
        json={"username": role.replace("_", "-"), "roles": [role], "companies": ["SECRETCO"]},
    ).json()
    return bearer(_sign_in(http, stack, slug, made["username"], made["one_time_password"]))


@pytest.fixture(scope="module")
def world(stack) -> World:
    with httpx.Client(timeout=10) as http:
        operator = bearer(stack.operator_token(http))
        tenant_a, slug_a, admin_a = _tenant(http, stack, operator, "alpha")
        report = http.post(
            stack.tenants_url("/v1/security-reports"),
            headers=admin_a,
            json={"title": "alpha incident", "description": "極秘の説明"},
        ).json()
        viewers = {
            role: _user(http, stack, slug_a, admin_a, role)
            for role in ("viewer", "data_updater", "group_viewer")
        }
        _, _, admin_b = _tenant(http, stack, operator, "beta")
        tenant_c, _, admin_c = _tenant(http, stack, operator, "gamma")
        http.post(stack.tenants_url(f"/v1/tenants/{tenant_c}/terminate"), headers=operator, json={})
        time.sleep(TENANT_STATUS_TTL_S)  # services re-read a tenant's status this often
        client = http.post(
            stack.url("/v1/operator/service-clients"),
            headers=operator,
            json={
                "client_id": "no-scope",
                "audiences": ["jinji-tenant-admin"],
                "scopes": ["audit:write"],
            },
        ).json()
        service = http.post(
            stack.url("/oauth2/token"),
            data={"grant_type": "client_credentials", "audience": "jinji-tenant-admin"},
            auth=(client["client_id"], client["client_secret"]),
        ).json()
    return World(
        tenant_c,
        tenant_a,
        slug_a,
        report["id"],
        {
            "admin_of_other_tenant": admin_b,
            "admin_of_terminated_tenant": admin_c,
            "service_without_scope": bearer(service["access_token"]),
            "anonymous": {},
            **viewers,
        },
    )


NOTICE = {
    "kind": "incident",
    "severity": "critical",
    "title": {"ja": "障害", "en": "Outage"},
    "body": {"ja": "本文", "en": "Body"},
    "starts_at": "2026-01-01T00:00:00+00:00",
    "tenants": "all",
}
# (method, path, body, callers of tenant A itself that ARE allowed)
ENDPOINTS = [
    ("GET", "/v1/tenants/{a}", None, {"viewer", "data_updater", "group_viewer"}),
    ("PATCH", "/v1/tenants/{a}", {"min_group_size": 7}, set()),
    ("GET", "/v1/tenants/{a}/companies", None, {"viewer", "data_updater", "group_viewer"}),
    ("GET", "/v1/tenants/{a}/settings", None, {"viewer", "data_updater", "group_viewer"}),
    ("GET", "/v1/tenants/{a}/assets", None, set()),
    ("POST", "/v1/tenants/{a}/terminate", {}, set()),
    ("GET", "/v1/tenants/{a}/deletion-certificate", None, set()),
    ("GET", "/v1/tenants", None, set()),
    ("GET", "/v1/security-reports/{report}", None, set()),
    (
        "POST",
        "/v1/security-reports/{report}/transitions",
        {"status": "resolved", "note": "x"},
        set(),
    ),
    ("POST", "/v1/notices", NOTICE, set()),
]
CALLERS = [
    "admin_of_other_tenant",
    "admin_of_terminated_tenant",
    "service_without_scope",
    "anonymous",
    "viewer",
    "data_updater",
    "group_viewer",
]


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("method", "path", "body", "allowed"), ENDPOINTS)
def test_refused_without_leaking(world: World, stack, http, caller, method, path, body, allowed):
    url = stack.tenants_url(path.format(a=world.tenant_a, report=world.report_a))
    response = http.request(method, url, headers=world.callers[caller], json=body)
    if caller in allowed:
        assert response.status_code == 200, response.text
        return
    assert response.status_code in (401, 403, 404), (caller, response.text)
    for secret in (
        world.slug_a,
        "秘密の会社",
        "極秘子会社",
        "SECRETCO",
        "alpha incident",
        "極秘の説明",
    ):
        assert secret not in response.text


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/tenants/{c}", None),
        ("PATCH", "/v1/tenants/{c}", {"min_group_size": 7}),
        ("GET", "/v1/tenants/{c}/companies", None),
        ("GET", "/v1/tenants/{c}/settings", None),
        ("GET", "/v1/tenants/{c}/assets", None),
    ],
)
def test_a_terminated_tenant_cannot_use_its_own_endpoints(world, stack, http, method, path, body):
    # Its administrator's access token was issued before the termination and is still
    # unexpired: tenant-admin refuses it all the same, as the token of an ended contract.
    url = stack.tenants_url(path.format(c=world.tenant_c))
    response = http.request(
        method, url, headers=world.callers["admin_of_terminated_tenant"], json=body
    )
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "The tenant's contract has ended."
    assert "GAMMA" not in response.text
