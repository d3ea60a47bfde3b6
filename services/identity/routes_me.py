"""The signed-in user's own account: profile, password, sessions, TOTP, logout."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import update

from jinji.errors import ApiError, Forbidden, Unauthorized
from jinji.tokens import CurrentUser, Principal
from jinji.web import service_router
from services.identity import audit, login, passwords, sessions, totp
from services.identity.context import Identity, IdentityDep
from services.identity.errors import InvalidCode, PasswordNotAccepted
from services.identity.routes_auth import REFRESH_COOKIE, TOKEN_PATH, client_ip
from services.identity.tables import challenges, recovery_codes, users
from services.identity.throttle import account_key, address_key
from services.registry import SPECS

router = service_router(SPECS["identity"])


async def current_account(principal: CurrentUser, ctx: IdentityDep) -> login.Account:
    """The caller as a live account: a user token whose session is still open."""
    if principal.is_service or principal.session_id is None:
        raise Forbidden("This endpoint is for signed-in users.")
    async with ctx.db.transaction() as s:
        if not await sessions.is_active(s, uuid.UUID(principal.session_id), ctx.now()):
            raise Unauthorized("The session has ended.")
        account = await login.load_account(s, users.c.id == uuid.UUID(principal.subject))
    if account is None:
        raise Unauthorized("The account is no longer active.")
    return account


AccountDep = Annotated[login.Account, Depends(current_account)]


@router.get("/v1/me", tags=["me"])
async def me(account: AccountDep, principal: CurrentUser) -> dict[str, Any]:
    return {
        "id": str(account.id),
        "tenant": account.tenant_slug,
        "tenant_id": str(account.tenant_id),
        "username": account.username,
        "roles": sorted(account.roles),
        "companies": sorted(account.companies),
        "mfa_enabled": account.has_totp,
        "session_id": principal.session_id,
        "amr": list(principal.amr),
    }


@router.post("/v1/logout", tags=["me"])
async def logout(principal: CurrentUser, ctx: IdentityDep, request: Request) -> Response:
    if principal.session_id is None:
        raise Forbidden("This endpoint is for signed-in users.")
    async with ctx.db.transaction() as s:
        session_id = uuid.UUID(principal.session_id)
        if await sessions.revoke(s, session_id, "logout", ctx.now()):
            await audit.record(
                s,
                "logout",
                actor=("user", principal.subject),
                tenant_id=_tid(principal),
                target=("session", str(session_id)),
                source_ip=client_ip(request),
            )
    response = Response(status_code=204)
    response.delete_cookie(REFRESH_COOKIE, path=TOKEN_PATH)
    return response


def _tid(principal: Principal) -> uuid.UUID | None:
    return uuid.UUID(principal.tenant_id) if principal.tenant_id else None


class PasswordChangeIn(BaseModel):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


@router.post("/v1/me/password", status_code=204, tags=["me"])
async def change_password(
    body: PasswordChangeIn,
    account: AccountDep,
    principal: CurrentUser,
    ctx: IdentityDep,
    request: Request,
) -> Response:
    keys = (account_key(account.tenant_slug, account.username), address_key(client_ip(request)))
    await ctx.throttle.check(*keys)
    ok = await asyncio.to_thread(
        passwords.verify_password, ctx.hasher, account.password_hash, body.current_password
    )
    if not ok:
        await ctx.throttle.failure(*keys)
        raise PasswordNotAccepted("wrong_current_password", "The current password is incorrect.")
    await login.set_password(ctx, account, body.new_password)
    async with ctx.db.transaction() as s:
        # A changed password ends every other session: a thief's copy stops working.
        ended = await sessions.revoke_all(
            s,
            reason="password_changed",
            now=ctx.now(),
            user_id=account.id,
            keep=uuid.UUID(principal.session_id) if principal.session_id else None,
        )
        await audit.record(
            s,
            "password.changed",
            actor=("user", str(account.id)),
            tenant_id=account.tenant_id,
            target=("user", str(account.id)),
            source_ip=client_ip(request),
            details={"via": "self_service", "sessions_ended": ended},
        )
    return Response(status_code=204)


@router.get("/v1/me/sessions", tags=["me"])
async def my_sessions(
    account: AccountDep, principal: CurrentUser, ctx: IdentityDep
) -> dict[str, Any]:
    async with ctx.db.transaction() as s:
        rows = await sessions.active_for_user(s, account.id, ctx.now())
    return {
        "sessions": [
            {
                "id": str(r.id),
                "created_at": r.created_at.isoformat(),
                "last_used_at": r.last_used_at.isoformat(),
                "expires_at": min(r.idle_expires_at, r.absolute_expires_at).isoformat(),
                "amr": list(r.amr),
                "current": str(r.id) == principal.session_id,
            }
            for r in rows
        ]
    }


@router.delete("/v1/me/sessions/{session_id}", status_code=204, tags=["me"])
async def end_session(
    session_id: uuid.UUID, account: AccountDep, ctx: IdentityDep, request: Request
) -> Response:
    async with ctx.db.transaction() as s:
        owned = {r.id for r in await sessions.active_for_user(s, account.id, ctx.now())}
        if session_id not in owned:
            raise ApiError(404, "not_found", "No such session.")
        await sessions.revoke(s, session_id, "ended_by_user", ctx.now())
        await audit.record(
            s,
            "session.revoked",
            actor=("user", str(account.id)),
            tenant_id=account.tenant_id,
            target=("session", str(session_id)),
            source_ip=client_ip(request),
        )
    return Response(status_code=204)


@router.post("/v1/me/mfa/totp", tags=["mfa"])
async def start_totp(account: AccountDep, ctx: IdentityDep) -> dict[str, str]:
    """A new secret to scan; it takes effect only once a code from it is confirmed."""
    if account.has_totp:
        raise ApiError(409, "mfa_already_enabled", "TOTP is already enabled; remove it first.")
    secret = totp.new_secret()
    async with ctx.db.transaction() as s:
        await login.store_pending_enrollment(ctx, s, account, secret)
    uri = totp.otpauth_uri(secret, account=f"{account.tenant_slug}:{account.username}")
    return {"secret": secret, "otpauth_uri": uri, "qr_svg": totp.qr_svg(uri)}


class CodeIn(BaseModel):
    code: str = Field(min_length=1, max_length=16)


@router.post("/v1/me/mfa/totp/confirm", tags=["mfa"])
async def confirm_totp(
    body: CodeIn, account: AccountDep, ctx: IdentityDep, request: Request
) -> JSONResponse:
    keys = login.code_keys(account, client_ip(request))
    await ctx.throttle.check(*keys)
    async with ctx.db.transaction() as s:
        pending = await login.pending_enrollment(ctx, s, account)
    step = totp.verify_code(pending[1], body.code, last_step=None) if pending else None
    if pending is None or step is None:
        await ctx.throttle.failure(*keys)
        raise InvalidCode()
    codes = await login.enable_totp(ctx, account, pending[1], step, client_ip(request))
    async with ctx.db.transaction() as s:
        await s.execute(
            update(challenges).where(challenges.c.id == pending[0]).values(consumed_at=ctx.now())
        )
    return JSONResponse({"enabled": True, "recovery_codes": codes})


class DisableTotpIn(BaseModel):
    password: str = Field(min_length=1, max_length=1024)
    code: str = Field(min_length=1, max_length=16)


@router.delete("/v1/me/mfa/totp", status_code=204, tags=["mfa"])
async def disable_totp(
    body: DisableTotpIn, account: AccountDep, ctx: IdentityDep, request: Request
) -> Response:
    if "operator" in account.roles:
        raise ApiError(409, "mfa_required", "Operators must always use TOTP.")
    if not account.has_totp:
        raise ApiError(409, "mfa_not_enabled", "TOTP is not enabled.")
    keys = login.code_keys(account, client_ip(request))
    await ctx.throttle.check(*keys)
    if not await login.check_password_and_code(ctx, account, body.password, body.code):
        await ctx.throttle.failure(*keys)
        raise InvalidCode()
    await _remove_totp(ctx, account, client_ip(request))
    return Response(status_code=204)


async def _remove_totp(ctx: Identity, account: login.Account, source_ip: str) -> None:
    async with ctx.db.transaction() as s:
        await s.execute(
            update(users)
            .where(users.c.id == account.id)
            .values(totp_secret_enc=None, totp_enabled_at=None, updated_at=ctx.now())
        )
        await s.execute(recovery_codes.delete().where(recovery_codes.c.user_id == account.id))
        await audit.record(
            s,
            "mfa.disabled",
            actor=("user", str(account.id)),
            tenant_id=account.tenant_id,
            target=("user", str(account.id)),
            source_ip=source_ip,
        )
