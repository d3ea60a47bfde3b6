"""Every operation of every service's OpenAPI, called on tenant A's resources by callers who
must not reach them: tenant B's admin, A's own lower roles where the operation's documented
``security`` excludes them, the admin of a terminated tenant holding an unexpired token, a
genuinely signed but expired token, a tampered token and no token. Each is refused as the
OpenAPI says (or answered with the caller's own data only), never with anything it must not
see, and A's state is the same afterwards."""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from jinji.db import TENANT_STATUS_TTL_S
from tests.conftest import Provisioned, Stack

ALPHA_COMPANY = "ALPHAXQ"
ALPHA_NAME = "アルファ秘密会社"
ALPHA_EMPLOYEE = "SECRETEMP0042"
ALPHA_USER = "alpha-hidden-user"
ALPHA_REPORT = "alpha hidden report"
# A second group company of A: its people are not for users scoped to ALPHAXQ.
HIDDEN_COMPANY = "ALPHAZZ"
HIDDEN_EMPLOYEE = "SECRETZZ0099"
HIDDEN_DEPARTMENT = "極秘部門Z"
GAMMA_COMPANY = "GAMMAQQ"
GAMMA_NAME = "ガンマ解約会社"
GAMMA_EMPLOYEE = "GAMMAEMP0077"
HEADER = "社員番号,会社コード,部署,性別,生年月日,入社日,退職日,退職理由,雇用形態,管理職,等級\r\n"


def _employees(*rows: tuple[str, str, str]) -> bytes:
    lines = [f"{e},{c},{d},男,1980-01-01,2010-04-01,,,正社員,○,G3\r\n" for e, c, d in rows]
    return (HEADER + "".join(lines)).encode("cp932")


# The caller's own account (logout, password, MFA, own sessions): not tenant-scoped, and
# calling them would end the caller's own session half-way through the matrix.
OWN_ACCOUNT = ("/identity/v1/logout", "/identity/v1/me/")
LOWER_ROLES = ("viewer", "data_updater", "group_viewer")


@dataclass(frozen=True)
class Operation:
    base: str
    method: str
    path: str
    security: list[dict[str, list[str]]] | None  # None: needs no token

    def takes_access_token(self) -> bool:
        """A user's or a service's JWT (not public, not SCIM's own tokens)."""
        return any("user" in r or "service" in r for r in self.security or [])

    def admits(self, roles: set[str]) -> bool:
        """Whether a user holding ``roles`` passes the documented requirement."""
        for requirement in self.security or []:
            wanted = requirement.get("user")
            if wanted is not None and (not wanted or set(wanted) & roles):
                return True
        return False


def _operations(stack: Stack, http: httpx.Client) -> list[Operation]:
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
            for method, operation in item.items():
                found.append(Operation(base, method.upper(), path, operation.get("security")))
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
        stack.tenants_url("/v1/security-reports"),
    ]
    state = []
    for url in reads:
        response = http.get(url, headers=admin)
        assert response.status_code == 200, (url, response.text)
        state.append(response.json())
    return state


def _claims(headers: dict[str, str]) -> dict[str, Any]:
    payload = headers["Authorization"].removeprefix("Bearer ").split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def _expired_copy(stack: Stack, headers: dict[str, str]) -> dict[str, str]:
    """The caller's token re-signed with identity's real signing key, expired 5 minutes ago
    (beyond the verifiers' leeway): everything about it is genuine except its lifetime."""
    now = int(time.time())
    claims = {**_claims(headers), "iat": now - 900, "nbf": now - 900, "exp": now - 300}
    return {"Authorization": f"Bearer {stack.sign_as_identity(claims)}"}


