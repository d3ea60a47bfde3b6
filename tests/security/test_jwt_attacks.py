"""Token attacks against every service over real HTTP: each is refused with 401 and the
service stays healthy. The same genuine user token is accepted first, so a refusal is the
attack's doing, not a broken endpoint."""

from __future__ import annotations

import base64
import json
import time
import uuid

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey

from tests.conftest import Provisioned, Stack

# One tenant-user endpoint per service (prefix, path): all need a valid token.
ENDPOINTS = {
    "identity": "/identity/v1/me",
    "tenant_admin": "/tenants/v1/tenants/{tenant}/settings",
    "ingestion": "/ingestion/v1/uploads",
    "analytics": "/analytics/v1/dashboards",
    "audit_log": "/audit/v1/events",
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _parts(token: str) -> tuple[dict[str, object], dict[str, object], str]:
    header, payload, signature = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return (
        json.loads(base64.urlsafe_b64decode(pad(header))),
        json.loads(base64.urlsafe_b64decode(pad(payload))),
        signature,
    )


def _token(header: dict[str, object], payload: dict[str, object], signature: str) -> str:
    return ".".join(
        [_b64(json.dumps(header).encode()), _b64(json.dumps(payload).encode()), signature]
    )


def _attacks(genuine: str, jwks: dict[str, object], service_token: str) -> dict[str, str]:
    header, claims, signature = _parts(genuine)
    now = int(time.time())
    forger = ECKey.generate_key("P-256", {"kid": str(header["kid"])})
    public = json.dumps(jwks["keys"][0]).encode()  # type: ignore[index]
    return {
        "alg none": _token({"alg": "none", "typ": "JWT"}, claims, ""),
        "alg none with signature": _token({**header, "alg": "none"}, claims, signature),
        "HS256 keyed with the public key": jwt.encode(
            {"alg": "HS256", "kid": header["kid"]}, claims, OctKey.import_key(public)
        ),
        "claims changed, signature kept": _token(
            header, {**claims, "roles": ["tenant_admin", "group_viewer"]}, signature
        ),
        "expiry pushed, signature kept": _token(header, {**claims, "exp": now + 86400}, signature),
        "signed by another key, same kid": jwt.encode(
            {"alg": "ES256", "kid": header["kid"]}, claims, forger
        ),
        "unknown kid": jwt.encode({"alg": "ES256", "kid": "nope"}, claims, forger),
        "kid path trick": jwt.encode(
            {"alg": "ES256", "kid": "../../../../etc/passwd"}, claims, forger
        ),
        "kid SQL trick": jwt.encode({"alg": "ES256", "kid": "' OR '1'='1"}, claims, forger),
        "expired": jwt.encode({"alg": "ES256", "kid": "x"}, {**claims, "exp": now - 60}, forger),
        "oversized": _token(header, {**claims, "pad": "x" * 9000}, signature),
        "garbage": "not.a.jwt",
        "another service's token": service_token,
    }


@pytest.fixture(scope="module")
def world(
    stack: Stack, operator: dict[str, str]
) -> tuple[Provisioned, str, dict[str, object], str]:
    with httpx.Client(timeout=30) as http:
        tenant = stack.provision(http, operator, {"HQ": "本社"})
        genuine = tenant.admin["Authorization"].removeprefix("Bearer ")
        jwks = http.get(stack.url("/.well-known/jwks.json")).json()
        # A genuine token of identity's, for a service client (audience: the audit log only).
        service = stack.service_headers(
            http, operator, f"probe-{uuid.uuid4().hex[:6]}", "jinji-audit-log"
        )["Authorization"].removeprefix("Bearer ")
    return tenant, genuine, jwks, service


def _genuinely_signed(stack: Stack, genuine: str) -> dict[str, str]:
    """Claim attacks signed with identity's real key: the signature verifies, so each refusal
    is the claim check's doing."""
    _, claims, _ = _parts(genuine)
    now = int(time.time())
    without = lambda name: {k: v for k, v in claims.items() if k != name}  # noqa: E731
    variants = {
        "expired": {**claims, "iat": now - 900, "nbf": now - 900, "exp": now - 300},
        "not valid yet": {**claims, "nbf": now + 600, "exp": now + 900},
        "issued in the future": {**claims, "iat": now + 600, "nbf": now, "exp": now + 900},
        "wrong issuer": {**claims, "iss": "https://attacker.example/identity"},
        "wrong audience": {**claims, "aud": ["jinji-elsewhere"]},
        "no audience": without("aud"),
        "no subject": without("sub"),
        "no token id": without("jti"),
        "no expiry": without("exp"),
        "unknown tenant": {**claims, "tid": str(uuid.uuid4())},
        "empty tenant": {**claims, "tid": ""},
    }
    return {
        f"{name} (real key)": stack.sign_as_identity(changed) for name, changed in variants.items()
    }


def _base(stack: Stack, service: str) -> str:
    return {
        "identity": stack.base,
        "tenant_admin": stack.tenant_admin_base,
        "ingestion": stack.ingestion_base,
        "analytics": stack.analytics_base,
        "audit_log": stack.audit_base,
    }[service]


@pytest.mark.parametrize("service", sorted(ENDPOINTS))
def test_every_token_attack_is_refused(stack, http, world, service) -> None:
    tenant, genuine, jwks, service_token = world
    url = _base(stack, service) + ENDPOINTS[service].format(tenant=tenant.id)
    accepted = http.get(url, headers={"Authorization": f"Bearer {genuine}"})
    assert accepted.status_code == 200, accepted.text
    # The control: the same claims re-signed with the real key pass, so the refusals below of
    # tokens signed that way are the changed claim's doing.
    resigned = stack.sign_as_identity(_parts(genuine)[1])
    assert http.get(url, headers={"Authorization": f"Bearer {resigned}"}).status_code == 200
    attacks = _attacks(genuine, jwks, service_token) | _genuinely_signed(stack, genuine)
    for name, token in attacks.items():
        if name == "another service's token" and service == "audit_log":
            continue  # that token is for the audit log (it is refused there for its scope)
        refused = http.get(url, headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 401, (service, name, refused.status_code, refused.text)
        assert refused.json()["error"]["code"] == "unauthorized", (service, name)
        assert "Bearer" in refused.headers.get("www-authenticate", ""), (service, name)
    for headers in ({}, {"Authorization": f"Basic {genuine}"}, {"Authorization": "Bearer"}):
        assert http.get(url, headers=headers).status_code == 401, (service, headers)
    assert http.get(url, params={"access_token": genuine}).status_code == 401  # header only
    prefix = ENDPOINTS[service].split("/")[1]
    assert http.get(f"{_base(stack, service)}/{prefix}/healthz").status_code == 200
