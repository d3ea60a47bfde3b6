"""The login flow: password, then whichever steps the account still owes, then tokens.

Each step that is not the last answers with a single-use challenge token (stored hashed,
short-lived) naming the next step: ``password_change`` (one-time password), ``mfa`` (the
user has TOTP) or ``mfa_enrollment`` (MFA required, none set up). Failed passwords and codes
count against the account and the source address (:mod:`services.identity.throttle`).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from jinji.keys import AssociatedData
from jinji.tenancy import PLATFORM_TENANT_SLUG
from services.bootstrap import INITIAL_OPERATOR_FILE
from services.identity import audit, passwords, sessions, totp
from services.identity.context import Identity
from services.identity.errors import (
    InvalidChallenge,
    InvalidCode,
    InvalidCredentials,
    PasswordNotAccepted,
)
from services.identity.issuing import access_token
from services.identity.metrics import LOGINS, MFA
from services.identity.secrets_util import new_token, token_hash
from services.identity.tables import challenges, recovery_codes, tenants, users
from services.identity.throttle import Throttled, account_key, address_key

CHALLENGE_PREFIX = "jch"


@dataclass(frozen=True)
class Tokens:
    access_token: str
    expires_in: int
    refresh_token: str
    session_id: uuid.UUID
    recovery_codes: list[str] | None = None


@dataclass(frozen=True)
class Challenge:
    kind: str
    token: str
    expires_in: int


@dataclass(frozen=True)
class Enrollment:
    secret: str
    otpauth_uri: str
    qr_svg: str


@dataclass
class Account:
    id: uuid.UUID
    tenant_id: uuid.UUID
    tenant_slug: str
    username: str
    password_hash: str
    roles: list[str]
    companies: list[str]
    must_change_password: bool
    totp_secret_enc: bytes | None
    totp_last_step: int | None
    mfa_required: bool

    @property
    def has_totp(self) -> bool:
        return self.totp_secret_enc is not None

    @property
    def needs_mfa(self) -> bool:
        # Operators always use a second factor (9.4.4), whatever the tenant's policy.
        return self.mfa_required or "operator" in self.roles


_ACCOUNT_COLUMNS = (
    users.c.id,
    users.c.tenant_id,
    tenants.c.slug,
    users.c.username,
    users.c.password_hash,
    users.c.roles,
    users.c.companies,
    users.c.must_change_password,
    users.c.totp_secret_enc,
    users.c.totp_last_step,
    tenants.c.mfa_required,
)


def _account(row: Any) -> Account:
    return Account(*row)


async def load_account(s: AsyncSession, *conditions: Any) -> Account | None:
    """An active user of an active tenant; None otherwise (callers answer alike)."""
    row = (
        await s.execute(
            select(*_ACCOUNT_COLUMNS)
            .join(tenants, tenants.c.id == users.c.tenant_id)
            .where(users.c.status == "active", tenants.c.status == "active", *conditions)
        )
    ).first()
    return _account(row) if row else None


def code_keys(account: Account, source_ip: str) -> tuple[str, str]:
    """Throttle keys for second-factor codes. Separate from the password counter on purpose:
    a correct password clears that one, and must not give a password holder a fresh set of
    code guesses each time."""
    return account_key(account.id), address_key(source_ip)


async def _fail(ctx: Identity, keys: tuple[str, ...]) -> None:
    """Count a failure; the attempt that starts a block is answered 429 already."""
    blocked = await ctx.throttle.failure(*keys)
    if blocked:
        raise Throttled(blocked)


async def login(
    ctx: Identity, *, tenant: str, username: str, password: str, source_ip: str
) -> Tokens | Challenge:
    keys = (account_key(tenant, username), address_key(source_ip))
    try:
        await ctx.throttle.check(*keys)
    except Throttled:
        LOGINS.labels("throttled").inc()
        raise
    async with ctx.db.transaction() as s:
        account = await load_account(
            s, tenants.c.slug == tenant, users.c.username == username.strip().lower()
        )
        ok = await asyncio.to_thread(
            passwords.verify_password,
            ctx.hasher,
            account.password_hash if account else None,
            password,
        )
        expired_otp = account is not None and await _one_time_password_expired(ctx, s, account)
        if account is None or not ok or expired_otp:
            await audit.record(
                s,
                "login.failed",
                outcome="failure",
                actor=("user", str(account.id) if account else None),
                tenant_id=account.tenant_id if account else None,
                source_ip=source_ip,
                details={"reason": _failure_reason(account, ok, expired_otp)},
            )
    if account is None or not ok or expired_otp:
        LOGINS.labels("failure").inc()
        await _fail(ctx, keys)
        raise InvalidCredentials()
    await ctx.throttle.success(keys[0])
    async with ctx.db.transaction() as s:
        step = await _next_step(ctx, s, account, amr=["pwd"], source_ip=source_ip)
    LOGINS.labels("success" if isinstance(step, Tokens) else "challenge").inc()
    return step


def _failure_reason(account: Account | None, ok: bool, expired_otp: bool) -> str:
    if account is None:
        return "unknown_account"
    if not ok:
        return "wrong_password"
    return "one_time_password_expired" if expired_otp else "unknown"


async def _one_time_password_expired(ctx: Identity, s: AsyncSession, account: Account) -> bool:
    if not account.must_change_password:
        return False
    expires = await s.scalar(
        select(users.c.one_time_password_expires_at).where(users.c.id == account.id)
    )
    return expires is not None and expires <= ctx.now()


async def _next_step(
    ctx: Identity, s: AsyncSession, account: Account, *, amr: list[str], source_ip: str
) -> Tokens | Challenge:
    if account.must_change_password:
        return await _challenge(ctx, s, account, "password_change", amr)
    if account.has_totp and "mfa" not in amr:
        return await _challenge(ctx, s, account, "mfa", amr)
    if not account.has_totp and account.needs_mfa:
        return await _challenge(ctx, s, account, "mfa_enrollment", amr)
    return await _tokens(ctx, s, account, amr, source_ip)


async def _challenge(
    ctx: Identity, s: AsyncSession, account: Account, kind: str, amr: list[str]
) -> Challenge:
    token = new_token(CHALLENGE_PREFIX)
    ttl = ctx.settings.challenge_ttl_s
    await s.execute(
        insert(challenges).values(
            id=uuid.uuid4(),
            token_hash=token_hash(token),
            user_id=account.id,
            kind=kind,
            amr=amr,
            expires_at=ctx.now() + timedelta(seconds=ttl),
        )
    )
    return Challenge(kind, token, ttl)


async def _tokens(
    ctx: Identity,
    s: AsyncSession,
    account: Account,
    amr: list[str],
    source_ip: str,
    recovery: list[str] | None = None,
) -> Tokens:
    session_id, refresh = await sessions.open_session(
        s, user_id=account.id, tenant_id=account.tenant_id, amr=amr, now=ctx.now()
    )
    await audit.record(
        s,
        "login.succeeded",
        actor=("user", str(account.id)),
        tenant_id=account.tenant_id,
        target=("session", str(session_id)),
        source_ip=source_ip,
        details={"amr": " ".join(amr)},
    )
    token, expires_in = await access_token(
        ctx,
        user_id=account.id,
        tenant_id=account.tenant_id,
        roles=account.roles,
        companies=account.companies,
        amr=amr,
        session_id=session_id,
        grant="login",
    )
    return Tokens(token, expires_in, refresh, session_id, recovery)


@dataclass(frozen=True)
class _OpenChallenge:
    id: uuid.UUID
    kind: str
    amr: list[str]
    pending_totp_enc: bytes | None
    account: Account


async def _open_challenge(ctx: Identity, s: AsyncSession, token: str) -> _OpenChallenge:
    row = (
        await s.execute(
            select(
                challenges.c.id,
                challenges.c.kind,
                challenges.c.amr,
                challenges.c.pending_totp_enc,
                challenges.c.user_id,
            )
            .where(
                challenges.c.token_hash == token_hash(token),
                challenges.c.consumed_at.is_(None),
                challenges.c.expires_at > ctx.now(),
            )
            .with_for_update()
        )
    ).first()
    if row is None:
        raise InvalidChallenge()
    account = await load_account(s, users.c.id == row.user_id)
    if account is None:
        raise InvalidChallenge()
    return _OpenChallenge(row.id, row.kind, list(row.amr), row.pending_totp_enc, account)


async def _consume(s: AsyncSession, challenge_id: uuid.UUID, now: Any) -> None:
    await s.execute(
        update(challenges).where(challenges.c.id == challenge_id).values(consumed_at=now)
    )


def _totp_aad(ctx: Identity, table: str, column: str, row: uuid.UUID) -> AssociatedData:
    return AssociatedData(str(ctx.platform_tenant), table, column, str(row))


async def start_enrollment(ctx: Identity, *, challenge_token: str) -> Enrollment:
    """Step one of ``mfa_enrollment``: a new secret, kept (encrypted) on the challenge."""
    async with ctx.db.transaction() as s:
        challenge = await _open_challenge(ctx, s, challenge_token)
        if challenge.kind != "mfa_enrollment":
            raise InvalidChallenge()
        secret = totp.new_secret()
        sealed = await ctx.envelope.encrypt(
            str(ctx.platform_tenant),
            secret.encode(),
            _totp_aad(ctx, "identity.challenges", "pending_totp_enc", challenge.id),
        )
        await s.execute(
            update(challenges)
            .where(challenges.c.id == challenge.id)
            .values(pending_totp_enc=sealed)
        )
    uri = totp.otpauth_uri(
        secret, account=f"{challenge.account.tenant_slug}:{challenge.account.username}"
    )
    return Enrollment(secret, uri, totp.qr_svg(uri))


async def answer(
    ctx: Identity,
    *,
    challenge_token: str,
    source_ip: str,
    new_password: str | None = None,
    code: str | None = None,
    recovery_code: str | None = None,
) -> Tokens | Challenge:
    async with ctx.db.transaction() as s:
        challenge = await _open_challenge(ctx, s, challenge_token)
    account = challenge.account
    keys = code_keys(account, source_ip)
    # A password lock-out also stops the second step.
    await ctx.throttle.check(*keys, account_key(account.tenant_slug, account.username))
    if challenge.kind == "password_change":
        return await _answer_password_change(ctx, challenge, new_password, source_ip)
    if challenge.kind == "mfa":
        return await _answer_mfa(ctx, challenge, code, recovery_code, keys, source_ip)
    return await _answer_enrollment(ctx, challenge, code, keys, source_ip)


async def _answer_password_change(
    ctx: Identity, challenge: _OpenChallenge, new_password: str | None, source_ip: str
) -> Tokens | Challenge:
    account = challenge.account
    if new_password is None:
        raise PasswordNotAccepted("missing", "A new password is required.")
    await set_password(ctx, account, new_password)
    async with ctx.db.transaction() as s:
        await _consume(s, challenge.id, ctx.now())
        await audit.record(
            s,
            "password.changed",
            actor=("user", str(account.id)),
            tenant_id=account.tenant_id,
            target=("user", str(account.id)),
            source_ip=source_ip,
            details={"via": "first_login"},
        )
        account.must_change_password = False
        return await _next_step(ctx, s, account, amr=challenge.amr, source_ip=source_ip)


async def set_password(ctx: Identity, account: Account, new_password: str) -> None:
    """Apply the password policy, then store the new hash (one-time password cleared)."""
    try:
        passwords.check_password(new_password, username=account.username)
    except passwords.PasswordRejected as exc:
        raise PasswordNotAccepted(exc.code, exc.message) from None
    same = await asyncio.to_thread(
        passwords.verify_password, ctx.hasher, account.password_hash, new_password
    )
    if same:
        raise PasswordNotAccepted("unchanged", "The new password must differ from the old one.")
    new_hash = await asyncio.to_thread(passwords.hash_password, ctx.hasher, new_password)
    async with ctx.db.transaction() as s:
        await s.execute(
            update(users)
            .where(users.c.id == account.id)
            .values(
                password_hash=new_hash,
                must_change_password=False,
                one_time_password_expires_at=None,
                password_changed_at=ctx.now(),
                updated_at=ctx.now(),
            )
        )
    if account.tenant_slug == PLATFORM_TENANT_SLUG:
        # The first operator's one-time password is no longer valid: remove the file that
        # `jinji up` wrote it to.
        (ctx.settings.data_dir / INITIAL_OPERATOR_FILE).unlink(missing_ok=True)


async def _answer_mfa(
    ctx: Identity,
    challenge: _OpenChallenge,
    code: str | None,
    recovery_code: str | None,
    keys: tuple[str, ...],
    source_ip: str,
) -> Tokens | Challenge:
    account = challenge.account
    async with ctx.db.transaction() as s:
        method = None
        if code is not None and account.totp_secret_enc is not None:
            secret = await ctx.envelope.decrypt(
                str(ctx.platform_tenant),
                account.totp_secret_enc,
                _totp_aad(ctx, "identity.users", "totp_secret_enc", account.id),
            )
            step = totp.verify_code(secret.decode(), code, last_step=account.totp_last_step)
            if step is not None and await _claim_step(s, account.id, step):
                method = "otp"
        elif recovery_code is not None and await _use_recovery_code(s, account.id, recovery_code):
            method = "recovery_code"
        MFA.labels(
            "recovery_code" if recovery_code is not None and code is None else "totp",
            "failure" if method is None else "success",
        ).inc()
        if method is None:
            await audit.record(
                s,
                "mfa.failed",
                outcome="failure",
                actor=("user", str(account.id)),
                tenant_id=account.tenant_id,
                source_ip=source_ip,
                details={"method": "recovery_code" if recovery_code is not None else "totp"},
            )
        else:
            await _consume(s, challenge.id, ctx.now())
            if method == "recovery_code":
                await audit.record(
                    s,
                    "mfa.recovery_code_used",
                    actor=("user", str(account.id)),
                    tenant_id=account.tenant_id,
                    source_ip=source_ip,
                )
            factor = ["otp", "mfa"] if method == "otp" else ["mfa"]
            step_after = await _next_step(
                ctx, s, account, amr=[*challenge.amr, *factor], source_ip=source_ip
            )
    if method is None:
        await _fail(ctx, keys)
        raise InvalidCode()
    await ctx.throttle.success(keys[0])
    return step_after


async def _claim_step(s: AsyncSession, user_id: uuid.UUID, step: int) -> bool:
    """Record the TOTP step as used; false if it (or a later one) already was. A single
    conditional UPDATE, so two concurrent logins with the same code cannot both pass."""
    result = await s.execute(
        update(users)
        .where(
            users.c.id == user_id,
            (users.c.totp_last_step.is_(None)) | (users.c.totp_last_step < step),
        )
        .values(totp_last_step=step)
    )
    return bool(getattr(result, "rowcount", 0))


async def _use_recovery_code(s: AsyncSession, user_id: uuid.UUID, code: str) -> bool:
    rows = await s.execute(
        select(recovery_codes.c.id, recovery_codes.c.code_hash).where(
            recovery_codes.c.user_id == user_id, recovery_codes.c.used_at.is_(None)
        )
    )
    for code_id, code_hash in rows.all():
        if totp.recovery_code_matches(code, code_hash):
            result = await s.execute(
                update(recovery_codes)
                .where(recovery_codes.c.id == code_id, recovery_codes.c.used_at.is_(None))
                .values(used_at=func.now())
            )
            return bool(getattr(result, "rowcount", 0))
    return False


async def _answer_enrollment(
    ctx: Identity,
    challenge: _OpenChallenge,
    code: str | None,
    keys: tuple[str, ...],
    source_ip: str,
) -> Tokens | Challenge:
    account = challenge.account
    if challenge.pending_totp_enc is None:
        raise InvalidChallenge()
    secret = (
        await ctx.envelope.decrypt(
            str(ctx.platform_tenant),
            challenge.pending_totp_enc,
            _totp_aad(ctx, "identity.challenges", "pending_totp_enc", challenge.id),
        )
    ).decode()
    step = totp.verify_code(secret, code or "", last_step=None)
    MFA.labels("enrollment", "failure" if step is None else "success").inc()
    if step is None:
        await _fail(ctx, keys)
        raise InvalidCode()
    codes = await enable_totp(ctx, account, secret, step, source_ip)
    async with ctx.db.transaction() as s:
        await _consume(s, challenge.id, ctx.now())
        amr = [*challenge.amr, "otp", "mfa"]
        result = await _next_step(ctx, s, account, amr=amr, source_ip=source_ip)
    if isinstance(result, Tokens):
        return Tokens(
            result.access_token, result.expires_in, result.refresh_token, result.session_id, codes
        )
    return result


async def enable_totp(
    ctx: Identity, account: Account, secret: str, step: int, source_ip: str
) -> list[str]:
    """Store a confirmed TOTP secret and a fresh set of recovery codes (returned once)."""
    sealed = await ctx.envelope.encrypt(
        str(ctx.platform_tenant),
        secret.encode(),
        _totp_aad(ctx, "identity.users", "totp_secret_enc", account.id),
    )
    codes = totp.new_recovery_codes()
    async with ctx.db.transaction() as s:
        await s.execute(
            update(users)
            .where(users.c.id == account.id)
            .values(
                totp_secret_enc=sealed,
                totp_enabled_at=ctx.now(),
                totp_last_step=step,
                updated_at=ctx.now(),
            )
        )
        await s.execute(recovery_codes.delete().where(recovery_codes.c.user_id == account.id))
        await s.execute(
            insert(recovery_codes),
            [
                {"id": uuid.uuid4(), "user_id": account.id, "code_hash": totp.hash_recovery_code(c)}
                for c in codes
            ],
        )
        await audit.record(
            s,
            "mfa.enabled",
            actor=("user", str(account.id)),
            tenant_id=account.tenant_id,
            target=("user", str(account.id)),
            source_ip=source_ip,
        )
    account.totp_secret_enc = sealed
    account.totp_last_step = step
    return codes


async def store_pending_enrollment(
    ctx: Identity, s: AsyncSession, account: Account, secret: str
) -> None:
    """A signed-in user's TOTP set-up waiting for its first code (a challenge row whose token
    is never handed out: the user is already authenticated)."""
    challenge_id = uuid.uuid4()
    sealed = await ctx.envelope.encrypt(
        str(ctx.platform_tenant),
        secret.encode(),
        _totp_aad(ctx, "identity.challenges", "pending_totp_enc", challenge_id),
    )
    await s.execute(
        insert(challenges).values(
            id=challenge_id,
            token_hash=token_hash(new_token(CHALLENGE_PREFIX)),
            user_id=account.id,
            kind="mfa_enrollment",
            amr=[],
            pending_totp_enc=sealed,
            expires_at=ctx.now() + timedelta(seconds=ctx.settings.challenge_ttl_s),
        )
    )


async def pending_enrollment(
    ctx: Identity, s: AsyncSession, account: Account
) -> tuple[uuid.UUID, str] | None:
    row = (
        await s.execute(
            select(challenges.c.id, challenges.c.pending_totp_enc)
            .where(
                challenges.c.user_id == account.id,
                challenges.c.kind == "mfa_enrollment",
                challenges.c.pending_totp_enc.is_not(None),
                challenges.c.consumed_at.is_(None),
                challenges.c.expires_at > ctx.now(),
            )
            .order_by(challenges.c.created_at.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    secret = await ctx.envelope.decrypt(
        str(ctx.platform_tenant),
        row.pending_totp_enc,
        _totp_aad(ctx, "identity.challenges", "pending_totp_enc", row.id),
    )
    return row.id, secret.decode()


async def check_password_and_code(
    ctx: Identity, account: Account, password: str, code: str
) -> bool:
    """Both factors, for removing a factor: the password and a fresh TOTP code."""
    ok = await asyncio.to_thread(
        passwords.verify_password, ctx.hasher, account.password_hash, password
    )
    if not ok or account.totp_secret_enc is None:
        return False
    secret = await ctx.envelope.decrypt(
        str(ctx.platform_tenant),
        account.totp_secret_enc,
        _totp_aad(ctx, "identity.users", "totp_secret_enc", account.id),
    )
    step = totp.verify_code(secret.decode(), code, last_step=account.totp_last_step)
    if step is None:
        return False
    async with ctx.db.transaction() as s:
        return await _claim_step(s, account.id, step)
