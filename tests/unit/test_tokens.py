"""jinji.tokens against real ES256 keys and a JWKS served over real HTTP.

The JWKS server runs uvicorn in a background thread (its own event loop) and counts requests,
which is what the refetch-rate tests assert on.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from jinji.errors import ApiError, Forbidden, envelope
from jinji.tokens import (
    CurrentPrincipal,
    InvalidToken,
    JwksCache,
    Principal,
    TokenVerifier,
    require_roles,
    require_scopes,
    require_tenant,
    require_user,
)
from jinji.web import ServiceSpec, create_app, service_router

ISSUER = "https://identity.jinji.test"
AUDIENCE = "jinji-api"
NOW = 1_800_000_000
KEY_A = ECKey.generate_key("P-256", {"kid": "key-a"})
KEY_B = ECKey.generate_key("P-256", {"kid": "key-b"})
UNPUBLISHED = ECKey.generate_key("P-256", {"kid": "unpublished"})
DROP = object()

HrAdmin = Annotated[Principal, Depends(require_roles("hr_admin", "owner"))]
ReportsService = Annotated[Principal, Depends(require_scopes("reports:read", "reports:write"))]
UserOrReader = Annotated[Principal, Depends(require_user(or_scopes=("reports:read",)))]
OwnerOrOperator = Annotated[Principal, Depends(require_roles("owner", "operator"))]
ENDED_TENANT = "tenant-ended"


async def active_tenant(tenant_id: str) -> bool:
    # Stands in for the tenant registry (Database.tenant_is_active, tested against PostgreSQL).
    return tenant_id != ENDED_TENANT


# --------------------------------------------------------------------------- helpers


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(obj: Any) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def unb64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def public_jwk(key: ECKey | RSAKey, **extra: Any) -> dict[str, Any]:
    return {**key.as_dict(private=False), **extra}


def user_claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "tid": "tenant-1",
        "roles": ["hr_admin", "viewer"],
        "companies": ["co-1", "co-2"],
        "scope": "reports:read  profile",
        "amr": ["pwd", "otp"],
        "sid": "session-1",
        "jti": "jti-1",
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + 600,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not DROP}


def service_claims(**overrides: Any) -> dict[str, Any]:
    base = {
        "sub": "svc-reports",
        "client_id": "svc-reports",
        "tid": DROP,
        "roles": DROP,
        "companies": DROP,
        "amr": DROP,
        "sid": DROP,
        "scope": "reports:read reports:write",
    }
    return user_claims(**{**base, **overrides})


def sign(claims: dict[str, Any], key: ECKey = KEY_A, **header: Any) -> str:
    return jwt.encode({"alg": "ES256", "kid": key.kid, **header}, claims, key, algorithms=["ES256"])


def hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{b64url_json(header)}.{b64url_json(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --------------------------------------------------------------------------- JWKS server


@dataclass
class JwksState:
    # Any: tests also publish entries that are not JWKs at all.
    keys: list[Any] = field(default_factory=list)
    status: int = 200
    raw_body: bytes | None = None
    hits: int = 0

    def reset(self, keys: list[Any]) -> None:
        self.keys, self.status, self.raw_body, self.hits = keys, 200, None, 0


@dataclass
class JwksServer:
    url: str
    state: JwksState


@pytest.fixture(scope="module")
def jwks_server(live_server: Any) -> Iterator[JwksServer]:
    state = JwksState()

    async def jwks(request: Request) -> Response:
        state.hits += 1
        if state.status != 200:
            return Response("identity is having a bad day", status_code=state.status)
        if state.raw_body is not None:
            return Response(state.raw_body, media_type="application/json")
        return JSONResponse({"keys": state.keys})

    app = Starlette(routes=[Route("/.well-known/jwks.json", jwks)])
    with live_server(app) as base:
        yield JwksServer(f"{base}/.well-known/jwks.json", state)


@pytest.fixture
def jwks(jwks_server: JwksServer) -> JwksState:
    jwks_server.state.reset([public_jwk(KEY_A)])
    return jwks_server.state


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


@pytest.fixture
def cache_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache(
    jwks_server: JwksServer, jwks: JwksState, http: httpx.AsyncClient, cache_clock: FakeClock
) -> JwksCache:
    return JwksCache(jwks_server.url, http, min_refetch_interval_s=30.0, clock=cache_clock)


@pytest.fixture
def verifier(cache: JwksCache) -> TokenVerifier:
    return TokenVerifier(cache, issuer=ISSUER, audience=AUDIENCE, clock=lambda: float(NOW))


async def reject(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(InvalidToken) as caught:
        await verifier.verify(token)
    return caught.value.reason


# --------------------------------------------------------------------------- accepted tokens


async def test_valid_user_token_yields_principal(verifier: TokenVerifier, jwks: JwksState) -> None:
    p = await verifier.verify(sign(user_claims()))

    assert p == Principal(
        subject="user-1",
        tenant_id="tenant-1",
        roles=frozenset({"hr_admin", "viewer"}),
        companies=frozenset({"co-1", "co-2"}),
        scopes=frozenset({"reports:read", "profile"}),
        amr=("pwd", "otp"),
        session_id="session-1",
        token_id="jti-1",
        client_id=None,
        is_service=False,
        expires_at=NOW + 600,
    )
    assert jwks.hits == 1


async def test_service_token_is_marked_as_service(verifier: TokenVerifier) -> None:
    p = await verifier.verify(sign(service_claims()))

    assert p.is_service
    assert p.tenant_id is None
    assert p.client_id == "svc-reports"
    assert p.scopes == {"reports:read", "reports:write"}
    assert p.roles == frozenset()
    assert p.amr == ()


async def test_user_token_with_client_id_is_not_a_service(verifier: TokenVerifier) -> None:
    p = await verifier.verify(sign(user_claims(client_id="web")))

    assert not p.is_service
    assert p.client_id == "web"


async def test_audience_list_containing_ours_is_accepted(verifier: TokenVerifier) -> None:
    p = await verifier.verify(sign(user_claims(aud=["other-api", AUDIENCE])))
    assert p.subject == "user-1"


async def test_nbf_is_optional(verifier: TokenVerifier) -> None:
    assert (await verifier.verify(sign(user_claims(nbf=DROP)))).subject == "user-1"


async def test_known_key_is_not_refetched_per_request(
    verifier: TokenVerifier, jwks: JwksState, cache_clock: FakeClock
) -> None:
    token = sign(user_claims())
    for _ in range(20):
        await verifier.verify(token)
        cache_clock.advance(10)
    assert jwks.hits == 1


# --------------------------------------------------------------------------- algorithm confusion


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
@pytest.mark.parametrize("signature", ["", "valid"])
async def test_alg_none_is_rejected(
    verifier: TokenVerifier, jwks: JwksState, alg: str, signature: str
) -> None:
    genuine = sign(user_claims())
    header = b64url_json({"alg": alg, "kid": KEY_A.kid, "typ": "JWT"})
    sig = genuine.split(".")[2] if signature == "valid" else ""
    token = f"{header}.{genuine.split('.')[1]}.{sig}"

    assert await reject(verifier, token) == "unsupported_alg"
    assert jwks.hits == 0


def _public_pem(key: ECKey) -> bytes:
    return key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param(lambda: _public_pem(KEY_A), id="pem"),
        pytest.param(lambda: json.dumps(public_jwk(KEY_A)).encode(), id="jwk-json"),
        pytest.param(lambda: json.dumps({"keys": [public_jwk(KEY_A)]}).encode(), id="jwks-json"),
    ],
)
async def test_hs256_signed_with_public_key_is_rejected(
    verifier: TokenVerifier, jwks: JwksState, secret: Any
) -> None:
    token = hs256({"alg": "HS256", "kid": KEY_A.kid, "typ": "JWT"}, user_claims(), secret())

    assert await reject(verifier, token) == "unsupported_alg"
    assert jwks.hits == 0


async def test_other_asymmetric_algs_are_rejected(verifier: TokenVerifier) -> None:
    # Same kid as the published ES256 key: the alg, not the kid lookup, must stop these.
    rsa = RSAKey.generate_key(2048, {"kid": "key-a"})
    rs256 = jwt.encode({"alg": "RS256", "kid": "key-a"}, user_claims(), rsa, algorithms=["RS256"])
    p384 = ECKey.generate_key("P-384", {"kid": "key-a"})
    es384 = jwt.encode({"alg": "ES384", "kid": "key-a"}, user_claims(), p384, ["ES384"])

    assert await reject(verifier, rs256) == "unsupported_alg"
    assert await reject(verifier, es384) == "unsupported_alg"


async def test_missing_kid_is_rejected(verifier: TokenVerifier, jwks: JwksState) -> None:
    token = jwt.encode({"alg": "ES256"}, user_claims(), KEY_A, algorithms=["ES256"])

    assert await reject(verifier, token) == "missing_kid"
    assert jwks.hits == 0


# --------------------------------------------------------------------------- key lookup


async def test_unknown_kids_refetch_at_most_once_per_interval(
    verifier: TokenVerifier, jwks: JwksState, cache_clock: FakeClock
) -> None:
    await verifier.verify(sign(user_claims()))
    assert jwks.hits == 1

    # Within the interval of the first fetch: no refetch at all.
    for i in range(10):
        token = sign(user_claims(), UNPUBLISHED, kid=f"random-{i}")
        assert await reject(verifier, token) == "unknown_kid"
    assert jwks.hits == 1

    cache_clock.advance(31)
    for i in range(50):
        token = sign(user_claims(), UNPUBLISHED, kid=f"random-{i}")
        assert await reject(verifier, token) == "unknown_kid"
        cache_clock.advance(0.5)
    assert jwks.hits == 2

    cache_clock.advance(6)  # 31 s after the second fetch
    assert await reject(verifier, sign(user_claims(), UNPUBLISHED)) == "unknown_kid"
    assert jwks.hits == 3


async def test_concurrent_unknown_kids_share_one_fetch(
    verifier: TokenVerifier, jwks: JwksState
) -> None:
    tokens = [sign(user_claims(), UNPUBLISHED, kid=f"random-{i}") for i in range(30)]
    outcomes = await asyncio.gather(
        *(verifier.verify(t) for t in tokens),
        verifier.verify(sign(user_claims())),
        return_exceptions=True,
    )

    assert all(isinstance(o, InvalidToken) and o.reason == "unknown_kid" for o in outcomes[:-1])
    assert isinstance(outcomes[-1], Principal)
    assert jwks.hits == 1


async def test_rotated_in_key_is_picked_up_by_refetch(
    verifier: TokenVerifier, jwks: JwksState, cache_clock: FakeClock
) -> None:
    await verifier.verify(sign(user_claims()))
    jwks.keys = [public_jwk(KEY_A), public_jwk(KEY_B)]
    cache_clock.advance(31)

    p = await verifier.verify(sign(user_claims(sub="user-2"), KEY_B))

    assert p.subject == "user-2"
    assert jwks.hits == 2
    # The old key is still trusted while it is still published.
    assert (await verifier.verify(sign(user_claims()))).subject == "user-1"
    assert jwks.hits == 2


async def test_withdrawn_key_stops_being_trusted_after_max_age(
    verifier: TokenVerifier, jwks: JwksState, cache_clock: FakeClock
) -> None:
    token = sign(user_claims())
    await verifier.verify(token)
    jwks.keys = [public_jwk(KEY_B)]

    cache_clock.advance(299)
    await verifier.verify(token)
    assert jwks.hits == 1

    cache_clock.advance(2)
    assert await reject(verifier, token) == "unknown_kid"
    assert jwks.hits == 2


async def test_failed_refetch_keeps_old_keys_and_logs_without_token(
    verifier: TokenVerifier,
    jwks: JwksState,
    cache_clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = sign(user_claims())
    await verifier.verify(token)
    caplog.set_level(logging.WARNING, logger="jinji.tokens")

    for status, body in [(500, None), (200, b"not json"), (200, b'{"keys": "nope"}')]:
        jwks.status, jwks.raw_body = status, body
        cache_clock.advance(301)
        unknown = sign(user_claims(), UNPUBLISHED)
        assert await reject(verifier, unknown) == "unknown_kid"
        assert (await verifier.verify(token)).subject == "user-1"
        assert token not in caplog.text
        assert unknown not in caplog.text

    assert jwks.hits == 4
    failures = [r for r in caplog.records if r.getMessage().startswith("JWKS fetch failed")]
    assert len(failures) == 3


async def test_jwks_without_usable_keys_keeps_old_keys(
    verifier: TokenVerifier,
    jwks: JwksState,
    cache_clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = sign(user_claims())
    await verifier.verify(token)
    jwks.keys = []
    cache_clock.advance(301)

    assert (await verifier.verify(token)).subject == "user-1"
    assert jwks.hits == 2
    assert "no usable" in caplog.text


async def test_identity_down_at_start_is_not_a_bad_token(
    verifier: TokenVerifier, jwks: JwksState, cache_clock: FakeClock
) -> None:
    jwks.status = 503
    token = sign(user_claims())

    assert await reject(verifier, token) == "keys_unavailable"
    assert await reject(verifier, token) == "keys_unavailable"
    assert jwks.hits == 1

    jwks.status = 200
    cache_clock.advance(30)
    assert (await verifier.verify(token)).subject == "user-1"
    assert jwks.hits == 2


async def test_only_p256_es256_verification_keys_are_loaded(
    cache: JwksCache, jwks: JwksState, caplog: pytest.LogCaptureFixture
) -> None:
    p384 = ECKey.generate_key("P-384", {"kid": "p384"})
    rsa = RSAKey.generate_key(2048, {"kid": "rsa"})
    jwks.keys = [
        public_jwk(KEY_A, alg="ES256", use="sig"),
        public_jwk(KEY_B),
        public_jwk(p384),
        public_jwk(rsa, alg="RS256"),
        {"kty": "oct", "kid": "hmac", "k": b64url(b"secret")},
        public_jwk(ECKey.generate_key("P-256", {"kid": "es384"}), alg="ES384"),
        public_jwk(ECKey.generate_key("P-256", {"kid": "enc"}), use="enc"),
        public_jwk(ECKey.generate_key("P-256", {"kid": "sign-only"}), key_ops=["sign"]),
        {**public_jwk(ECKey.generate_key("P-256", {"kid": "off-curve"})), "y": b64url(b"\x01")},
        {**public_jwk(ECKey.generate_key("P-256")), "kid": None},
        "not a key",
        KEY_B.as_dict(private=True, kid="leaky"),
    ]

    assert await cache.get("key-a") is not None
    assert await cache.get("key-b") is not None
    for kid in ("p384", "rsa", "hmac", "es384", "enc", "sign-only", "off-curve"):
        assert await cache.get(kid) is None, kid
    leaky = await cache.get("leaky")
    assert leaky is not None
    assert not leaky.is_private
    assert "private key material" in caplog.text
    assert jwks.hits == 1


# --------------------------------------------------------------------------- claims


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        pytest.param(user_claims(iss="https://evil.test"), "invalid_iss", id="wrong-iss"),
        pytest.param(user_claims(iss=DROP), "missing_claim", id="no-iss"),
        pytest.param(user_claims(aud="other-api"), "invalid_aud", id="wrong-aud"),
        pytest.param(user_claims(aud=["a", "b"]), "invalid_aud", id="wrong-aud-list"),
        pytest.param(user_claims(aud=[]), "invalid_aud", id="empty-aud-list"),
        pytest.param(user_claims(aud=DROP), "missing_claim", id="no-aud"),
        pytest.param(user_claims(exp=DROP), "missing_claim", id="no-exp"),
        pytest.param(user_claims(exp=str(NOW + 600)), "invalid_exp", id="string-exp"),
        pytest.param(user_claims(iat=DROP), "missing_claim", id="no-iat"),
        pytest.param(user_claims(sub=DROP), "missing_claim", id="no-sub"),
        pytest.param(user_claims(sub=""), "invalid_sub", id="empty-sub"),
        pytest.param(user_claims(jti=DROP), "missing_claim", id="no-jti"),
        pytest.param(user_claims(roles="hr_admin"), "invalid_claim", id="roles-not-list"),
        pytest.param(user_claims(companies=[1]), "invalid_claim", id="companies-not-str"),
        pytest.param(user_claims(scope=["a"]), "invalid_claim", id="scope-not-str"),
        pytest.param(user_claims(tid=""), "invalid_claim", id="empty-tid"),
    ],
)
async def test_bad_claims_are_rejected(
    verifier: TokenVerifier, claims: dict[str, Any], reason: str
) -> None:
    assert await reject(verifier, sign(claims)) == reason


@pytest.mark.parametrize(
    ("claim", "offset", "reason"),
    [
        ("exp", -29, None),
        ("exp", -30, "expired"),
        ("exp", -3600, "expired"),
        ("nbf", 30, None),
        ("nbf", 31, "invalid_nbf"),
        ("nbf", 3600, "invalid_nbf"),
        ("iat", 30, None),
        ("iat", 31, "invalid_iat"),
        ("iat", 3600, "invalid_iat"),
    ],
)
async def test_time_claims_honour_leeway(
    verifier: TokenVerifier, claim: str, offset: int, reason: str | None
) -> None:
    claims = user_claims(**{claim: NOW + offset})
    if claim != "exp":
        claims["exp"] = NOW + offset + 600
    token = sign(claims)

    if reason is None:
        assert (await verifier.verify(token)).subject == "user-1"
    else:
        assert await reject(verifier, token) == reason


# --------------------------------------------------------------------------- tampering & garbage


async def test_tampered_payload_is_rejected(verifier: TokenVerifier) -> None:
    header, payload, signature = sign(user_claims()).split(".")
    claims = json.loads(unb64url(payload))
    claims["roles"] = ["owner"]
    claims["tid"] = "tenant-2"
    tampered = f"{header}.{b64url_json(claims)}.{signature}"

    assert await reject(verifier, tampered) == "bad_signature"


async def test_tampered_signature_is_rejected(verifier: TokenVerifier) -> None:
    header, payload, signature = sign(user_claims()).split(".")
    raw = bytearray(unb64url(signature))
    raw[10] ^= 0x01
    other = sign(user_claims(sub="user-2")).split(".")[2]

    for bad in (b64url(bytes(raw)), signature[:-4], signature + "AAAA", other, ""):
        assert await reject(verifier, f"{header}.{payload}.{bad}") == "bad_signature"


async def test_signature_by_unpublished_key_under_known_kid_is_rejected(
    verifier: TokenVerifier,
) -> None:
    token = sign(user_claims(), UNPUBLISHED, kid=KEY_A.kid)
    assert await reject(verifier, token) == "bad_signature"


async def test_oversized_token_is_rejected_before_any_fetch(
    verifier: TokenVerifier, jwks: JwksState
) -> None:
    token = sign(user_claims(padding="x" * 8192))
    assert len(token) > 8192

    assert await reject(verifier, token) == "too_large"
    assert await reject(verifier, "a" * 8193) == "too_large"
    assert await reject(verifier, "a" * 8192) == "malformed"
    assert jwks.hits == 0


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "a.b",
        "a.b.c.d",
        "...",
        "..",
        "!!!.!!!.!!!",
        "é.é.é",
        f"{b64url(b'not json')}.e30.",
        f"{b64url_json([1, 2])}.e30.",
        f"{b64url_json('ES256')}.e30.",
        f"{b64url_json({'alg': 'ES256', 'kid': 'key-a'})}=.e30.",
        f"{b64url_json({'alg': 'ES256', 'kid': 'key-a'})[:-1]}*.e30.",
        f"{b64url_json({'alg': 'ES256', 'kid': 'key-a'})}.!!!.AAAA",
        f"{b64url_json({'alg': 'ES256', 'kid': 'key-a'})}.{b64url(b'not json')}.AAAA",
        f"{b64url_json({'alg': 'ES256', 'kid': 7})}.e30.",
        f"{b64url_json({'alg': ['ES256'], 'kid': 'key-a'})}.e30.",
    ],
)
async def test_garbage_is_rejected(verifier: TokenVerifier, token: str) -> None:
    await reject(verifier, token)


async def test_unsigned_garbage_payload_with_valid_header_is_rejected(
    verifier: TokenVerifier,
) -> None:
    header, _, signature = sign(user_claims()).split(".")
    for payload in (b64url(b"not json"), b64url_json([1]), b64url_json("x")):
        await reject(verifier, f"{header}.{payload}.{signature}")


# --------------------------------------------------------------------------- require_tenant


def _principal(**overrides: Any) -> Principal:
    fields: dict[str, Any] = {
        "subject": "user-1",
        "tenant_id": "tenant-1",
        "roles": frozenset(),
        "companies": frozenset(),
        "scopes": frozenset(),
        "amr": (),
        "session_id": None,
        "token_id": "jti",
        "client_id": None,
        "is_service": False,
        "expires_at": NOW,
    }
    return Principal(**{**fields, **overrides})


def test_require_tenant() -> None:
    require_tenant(_principal(), "tenant-1")
    with pytest.raises(Forbidden):
        require_tenant(_principal(), "tenant-2")
    with pytest.raises(Forbidden):
        require_tenant(_principal(tenant_id=None), "tenant-1")
    service = _principal(tenant_id=None, client_id="svc", is_service=True)
    require_tenant(service, "tenant-2")


def test_empty_requirements_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one role"):
        require_roles()
    with pytest.raises(ValueError, match="at least one scope"):
        require_scopes()


# --------------------------------------------------------------------------- FastAPI


@pytest.fixture
async def api(verifier: TokenVerifier) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.state.token_verifier = verifier
    app.state.tenant_gate = active_tenant

    @app.exception_handler(ApiError)
    async def render(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        body = envelope(exc.code, exc.message, exc.details)
        return JSONResponse(body, status_code=exc.status, headers=exc.headers)

    @app.get("/me")
    async def me(caller: CurrentPrincipal, request: Request) -> dict[str, Any]:
        assert request.state.principal is caller
        return {"sub": caller.subject, "service": caller.is_service}

    @app.get("/admin")
    async def admin(caller: HrAdmin) -> dict[str, str]:
        return {"sub": caller.subject}

    @app.get("/internal")
    async def internal(caller: ReportsService) -> dict[str, str]:
        return {"sub": caller.subject}

    @app.get("/settings")
    async def settings(caller: UserOrReader) -> dict[str, str]:
        return {"sub": caller.subject}

    @app.get("/contract")
    async def contract(caller: OwnerOrOperator) -> dict[str, str]:
        return {"sub": caller.subject}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        yield client


def bearer(token: str, scheme: str = "Bearer") -> dict[str, str]:
    return {"Authorization": f"{scheme} {token}"}


async def test_api_accepts_valid_token(api: httpx.AsyncClient) -> None:
    for scheme in ("Bearer", "bearer", "BEARER"):
        response = await api.get("/me", headers=bearer(sign(user_claims()), scheme))
        assert response.status_code == 200
        assert response.json() == {"sub": "user-1", "service": False}


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-header"),
        pytest.param({"Authorization": ""}, id="empty"),
        pytest.param({"Authorization": "Bearer"}, id="scheme-only"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, id="basic"),
        pytest.param({"Authorization": "Token abc"}, id="other-scheme"),
    ],
)
async def test_api_401_without_token(api: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await api.get("/me", headers=headers)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_api_401_with_two_tokens(api: httpx.AsyncClient) -> None:
    token = sign(user_claims())
    response = await api.get("/me", headers={"Authorization": f"Bearer {token} {token}"})
    assert response.status_code == 401

    two_headers = [("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")]
    response = await api.get("/me", headers=two_headers)
    assert response.status_code == 401


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(sign(user_claims(iss="https://evil.test")), id="wrong-iss"),
        pytest.param(sign(user_claims(), UNPUBLISHED, kid=KEY_A.kid), id="bad-signature"),
        pytest.param(
            hs256({"alg": "HS256", "kid": "key-a"}, user_claims(), b"secret-ish"), id="hs256"
        ),
        pytest.param("not-a-jwt", id="garbage"),
    ],
)
async def test_api_401_with_bad_token_does_not_echo_it(api: httpx.AsyncClient, token: str) -> None:
    response = await api.get("/me", headers=bearer(token))

    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Invalid access token."
    assert token not in response.text
    for part in token.split("."):
        if len(part) > 8:
            assert part not in response.text


async def test_api_401_says_expired(api: httpx.AsyncClient) -> None:
    token = sign(user_claims(iat=NOW - 4000, exp=NOW - 3000))
    response = await api.get("/me", headers=bearer(token))

    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Access token expired."
    assert token not in response.text


async def test_api_503_when_no_keys_can_be_loaded(api: httpx.AsyncClient, jwks: JwksState) -> None:
    jwks.status = 500
    response = await api.get("/me", headers=bearer(sign(user_claims())))

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"


async def test_api_roles(api: httpx.AsyncClient) -> None:
    ok = await api.get("/admin", headers=bearer(sign(user_claims(roles=["viewer", "owner"]))))
    assert ok.status_code == 200
    assert ok.json() == {"sub": "user-1"}

    wrong = await api.get("/admin", headers=bearer(sign(user_claims(roles=["viewer"]))))
    assert wrong.status_code == 403
    assert wrong.json()["error"]["code"] == "forbidden"

    none = await api.get("/admin", headers=bearer(sign(user_claims(roles=DROP))))
    assert none.status_code == 403

    anonymous = await api.get("/admin")
    assert anonymous.status_code == 401


async def test_api_service_token_never_passes_roles(api: httpx.AsyncClient) -> None:
    token = sign(service_claims(roles=["hr_admin", "owner"]))
    response = await api.get("/admin", headers=bearer(token))
    assert response.status_code == 403


async def test_api_scopes(api: httpx.AsyncClient) -> None:
    ok = await api.get("/internal", headers=bearer(sign(service_claims())))
    assert ok.status_code == 200
    assert ok.json() == {"sub": "svc-reports"}

    partial = sign(service_claims(scope="reports:read"))
    assert (await api.get("/internal", headers=bearer(partial))).status_code == 403

    no_scope = sign(service_claims(scope=DROP))
    assert (await api.get("/internal", headers=bearer(no_scope))).status_code == 403

    # A user token never passes a scope check, even carrying the scopes.
    user_with_scopes = sign(user_claims(scope="reports:read reports:write"))
    assert (await api.get("/internal", headers=bearer(user_with_scopes))).status_code == 403

    assert (await api.get("/internal")).status_code == 401


async def test_api_without_configured_verifier_fails_closed() -> None:
    app = FastAPI()

    @app.get("/me")
    async def me(caller: CurrentPrincipal) -> dict[str, str]:
        return {"sub": caller.subject}

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        response = await client.get("/me", headers=bearer(sign(user_claims())))
    assert response.status_code == 500


async def test_api_refuses_an_unexpired_token_of_an_ended_tenant(api: httpx.AsyncClient) -> None:
    token = sign(user_claims(tid=ENDED_TENANT, roles=["owner"]))
    for path in ("/me", "/admin", "/settings"):
        response = await api.get(path, headers=bearer(token))
        assert response.status_code == 401, path
        assert response.json()["error"]["message"] == "The tenant's contract has ended."
    # A service token has no tenant: the gate does not apply.
    assert (await api.get("/internal", headers=bearer(sign(service_claims())))).status_code == 200


async def test_api_without_configured_tenant_gate_fails_closed(verifier: TokenVerifier) -> None:
    app = FastAPI()
    app.state.token_verifier = verifier

    @app.get("/me")
    async def me(caller: CurrentPrincipal) -> dict[str, str]:
        return {"sub": caller.subject}

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        assert (await client.get("/me", headers=bearer(sign(user_claims())))).status_code == 500
        # Service tokens carry no tenant and do not need the gate.
        assert (await client.get("/me", headers=bearer(sign(service_claims())))).status_code == 200


async def test_api_user_or_service_with_scope(api: httpx.AsyncClient) -> None:
    assert (await api.get("/settings", headers=bearer(sign(user_claims())))).status_code == 200
    reader = sign(service_claims(scope="reports:read"))
    assert (await api.get("/settings", headers=bearer(reader))).status_code == 200
    other = sign(service_claims(scope="reports:write"))
    assert (await api.get("/settings", headers=bearer(other))).status_code == 403


async def test_api_operator_passes_a_role_gate_only_with_mfa(api: httpx.AsyncClient) -> None:
    with_mfa = sign(user_claims(roles=["operator"], amr=["pwd", "otp", "mfa"]))
    assert (await api.get("/contract", headers=bearer(with_mfa))).status_code == 200
    password_only = sign(user_claims(roles=["operator"], amr=["pwd"]))
    refused = await api.get("/contract", headers=bearer(password_only))
    assert refused.status_code == 403
    assert "second factor" in refused.json()["error"]["message"]
    # The other role passes without MFA (the tenant's own policy decides that).
    owner = sign(user_claims(roles=["owner"], amr=["pwd"]))
    assert (await api.get("/contract", headers=bearer(owner))).status_code == 200


def test_openapi_documents_who_may_call_each_route() -> None:
    spec = ServiceSpec("reports", "/reports", "Reports")
    router = service_router(spec)

    @router.get("/v1/any")
    async def any_caller(caller: CurrentPrincipal) -> dict[str, str]:
        return {}

    @router.get("/v1/owner")
    async def owner(caller: OwnerOrOperator) -> dict[str, str]:
        return {}

    @router.get("/v1/settings")
    async def settings(caller: UserOrReader) -> dict[str, str]:
        return {}

    @router.get("/v1/internal")
    async def internal(caller: ReportsService) -> dict[str, str]:
        return {}

    @router.get("/v1/public")
    async def public() -> dict[str, str]:
        return {}

    schema = create_app(spec, routers=[router]).openapi()
    security = {path: item["get"].get("security") for path, item in schema["paths"].items()}
    assert security["/reports/v1/any"] == [{"user": []}, {"service": []}]
    assert security["/reports/v1/owner"] == [{"user": ["operator"]}, {"user": ["owner"]}]
    assert security["/reports/v1/settings"] == [{"user": []}, {"service": ["reports:read"]}]
    assert security["/reports/v1/internal"] == [{"service": ["reports:read", "reports:write"]}]
    assert security["/reports/v1/public"] is None
    schemes = schema["components"]["securitySchemes"]
    assert schemes["user"]["scheme"] == "bearer"
    flow = schemes["service"]["flows"]["clientCredentials"]
    assert set(flow["scopes"]) == {"reports:read", "reports:write"}
