"""Access-token verification for every service except identity, which signs them.

Identity signs ES256 JWTs with a ``kid`` header and publishes its public keys as a JWKS; the
other services verify locally against a cached copy of that set. Two rules keep this safe:

* The algorithm allow-list is exactly ``ES256`` and the verification key is always a typed
  P-256 :class:`ECKey`, never a key set or raw bytes, so a token cannot choose ``none`` or get
  the public key used as an HMAC secret.
* ``joserfc.jwt.decode`` checks only the signature; every claim is validated explicitly here.

Tokens, claims and reasons that would help an attacker never reach logs or response bodies.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Protocol

import httpx
from fastapi import Depends, Request
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import ECKey

from jinji.errors import Forbidden, ServiceUnavailable, Unauthorized

__all__ = [
    "CurrentPrincipal",
    "CurrentUser",
    "InvalidToken",
    "JwksCache",
    "KeySource",
    "OperatorPrincipal",
    "Principal",
    "TokenVerifier",
    "bearer_token",
    "openapi_security",
    "principal",
    "require_operator",
    "require_roles",
    "require_scopes",
    "require_tenant",
    "require_user",
]

logger = logging.getLogger(__name__)

_ALG = "ES256"
_CURVE = "P-256"
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
# Reason codes for claims joserfc names in its errors; anything else collapses to one code.
_REGISTERED_CLAIMS = frozenset({"iss", "sub", "aud", "exp", "nbf", "iat", "jti"})
# The only rejection reason worth telling a client: it should refresh rather than re-login.
_CLIENT_VISIBLE_REASONS = {"expired": "Access token expired."}


class InvalidToken(Exception):
    """The token must not be accepted. ``reason`` is a short code for logs and metrics."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------- JWKS


class KeySource(Protocol):
    """Where verification keys come from: identity's JWKS over HTTP for every other service
    (:class:`JwksCache`), identity's own key table for identity itself."""

    @property
    def has_keys(self) -> bool: ...

    async def get(self, kid: str) -> ECKey | None: ...


