"""Sessions and their refresh tokens.

A session lives until its idle limit (extended by each refresh, never past the absolute
limit), its absolute limit, or revocation. Its refresh token is opaque, stored hashed, and
rotated on every use; presenting a rotated token again means it was copied, so the whole
session is revoked (OAuth 2.0 Security BCP, refresh token rotation with reuse detection).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.secrets_util import new_token, token_hash
from services.identity.tables import refresh_tokens, sessions, tenants

REFRESH_PREFIX = "jrt"


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta
    absolute: timedelta


class RefreshRejected(Exception):
    def __init__(self, reason: str, session_id: uuid.UUID | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.session_id = session_id


@dataclass(frozen=True)
class Refreshed:
    session_id: uuid.UUID
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    amr: list[str]
    refresh_token: str


async def policy_for(s: AsyncSession, tenant_id: uuid.UUID) -> SessionPolicy:
    idle, absolute = (
        await s.execute(
            select(tenants.c.session_idle_s, tenants.c.session_absolute_s).where(
                tenants.c.id == tenant_id
            )
        )
    ).one()
    return SessionPolicy(timedelta(seconds=idle), timedelta(seconds=absolute))


async def open_session(
    s: AsyncSession,
    *,
    user_id: uuid.UUID,
    tenant_id: uuid.UUID,
    amr: Sequence[str],
    now: datetime,
) -> tuple[uuid.UUID, str]:
    policy = await policy_for(s, tenant_id)
    session_id = uuid.uuid4()
    absolute = now + policy.absolute
    await s.execute(
        insert(sessions).values(
            id=session_id,
            user_id=user_id,
            tenant_id=tenant_id,
            amr=list(amr),
            created_at=now,
            last_used_at=now,
            idle_expires_at=min(now + policy.idle, absolute),
            absolute_expires_at=absolute,
        )
    )
    token = new_token(REFRESH_PREFIX)
    await s.execute(
        insert(refresh_tokens).values(token_hash=token_hash(token), session_id=session_id)
    )
    return session_id, token


async def rotate(s: AsyncSession, token: str, now: datetime) -> Refreshed:
    """Exchange a refresh token for a new one; raise RefreshRejected(reason) otherwise.

    The caller commits the transaction also when this raises ``reuse``: the revocation of
    the session must stick.
    """
    row = (
        await s.execute(
            select(
                refresh_tokens.c.rotated_at,
                sessions.c.id,
                sessions.c.user_id,
                sessions.c.tenant_id,
                sessions.c.amr,
                sessions.c.idle_expires_at,
                sessions.c.absolute_expires_at,
                sessions.c.revoked_at,
            )
            .join(sessions, sessions.c.id == refresh_tokens.c.session_id)
            .where(refresh_tokens.c.token_hash == token_hash(token))
            .with_for_update(of=sessions)
        )
    ).first()
    if row is None:
        raise RefreshRejected("unknown")
    rotated_at, session_id, user_id, tenant_id, amr, idle_exp, absolute_exp, revoked_at = row
    if revoked_at is not None:
        raise RefreshRejected("revoked", session_id)
    if rotated_at is not None:
        await revoke(s, session_id, "refresh_reuse", now)
        raise RefreshRejected("reuse", session_id)
    if now >= idle_exp or now >= absolute_exp:
        await revoke(s, session_id, "expired", now)
        raise RefreshRejected("expired", session_id)
    policy = await policy_for(s, tenant_id)
    await s.execute(
        update(refresh_tokens)
        .where(refresh_tokens.c.token_hash == token_hash(token))
        .values(rotated_at=now)
    )
    new = new_token(REFRESH_PREFIX)
    await s.execute(
        insert(refresh_tokens).values(token_hash=token_hash(new), session_id=session_id)
    )
    await s.execute(
        update(sessions)
        .where(sessions.c.id == session_id)
        .values(last_used_at=now, idle_expires_at=min(now + policy.idle, absolute_exp))
    )
    return Refreshed(session_id, user_id, tenant_id, list(amr), new)


async def of_refresh_token(s: AsyncSession, token: str) -> uuid.UUID | None:
    """The session a refresh token (current or rotated) belongs to, if any."""
    found = await s.scalar(
        select(refresh_tokens.c.session_id).where(refresh_tokens.c.token_hash == token_hash(token))
    )
    return None if found is None else uuid.UUID(str(found))


async def revoke(s: AsyncSession, session_id: uuid.UUID, reason: str, now: datetime) -> bool:
    result = await s.execute(
        update(sessions)
        .where(sessions.c.id == session_id, sessions.c.revoked_at.is_(None))
        .values(revoked_at=now, revoke_reason=reason)
    )
    return bool(getattr(result, "rowcount", 0))


async def revoke_all(
    s: AsyncSession,
    *,
    reason: str,
    now: datetime,
    user_id: uuid.UUID | None = None,
    tenant_id: uuid.UUID | None = None,
    keep: uuid.UUID | None = None,
) -> int:
    """End every open session of a user (or of a whole tenant), except ``keep``."""
    conditions: list[Any] = [sessions.c.revoked_at.is_(None)]
    if user_id is not None:
        conditions.append(sessions.c.user_id == user_id)
    if tenant_id is not None:
        conditions.append(sessions.c.tenant_id == tenant_id)
    if keep is not None:
        conditions.append(sessions.c.id != keep)
    result = await s.execute(
        update(sessions).where(and_(*conditions)).values(revoked_at=now, revoke_reason=reason)
    )
    return int(getattr(result, "rowcount", 0))


async def active_for_user(s: AsyncSession, user_id: uuid.UUID, now: datetime) -> list[Any]:
    rows = await s.execute(
        select(
            sessions.c.id,
            sessions.c.created_at,
            sessions.c.last_used_at,
            sessions.c.idle_expires_at,
            sessions.c.absolute_expires_at,
            sessions.c.amr,
        )
        .where(
            sessions.c.user_id == user_id,
            sessions.c.revoked_at.is_(None),
            sessions.c.idle_expires_at > now,
            sessions.c.absolute_expires_at > now,
        )
        .order_by(sessions.c.created_at.desc())
    )
    return list(rows)


async def is_active(s: AsyncSession, session_id: uuid.UUID, now: datetime) -> bool:
    found = await s.scalar(
        select(func.count())
        .select_from(sessions)
        .where(
            sessions.c.id == session_id,
            sessions.c.revoked_at.is_(None),
            sessions.c.absolute_expires_at > now,
        )
    )
    return bool(found)
