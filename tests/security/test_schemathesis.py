"""Schemathesis against every service's OpenAPI, over real HTTP with real credentials: for
each operation, requests generated from its schema (valid and invalid) never get a 5xx, and
every response with a documented status matches its documented schema and content type.

Callers: a tenant admin of a provisioned tenant with an uploaded dataset (so reads answer with
data) on every operation, and the platform operator (signed in with TOTP) on the operator and
internal routes too. Examples are bounded per operation so the module takes about a minute.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
import schemathesis

# Loaded now, while the test session has a single thread: schemathesis loads these lazily,
# pytest rewrites their asserts as they load, and CPython 3.11's parser can fail
# ("AST constructor recursion depth mismatch") when that happens while the test servers'
# threads are running.
import schemathesis.openapi.loaders
import schemathesis.specs.openapi.schemas
from hypothesis import HealthCheck, Phase, given, settings, strategies
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)
from schemathesis.core.failures import FailureGroup

from tests.conftest import Provisioned, Stack

# For the same reason, hypothesis' regex strategies (loaded on first use of a string pattern,
# by parsing source with CPython's ast) are built once now, before any server thread starts.
strategies.from_regex(r"^a$").validate()

MAX_EXAMPLES = int(os.environ.get("JINJI_SCHEMATHESIS_EXAMPLES", "25"))
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
SERVICES = ("identity", "tenants", "ingestion", "analytics", "audit")
EMPLOYEES = (
    "社員番号,会社コード,部署,性別,生年月日,入社日,退職日,退職理由,雇用形態,管理職,等級\r\n"
    + "".join(
        f"E{i:04d},HQ,営業部,{'男' if i % 2 else '女'},1980-01-01,2010-04-01,,,正社員,×,G3\r\n"
        for i in range(40)
    )
).encode("cp932")
# Operations that end the caller's session or change its password: sent by a user of their
# own (a viewer made for this), so the admin's session lasts the whole run.
OWN_SESSION = ("/identity/v1/logout", "/identity/v1/me/password")
# Operators only (or service tokens): the operator calls them as well as the tenant admin.
OPERATOR_PATHS = (
    "/identity/v1/operator/",
    "/identity/internal/",
    "/tenants/v1/tenants",
    "/tenants/v1/notices",
    "/tenants/v1/security-reports",
    "/audit/v1/",
)


def _base(stack: Stack, service: str) -> str:
    return {
        "identity": stack.base,
        "tenants": stack.tenant_admin_base,
        "ingestion": stack.ingestion_base,
        "analytics": stack.analytics_base,
        "audit": stack.audit_base,
    }[service]


@pytest.fixture(scope="module")
def tenant(stack: Stack, operator: dict[str, str]) -> Provisioned:
    with httpx.Client(timeout=60) as http:
        made = stack.provision(http, operator, {"HQ": "本社"})
        uploaded = stack.upload(http, made.admin, EMPLOYEES, "e.csv", "employees", as_of="2024-04")
        assert uploaded.status_code == 201, uploaded.text
    return made


@pytest.fixture(scope="module")
def own_session_user(stack: Stack, tenant: Provisioned) -> dict[str, str]:
    with httpx.Client(timeout=60) as http:
        return stack.add_user(http, tenant, "self-service", ["viewer"])


def _run(schema: Any, base: str, headers: dict[str, str], wanted: Any) -> list[str]:
    """Every operation ``wanted(path)`` selects, ``MAX_EXAMPLES`` generated cases each;
    the failures, one line per operation (the first failing case's request and reason)."""
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if not wanted(operation.path):
            continue

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case: schemathesis.Case) -> None:
            response = case.call(base_url=base, headers=headers, timeout=30)
            case.validate_response(response, checks=CHECKS)

        try:
            check()
        except (AssertionError, FailureGroup) as failure:
            failures.append(f"{operation.method.upper()} {operation.path}: {failure}")
    return failures


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_answers_as_its_schema_says(
    stack: Stack,
    operator: dict[str, str],
    tenant: Provisioned,
    own_session_user: dict[str, str],
    service: str,
) -> None:
    base = _base(stack, service)
    schema = schemathesis.openapi.from_url(f"{base}/{service}/openapi.json")
    failures = _run(schema, base, tenant.admin, lambda path: not path.startswith(OWN_SESSION))
    failures += _run(schema, base, own_session_user, lambda path: path.startswith(OWN_SESSION))
    failures += _run(schema, base, operator, lambda path: path.startswith(OPERATOR_PATHS))
    assert not failures, "\n\n".join(failures)


def test_what_schemathesis_found_stays_fixed(
    stack: Stack, operator: dict[str, str], tenant: Provisioned, http: httpx.Client
) -> None:
    # A NUL character in text PostgreSQL would store: 422 naming the problem, nothing made.
    created = http.post(
        stack.tenants_url("/v1/tenants"),
        headers=operator,
        json={
            "slug": "nul-name",
            "name": "a\u0000b",
            "seats": 5,
            "companies": [{"code": "HQ", "name": "x"}],
        },
    )
    assert created.status_code == 422, created.text
    assert created.json()["error"]["code"] == "invalid_text"
    assert http.get(stack.tenants_url("/v1/tenants?limit=500"), headers=operator).status_code == 200
    assert (
        "nul-name"
        not in http.get(stack.tenants_url("/v1/tenants?limit=500"), headers=operator).text
    )
    login = http.post(
        stack.url("/v1/login"), json={"tenant": tenant.slug, "username": "a\u0000", "password": "x"}
    )
    assert login.status_code in (401, 422), login.text
    # Offsets and tree sizes past PostgreSQL's bigint: a validation error, not a driver error.
    huge = str(2**64)
    for url, headers in (
        (stack.tenants_url(f"/v1/notices?offset={huge}"), tenant.admin),
        (stack.ingestion_url(f"/v1/uploads?offset={huge}"), tenant.admin),
        (
            stack.audit_url(f"/v1/proofs/inclusion?stream={tenant.id}&seq=0&size={huge}"),
            tenant.admin,
        ),
    ):
        assert http.get(url, headers=headers).status_code == 422, url
    # Answers that are not JSON are documented as what they are.
    spec = http.get(stack.ingestion_url("/openapi.json")).json()
    media = spec["paths"]["/ingestion/v1/templates/{kind}"]["get"]["responses"]["200"]["content"]
    assert "text/csv" in media
    assert "application/json" not in media
    spec = http.get(stack.url("/openapi.json")).json()
    revoke = spec["paths"]["/identity/oauth2/revoke"]["post"]["responses"]["200"]
    assert "application/json" not in revoke.get("content", {})
    # A validation error is documented as the error envelope every service answers with.
    invalid = spec["paths"]["/identity/v1/login"]["post"]["responses"]["422"]
    schema = invalid["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/Error"}
    assert spec["components"]["schemas"]["Error"]["required"] == ["error"]