class JwksCache:
    """Identity's signing keys, fetched lazily and refetched sparingly.

    An unknown ``kid`` triggers a refetch (that is how a rotated-in key is learned), but at most
    one attempt per ``min_refetch_interval_s``: otherwise any client could make every service
    hammer identity by sending tokens with random kids. The set is also refreshed once it is
    older than ``max_age_s`` so that a key identity has withdrawn stops being trusted without
    restarting every service. A failed fetch keeps the previous set: an identity outage must not
    turn into every service rejecting every token.

    Request timeouts are those of ``http``; keep them short, callers wait on a fetch.
    """

    def __init__(
        self,
        jwks_url: str,
        http: httpx.AsyncClient,
        *,
        min_refetch_interval_s: float = 30.0,
        max_age_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = jwks_url
        self._http = http
        self._min_refetch_interval_s = min_refetch_interval_s
        self._max_age_s = max_age_s
        self._clock = clock
        self._keys: dict[str, ECKey] = {}
        self._loaded_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()

    @property
    def has_keys(self) -> bool:
        return bool(self._keys)

    async def get(self, kid: str) -> ECKey | None:
        key = self._keys.get(kid)
        # While another caller refreshes a stale set, the current one is still good enough;
        # only callers that cannot proceed without the refresh wait for it.
        if key is not None and (self._is_fresh() or self._lock.locked()):
            return key
        async with self._lock:
            # Whoever held the lock may just have fetched; that fetch counts for us too.
            key = self._keys.get(kid)
            if (key is None or not self._is_fresh()) and self._may_fetch():
                await self._refresh()
                key = self._keys.get(kid)
            return key

    def _is_fresh(self) -> bool:
        return self._loaded_at is not None and self._clock() - self._loaded_at < self._max_age_s

    def _may_fetch(self) -> bool:
        return (
            self._attempted_at is None
            or self._clock() - self._attempted_at >= self._min_refetch_interval_s
        )

    async def _refresh(self) -> None:
        self._attempted_at = self._clock()
        try:
            response = await self._http.get(self._url, headers={"Accept": "application/json"})
            response.raise_for_status()
            keys = _parse_jwks(response.json())
        # Broad on purpose: whatever goes wrong, the previous set stays in use (see class doc).
        except Exception as exc:
            logger.warning(
                "JWKS fetch failed; keeping the previous key set",
                extra={"jwks_url": self._url, "error": type(exc).__name__},
            )
            return
        if not keys:
            # An issuer with no usable key is a misconfiguration, not a revocation of all keys.
            logger.warning(
                "JWKS has no usable ES256 P-256 key; keeping the previous key set",
                extra={"jwks_url": self._url},
            )
            return
        self._keys = keys
        self._loaded_at = self._clock()


def _parse_jwks(doc: object) -> dict[str, ECKey]:
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise ValueError("not a JWK Set")
    keys: dict[str, ECKey] = {}
    for entry in doc["keys"]:
        key = _import_verification_key(entry)
        if key is None:
            continue
        kid = str(key.kid)
        if kid in keys:
            # Two keys under one kid would make the choice of key ambiguous; the first wins,
            # as in joserfc's KeySet.
            logger.warning("JWKS repeats a kid; using the first key", extra={"kid": kid})
            continue
        keys[kid] = key
    return keys


def _import_verification_key(entry: object) -> ECKey | None:
    """The public half of a P-256 signing key, or None for anything we must not verify with."""
    if not isinstance(entry, dict):
        return None
    if entry.get("kty") != "EC" or entry.get("crv") != _CURVE:
        return None
    if entry.get("alg") not in (None, _ALG) or entry.get("use") not in (None, "sig"):
        return None
    key_ops = entry.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        return None
    kid, x, y = entry.get("kid"), entry.get("x"), entry.get("y")
    if not (isinstance(kid, str) and kid and isinstance(x, str) and isinstance(y, str)):
        return None
    if "d" in entry:
        logger.warning("JWKS publishes private key material; ignoring it", extra={"kid": kid})
    try:
        # Rebuilt from the public members only, pinned to ES256, so nothing else in the
        # published entry can widen what the key is accepted for.
        return ECKey.import_key(
            {"kty": "EC", "crv": _CURVE, "x": x, "y": y},
            {"kid": kid, "alg": _ALG, "use": "sig"},
        )
    except (JoseError, ValueError, TypeError):
        return None


# --------------------------------------------------------------------------- verification


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    tenant_id: str | None
    roles: frozenset[str]
    companies: frozenset[str]
    scopes: frozenset[str]
    amr: tuple[str, ...]
    session_id: str | None
    token_id: str
    client_id: str | None
    # A client_credentials token: another service acting for itself, not a user.
    is_service: bool
    expires_at: int


class TokenVerifier:
    def __init__(
        self,
        jwks: KeySource,
        *,
        issuer: str,
        audience: str,
        leeway_s: int = 30,
        max_token_bytes: int = 8192,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._jwks = jwks
        self._issuer = issuer
        self._audience = audience
        self._leeway_s = leeway_s
        self._max_token_bytes = max_token_bytes
        self._clock = clock
        # Built once (a few % of a request's CPU when built per token); it reads the clock at
        # each validation.
        self._claims_registry = jwt.JWTClaimsRegistry(
            now=lambda: int(self._clock()),
            leeway=self._leeway_s,
            iss={"essential": True, "value": self._issuer},
            aud={"essential": True, "value": self._audience},
            exp={"essential": True},
            iat={"essential": True},
            sub={"essential": True},
            jti={"essential": True},
        )

    async def verify(self, token: str) -> Principal:
        # Size first: everything after this costs CPU, and an unknown kid even a fetch.
        if len(token) > self._max_token_bytes:
            raise InvalidToken("too_large")
        # ASCII only, so the character count above is also the byte count.
        if not token.isascii():
            raise InvalidToken("malformed")
        parts = token.split(".")
        if len(parts) != 3:
            raise InvalidToken("malformed")
        header = _decode_header(parts[0])
        # Checked before any key is looked up, so a foreign alg never meets a key at all.
        if header.get("alg") != _ALG:
            raise InvalidToken("unsupported_alg")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("missing_kid")
        key = await self._jwks.get(kid)
        if key is None:
            # With no keys at all nothing can be verified: that is our outage, not a bad token.
            raise InvalidToken("unknown_kid" if self._jwks.has_keys else "keys_unavailable")
        try:
            claims = jwt.decode(token, key, algorithms=[_ALG]).claims
        except BadSignatureError:
            raise InvalidToken("bad_signature") from None
        except (JoseError, ValueError, TypeError):
            raise InvalidToken("malformed") from None
        self._validate_registered_claims(claims)
        return _principal_from_claims(claims)

    def _validate_registered_claims(self, claims: dict[str, Any]) -> None:
        registry = self._claims_registry
        # nbf is optional; joserfc validates it (with the same leeway) whenever it is present.
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise InvalidToken("expired") from None
        except MissingClaimError:
            raise InvalidToken("missing_claim") from None
        except InvalidClaimError as exc:
            claim = exc.claim if exc.claim in _REGISTERED_CLAIMS else "claim"
            raise InvalidToken(f"invalid_{claim}") from None


def _decode_header(segment: str) -> dict[str, Any]:
    try:
        header = json.loads(_b64url_decode(segment))
    except (ValueError, UnicodeDecodeError):
        raise InvalidToken("malformed") from None
    if not isinstance(header, dict):
        raise InvalidToken("malformed")
    return header


def _b64url_decode(segment: str) -> bytes:
    # The stdlib decoder silently skips characters outside the alphabet; a token must not.
    if not _B64URL.fullmatch(segment):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except binascii.Error as exc:
        raise ValueError("not base64url") from exc


def _principal_from_claims(claims: dict[str, Any]) -> Principal:
    tenant_id = _optional_str(claims, "tid")
    client_id = _optional_str(claims, "client_id")
    scope = claims.get("scope", "")
    if not isinstance(scope, str):
        raise InvalidToken("invalid_claim")
    return Principal(
        subject=_required_str(claims, "sub"),
        tenant_id=tenant_id,
        roles=frozenset(_str_list(claims, "roles")),
        companies=frozenset(_str_list(claims, "companies")),
        scopes=frozenset(scope.split()),
        amr=tuple(_str_list(claims, "amr")),
        session_id=_optional_str(claims, "sid"),
        token_id=_required_str(claims, "jti"),
        client_id=client_id,
        is_service=tenant_id is None and client_id is not None,
        expires_at=int(claims["exp"]),
    )


def _required_str(claims: dict[str, Any], name: str) -> str:
    value = _optional_str(claims, name)
    if value is None:
        raise InvalidToken("missing_claim")
    return value


def _optional_str(claims: dict[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    # An empty tid or client_id would blur the user/service distinction; refuse it outright.
    if not isinstance(value, str) or not value:
        raise InvalidToken("invalid_claim")
    return value


def _str_list(claims: dict[str, Any], name: str) -> list[str]:
    value = claims.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidToken("invalid_claim")
    return value


# --------------------------------------------------------------------------- FastAPI


def bearer_token(request: Request) -> str | None:
    """The token of a single ``Authorization: Bearer <token>`` header, else None."""
    values = request.headers.getlist("authorization")
    if len(values) != 1:
        return None
    parts = values[0].split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        return None
    return parts[1]


# How OpenAPI names the two kinds of access token (``components.securitySchemes``): a user's,
# whose requirement lists role names (OpenAPI 3.1 allows role names for non-OAuth schemes), and
# a service client's from the client-credentials grant, whose requirement lists scopes.
USER_SCHEME = "user"
SERVICE_SCHEME = "service"
Security = list[dict[str, list[str]]]


class _Authenticated:
    """The verified caller; also left on ``request.state.principal`` for logging and audit.

    A user's tenant must still be active: a terminated tenant's unexpired token reaches
    nothing (CLD8.1.5), in every service, from the moment the termination is recorded.
    """

    # Any valid token, a user's or a service's; routes narrow it with a gate below.
    openapi_security: ClassVar[Security] = [{USER_SCHEME: []}, {SERVICE_SCHEME: []}]

    async def __call__(self, request: Request) -> Principal:
        verifier = getattr(request.app.state, "token_verifier", None)
        if not isinstance(verifier, TokenVerifier):
            # A wiring mistake must fail closed and loudly, not look like a bad token.
            raise RuntimeError("app.state.token_verifier is not configured")
        token = bearer_token(request)
        if token is None:
            raise Unauthorized()
        try:
            verified = await verifier.verify(token)
        except InvalidToken as exc:
            if exc.reason == "keys_unavailable":
                raise ServiceUnavailable("Access tokens cannot be verified right now.") from None
            logger.info("access token rejected", extra={"reason": exc.reason})
            message = _CLIENT_VISIBLE_REASONS.get(exc.reason, "Invalid access token.")
            raise Unauthorized(message) from None
        if verified.tenant_id is not None:
            gate = getattr(request.app.state, "tenant_gate", None)
            if gate is None:
                raise RuntimeError("app.state.tenant_gate is not configured")
            if not await gate(verified.tenant_id):
                logger.info("access token of an inactive tenant rejected")
                raise Unauthorized("The tenant's contract has ended.")
        request.state.principal = verified
        return verified


principal = _Authenticated()
CurrentPrincipal = Annotated[Principal, Depends(principal)]

PrincipalDependency = Callable[[Principal], Coroutine[Any, Any, Principal]]


class _Gate:
    """Who may call a route, checked on the verified caller and documented in OpenAPI.

    ``roles``: users holding ANY of them; an empty set: any signed-in user; None: no user.
    ``scopes``: service tokens holding ALL of them; None: no service. Roles are user grants
    and scopes service grants: a token never borrows the other kind. A user passing only as
    ``operator`` (provider staff) must have signed in with a second factor (9.4.4).
    """

    def __init__(self, roles: frozenset[str] | None, scopes: frozenset[str] | None) -> None:
        self.roles = roles
        self.scopes = scopes
        # OpenAPI requirements are OR-ed: one per role, one for the service scopes.
        security: Security = []
        if roles is not None:
            security += [{USER_SCHEME: [role]} for role in sorted(roles)] or [{USER_SCHEME: []}]
        if scopes is not None:
            security.append({SERVICE_SCHEME: sorted(scopes)})
        self.openapi_security = security

    async def __call__(self, caller: CurrentPrincipal) -> Principal:
        if caller.is_service:
            if self.scopes is None or not self.scopes <= caller.scopes:
                raise Forbidden("Missing required scope.")
            return caller
        if self.roles is None:
            raise Forbidden("Only service clients may do this.")
        if self.roles:
            held = caller.roles & self.roles
            if not held:
                raise Forbidden("Missing required role.")
            if held == {"operator"} and "mfa" not in caller.amr:
                raise Forbidden("Operator actions need a session signed in with a second factor.")
        return caller


def require_roles(*roles: str) -> PrincipalDependency:
    """A dependency passing users that hold ANY of ``roles`` (``operator`` only with MFA)."""
    if not roles:
        raise ValueError("require_roles() needs at least one role")
    return _Gate(frozenset(roles), None)


def require_scopes(*scopes: str) -> PrincipalDependency:
    """A dependency passing service tokens that hold ALL of ``scopes``."""
    if not scopes:
        # An empty requirement would pass everyone, which is never what a caller meant.
        raise ValueError("require_scopes() needs at least one scope")
    return _Gate(None, frozenset(scopes))


def require_user(*, or_scopes: tuple[str, ...] = ()) -> PrincipalDependency:
    """A dependency passing any signed-in user (and, with ``or_scopes``, service tokens
    holding all of them); the route narrows further by tenant or role itself."""
    return _Gate(frozenset(), frozenset(or_scopes) if or_scopes else None)


# Provider staff (role ``operator``, which only the platform tenant can hold), signed in with MFA.
require_operator = require_roles("operator")
OperatorPrincipal = Annotated[Principal, Depends(require_operator)]
CurrentUser = Annotated[Principal, Depends(require_user())]


def openapi_security(dependencies: list[object]) -> Security | None:
    """What OpenAPI says a route's caller must be, from all its dependencies: a gate's
    requirement, else "any valid token" if it needs the caller; None if it needs no token."""
    gates = [
        call for call in dependencies if hasattr(call, "openapi_security") and call is not principal
    ]
    if gates:
        return list(gates[0].openapi_security)
    if any(call is principal for call in dependencies):
        return list(principal.openapi_security)
    return None


def require_tenant(principal: Principal, tenant_id: str) -> None:
    """Forbid a user acting on a tenant other than the one in their token.

    Service tokens carry no tenant and are authorised by scope instead, so they pass. Operators
    of the reserved "platform" tenant must be let through by the caller before calling this.
    """
    if principal.is_service:
        return
    if principal.tenant_id is None or principal.tenant_id != tenant_id:
        raise Forbidden("Not allowed for this tenant.")
