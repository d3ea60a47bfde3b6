"""Login, token and discovery endpoints (thin: the flow lives in login.py and sessions.py)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import uuid
from typing import Annotated, Any, Literal

from fastapi import Cookie, Form, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from jinji.errors import ApiError
from jinji.tokens import InvalidToken
from jinji.web import service_router
from services.identity import audit, login, passwords, sessions
from services.identity.context import IdentityDep
from services.identity.issuing import access_token, service_token
from services.identity.tables import service_clients, tenants, users
from services.registry import SPECS

router = service_router(SPECS["identity"])
REFRESH_COOKIE = "jinji_refresh"
TOKEN_PATH = f"{SPECS['identity'].prefix}/oauth2/token"

Slug = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9][a-z0-9-]*$")]


class LoginIn(BaseModel):
    tenant: Slug
    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)
    client: Literal["api", "browser"] = "api"


class ChallengeIn(BaseModel):
    challenge_token: str = Field(min_length=1, max_length=200)
    new_password: str | None = Field(default=None, max_length=1024)
    code: str | None = Field(default=None, max_length=16)
    recovery_code: str | None = Field(default=None, max_length=32)
    client: Literal["api", "browser"] = "api"


class EnrollIn(BaseModel):
    challenge_token: str = Field(min_length=1, max_length=200)


# Requests whose peer address is unknown share one throttling bucket.
_UNKNOWN_PEER = str(ipaddress.IPv4Address(0))


def client_ip(request: Request) -> str:
    host = request.client.host if request.client else ""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return _UNKNOWN_PEER


def _set_refresh_cookie(response: Response, token: str, secure: bool) -> None:
    response.set_cookie(
        REFRESH_COOKIE,
        token,
        httponly=True,
        secure=secure,
        samesite="strict",
        path=TOKEN_PATH,
    )


def step_response(
    step: login.Tokens | login.Challenge, client: str, secure_cookie: bool
) -> JSONResponse:
    if isinstance(step, login.Challenge):
        return JSONResponse(
            {
                "challenge": step.kind,
                "challenge_token": step.token,
                "expires_in": step.expires_in,
            }
        )
    body: dict[str, Any] = {
        "access_token": step.access_token,
        "token_type": "Bearer",
        "expires_in": step.expires_in,
    }
    if client == "api":
        body["refresh_token"] = step.refresh_token
    if step.recovery_codes is not None:
        body["recovery_codes"] = step.recovery_codes
    response = JSONResponse(body)
    if client == "browser":
        # Never readable by page scripts; sent only to the token endpoint.
        _set_refresh_cookie(response, step.refresh_token, secure_cookie)
    return response


@router.get("/.well-known/openid-configuration", tags=["discovery"])
async def discovery(ctx: IdentityDep) -> dict[str, Any]:
    issuer = ctx.settings.issuer
    return {
        "issuer": issuer,
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "token_endpoint": f"{issuer}/oauth2/token",
        "revocation_endpoint": f"{issuer}/oauth2/revoke",
        "introspection_endpoint": f"{issuer}/oauth2/introspect",
        "grant_types_supported": ["refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "subject_types_supported": ["public"],
        "response_types_supported": ["token"],
        "scim_endpoint": f"{issuer}/scim/v2",
    }


@router.get("/.well-known/jwks.json", tags=["discovery"])
async def jwks(ctx: IdentityDep) -> JSONResponse:
    return JSONResponse(await ctx.keyring.jwks(), headers={"Cache-Control": "public, max-age=60"})


@router.post("/v1/login", tags=["login"])
async def post_login(body: LoginIn, request: Request, ctx: IdentityDep) -> JSONResponse:
    step = await login.login(
        ctx,
        tenant=body.tenant,
        username=body.username,
        password=body.password,
        source_ip=client_ip(request),
    )
    return step_response(step, body.client, ctx.settings.refresh_cookie_secure)


@router.post("/v1/login/challenge", tags=["login"])
async def post_challenge(body: ChallengeIn, request: Request, ctx: IdentityDep) -> JSONResponse:
    step = await login.answer(
        ctx,
        challenge_token=body.challenge_token,
        source_ip=client_ip(request),
        new_password=body.new_password,
        code=body.code,
        recovery_code=body.recovery_code,
    )
    return step_response(step, body.client, ctx.settings.refresh_cookie_secure)


@router.post("/v1/login/challenge/totp", tags=["login"])
async def post_challenge_totp(body: EnrollIn, ctx: IdentityDep) -> dict[str, str]:
    enrollment = await login.start_enrollment(ctx, challenge_token=body.challenge_token)
    return {
        "secret": enrollment.secret,
        "otpauth_uri": enrollment.otpauth_uri,
        "qr_svg": enrollment.qr_svg,
    }


class InvalidGrant(ApiError):
    def __init__(self) -> None:
        super().__init__(400, "invalid_grant", "The grant is invalid, expired or revoked.")


class InvalidClient(ApiError):
    def __init__(self) -> None:
        super().__init__(
            401,
            "invalid_client",
            "Client authentication failed.",
            headers={"WWW-Authenticate": 'Basic realm="jinji"'},
        )


@router.post("/oauth2/token", tags=["oauth2"])
async def token(
    request: Request,
    ctx: IdentityDep,
    grant_type: Annotated[str, Form(max_length=64)],
    refresh_token: Annotated[str | None, Form(max_length=200)] = None,
    scope: Annotated[str | None, Form(max_length=1024)] = None,
    audience: Annotated[str | None, Form(max_length=128)] = None,
    client_id: Annotated[str | None, Form(max_length=128)] = None,
    client_secret: Annotated[str | None, Form(max_length=256)] = None,
    cookie_token: Annotated[str | None, Cookie(alias=REFRESH_COOKIE)] = None,
) -> JSONResponse:
    if grant_type == "refresh_token":
        return await _refresh_grant(ctx, request, refresh_token, cookie_token)
    if grant_type == "client_credentials":
        cid, secret = _client_credentials(request, client_id, client_secret)
        return await _client_credentials_grant(ctx, cid, secret, audience, scope)
    raise ApiError(400, "unsupported_grant_type", "Supported: refresh_token, client_credentials.")


async def _refresh_grant(
    ctx: IdentityDep, request: Request, body_token: str | None, cookie_token: str | None
) -> JSONResponse:
    presented = body_token or cookie_token
    if not presented:
        raise InvalidGrant()
    async with ctx.db.transaction() as s:
        try:
            refreshed = await sessions.rotate(s, presented, ctx.now())
        except sessions.RefreshRejected as exc:
            if exc.reason == "reuse":
                await audit.record(
                    s,
                    "refresh.reuse_detected",
                    outcome="failure",
                    target=("session", str(exc.session_id)),
                    source_ip=client_ip(request),
                )
            refreshed = None
        user = None
        if refreshed is not None:
            user = (
                await s.execute(
                    select(users.c.roles, users.c.companies)
                    .join(tenants, tenants.c.id == users.c.tenant_id)
                    .where(
                        users.c.id == refreshed.user_id,
                        users.c.status == "active",
                        tenants.c.status == "active",
                    )
                )
            ).first()
            if user is None:
                await sessions.revoke(s, refreshed.session_id, "account_inactive", ctx.now())
    # Committed above even when refused: a detected reuse must revoke the session for good.
    if refreshed is None or user is None:
        raise InvalidGrant()
    access, expires_in = await access_token(
        ctx,
        user_id=refreshed.user_id,
        tenant_id=refreshed.tenant_id,
        roles=user.roles,
        companies=user.companies,
        amr=refreshed.amr,
        session_id=refreshed.session_id,
        grant="refresh_token",
    )
    body = {"access_token": access, "token_type": "Bearer", "expires_in": expires_in}
    if cookie_token and not body_token:
        response = JSONResponse(body)
        _set_refresh_cookie(response, refreshed.refresh_token, ctx.settings.refresh_cookie_secure)
        return response
    return JSONResponse({**body, "refresh_token": refreshed.refresh_token})


def _client_credentials(
    request: Request, form_id: str | None, form_secret: str | None
) -> tuple[str, str]:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidClient() from None
        cid, sep, secret = decoded.partition(":")
        if sep:
            return cid, secret
        raise InvalidClient()
    if form_id and form_secret:
        return form_id, form_secret
    raise InvalidClient()


async def authenticate_client(ctx: IdentityDep, client_id: str, secret: str) -> Any:
    async with ctx.db.transaction() as s:
        row = (
            await s.execute(
                select(
                    service_clients.c.client_id,
                    service_clients.c.secret_hash,
                    service_clients.c.audiences,
                    service_clients.c.scopes,
                ).where(
                    service_clients.c.client_id == client_id,
                    service_clients.c.disabled_at.is_(None),
                )
            )
        ).first()
    ok = await asyncio.to_thread(
        passwords.verify_password, ctx.hasher, row.secret_hash if row else None, secret
    )
    if row is None or not ok:
        raise InvalidClient()
    return row


async def _client_credentials_grant(
    ctx: IdentityDep, client_id: str, secret: str, audience: str | None, scope: str | None
) -> JSONResponse:
    client = await authenticate_client(ctx, client_id, secret)
    if audience is None or audience not in client.audiences:
        raise ApiError(400, "invalid_target", "The client may not call this audience.")
    requested = set(scope.split()) if scope else set(client.scopes)
    if not requested <= set(client.scopes):
        raise ApiError(400, "invalid_scope", "The client may not request these scopes.")
    access, expires_in = await service_token(
        ctx, client_id=client_id, audience=audience, scopes=sorted(requested)
    )
    return JSONResponse({"access_token": access, "token_type": "Bearer", "expires_in": expires_in})


# RFC 7009 answers 200 with an empty body: documented as such, not as JSON.
@router.post("/oauth2/revoke", tags=["oauth2"], response_class=Response)
async def revoke(
    ctx: IdentityDep, token: Annotated[str, Form(max_length=200)], request: Request
) -> Response:
    # RFC 7009: the answer is the same whether or not the token was valid.
    async with ctx.db.transaction() as s:
        refreshed_session = await sessions.of_refresh_token(s, token)
        if refreshed_session is not None and await sessions.revoke(
            s, refreshed_session, "revoked", ctx.now()
        ):
            await audit.record(
                s,
                "session.revoked",
                target=("session", str(refreshed_session)),
                source_ip=client_ip(request),
                details={"via": "oauth2_revoke"},
            )
    return Response(status_code=200)


@router.post("/oauth2/introspect", tags=["oauth2"])
async def introspect(
    request: Request,
    ctx: IdentityDep,
    token: Annotated[str, Form(max_length=8192)],
    client_id: Annotated[str | None, Form(max_length=128)] = None,
    client_secret: Annotated[str | None, Form(max_length=256)] = None,
) -> dict[str, Any]:
    cid, secret = _client_credentials(request, client_id, client_secret)
    await authenticate_client(ctx, cid, secret)
    try:
        principal = await request.app.state.token_verifier.verify(token)
    except InvalidToken:
        return {"active": False}
    if principal.session_id is not None:
        async with ctx.db.transaction() as s:
            if not await sessions.is_active(s, uuid.UUID(principal.session_id), ctx.now()):
                return {"active": False}
    return {
        "active": True,
        "sub": principal.subject,
        "tid": principal.tenant_id,
        "client_id": principal.client_id,
        "scope": " ".join(sorted(principal.scopes)) or None,
        "exp": principal.expires_at,
        "sid": principal.session_id,
        "token_type": "Bearer",
    }