@pytest.fixture(scope="module")
def world(stack: Stack, operator: dict[str, str]) -> dict[str, Any]:
    with httpx.Client(timeout=60) as http:
        alpha = stack.provision(
            http, operator, {ALPHA_COMPANY: ALPHA_NAME, HIDDEN_COMPANY: "アルファ別会社"}
        )
        employees = _employees(
            (ALPHA_EMPLOYEE, ALPHA_COMPANY, "極秘部"),
            (HIDDEN_EMPLOYEE, HIDDEN_COMPANY, HIDDEN_DEPARTMENT),
        )
        made = stack.upload(http, alpha.admin, employees, "e.csv", "employees", as_of="2024-04")
        assert made.status_code == 201, made.text
        user = http.post(
            stack.url("/v1/users"),
            headers=alpha.admin,
            json={"username": ALPHA_USER, "roles": ["viewer"], "companies": [ALPHA_COMPANY]},
        ).json()
        report = http.post(
            stack.tenants_url("/v1/security-reports"),
            headers=alpha.admin,
            json={"title": ALPHA_REPORT, "description": "極秘の説明"},
        )
        assert report.status_code == 201, report.text
        lower = {
            role: stack.add_user(
                http,
                alpha,
                f"lower-{role.replace('_', '-')}",
                [role],
                None if role == "group_viewer" else [ALPHA_COMPANY],
            )
            for role in LOWER_ROLES
        }
        beta = stack.provision(http, operator, {"BETA": "ベータ"})
        gamma = stack.provision(http, operator, {GAMMA_COMPANY: GAMMA_NAME})
        made = stack.upload(
            http,
            gamma.admin,
            _employees((GAMMA_EMPLOYEE, GAMMA_COMPANY, "解約部")),
            "e.csv",
            "employees",
            as_of="2024-04",
        )
        assert made.status_code == 201, made.text
        ended = http.post(
            stack.tenants_url(f"/v1/tenants/{gamma.id}/terminate"), headers=operator, json={}
        )
        assert ended.status_code == 200, ended.text
        # Each service trusts an earlier "active" answer this long: then the token is refused.
        time.sleep(TENANT_STATUS_TTL_S)
    return {
        "alpha": alpha,
        "beta": beta,
        "gamma": gamma,
        "lower": lower,
        "ids": {
            "tenant_id": alpha.id,
            "user_id": user["id"],
            "report_id": report.json()["id"],
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
        # Nothing of A for anyone outside A; within A, nothing of the other company for
        # users scoped to ALPHAXQ, and no other user's name or report for a lower role.
        "markers": [alpha.slug, ALPHA_COMPANY, ALPHA_NAME, ALPHA_EMPLOYEE, ALPHA_USER, "極秘部"],
        "lower_markers": [HIDDEN_EMPLOYEE, ALPHA_USER, ALPHA_REPORT],
        "scoped_markers": [HIDDEN_DEPARTMENT],
        "gamma_markers": [gamma.slug, GAMMA_COMPANY, GAMMA_NAME, GAMMA_EMPLOYEE, "解約部"],
    }


def _call(http: httpx.Client, op: Operation, url: str, headers: dict[str, str]) -> httpx.Response:
    body = {} if op.method in ("POST", "PUT", "PATCH") else None
    return http.request(op.method, url, headers=headers, json=body)


def _tenant_operations(stack: Stack, http: httpx.Client) -> list[Operation]:
    ops = [op for op in _operations(stack, http) if not op.path.startswith(OWN_ACCOUNT)]
    assert len(ops) > 80
    return ops


def test_no_operation_gives_tenant_b_anything_of_tenant_a(stack, http, world) -> None:
    alpha, beta = world["alpha"], world["beta"]
    before = _snapshot(stack, http, alpha.admin, alpha.id)
    token = beta.admin["Authorization"].removeprefix("Bearer ")
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    callers = {
        "tenant B admin": beta.admin,
        "no token": {},
        "tampered token": {"Authorization": f"Bearer {tampered}"},
        "expired token": _expired_copy(stack, alpha.admin),
    }
    checked = 0
    for op in _tenant_operations(stack, http):
        url = op.base + _fill(op.path, world["ids"])
        for caller, headers in callers.items():
            response = _call(http, op, url, headers)
            checked += 1
            assert response.status_code < 500, (caller, op, response.text)
            for marker in world["markers"]:
                assert marker not in response.text, (caller, op, marker)
            if caller != "tenant B admin" and op.takes_access_token():
                assert response.status_code == 401, (caller, op, response.status_code)
    assert checked > 300
    assert _snapshot(stack, http, alpha.admin, alpha.id) == before


@pytest.mark.parametrize("role", LOWER_ROLES)
def test_a_lower_role_is_refused_what_the_openapi_keeps_from_it(stack, http, world, role) -> None:
    alpha = world["alpha"]
    headers = world["lower"][role]
    before = _snapshot(stack, http, alpha.admin, alpha.id)
    markers = world["lower_markers"] + ([] if role == "group_viewer" else world["scoped_markers"])
    refused = allowed = 0
    for op in _tenant_operations(stack, http):
        url = op.base + _fill(op.path, world["ids"])
        response = _call(http, op, url, headers)
        assert response.status_code < 500, (op, response.text)
        for marker in markers:
            assert marker not in response.text, (op, marker)
        if op.takes_access_token():
            if op.admits({role}):
                allowed += 1
            else:
                refused += 1
                assert response.status_code == 403, (op, response.status_code, response.text)
    # Every role is kept from most of the API, and reaches some of it.
    assert refused > 30, refused
    assert allowed > 3, allowed
    assert _snapshot(stack, http, alpha.admin, alpha.id) == before


def test_a_terminated_tenants_unexpired_token_reaches_nothing(stack, http, world) -> None:
    gamma: Provisioned = world["gamma"]
    ids = {**world["ids"], "tenant_id": gamma.id}
    checked = 0
    for op in _tenant_operations(stack, http):
        if not op.takes_access_token():
            continue
        response = _call(http, op, op.base + _fill(op.path, ids), gamma.admin)
        checked += 1
        assert response.status_code == 401, (op, response.status_code, response.text)
        assert response.json()["error"]["message"] == "The tenant's contract has ended."
        for marker in world["gamma_markers"]:
            assert marker not in response.text, (op, marker)
    assert checked > 50
