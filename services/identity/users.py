"""Tenant user administration (9.2.1, 9.2.2, 9.2.4): seats, roles, company scope, the last
administrator, one-time passwords. Used by the admin API, SCIM and the internal API alike."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, any_, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from jinji.errors import ApiError
from services.identity import audit, passwords, sessions
from services.identity.context import Identity
from services.identity.tables import recovery_codes, tenants, users

TENANT_ROLES = frozenset({"tenant_admin", "group_viewer", "viewer", "data_updater"})
# These roles see every group company; the others only the companies listed on the user.
ALL_COMPANY_ROLES = frozenset({"tenant_admin", "group_viewer"})


class SeatLimitReached(ApiError):
    def __init__(self, seats: int) -> None:
        super().__init__(
            409,
            "seat_limit_reached",
            "All contracted seats are in use; disable a user or add seats.",
            {"seats": seats},
        )


class LastAdmin(ApiError):
    def __init__(self) -> None:
        super().__init__(
            409, "last_admin", "The tenant's last administrator cannot be removed or demoted."
        )


class UserNotFound(ApiError):
    def __init__(self) -> None:
        super().__init__(404, "not_found", "No such user in this tenant.")


class UsernameTaken(ApiError):
    def __init__(self) -> None:
        super().__init__(409, "username_taken", "This username is already used in the tenant.")


def normalise_username(username: str) -> str:
    return username.strip().lower()


def check_roles(roles: Iterable[str]) -> list[str]:
    unknown = set(roles) - TENANT_ROLES
    if unknown:
        raise ApiError(
            422,
            "unknown_role",
            "Unknown role.",
            {"roles": sorted(unknown), "allowed": sorted(TENANT_ROLES)},
        )
    return sorted(set(roles))


@dataclass(frozen=True)
class NewUser:
    id: uuid.UUID
    username: str
    roles: list[str]
    companies: list[str]
    one_time_password: str


USER_COLUMNS = (
    users.c.id,
    users.c.username,
    users.c.roles,
    users.c.companies,
    users.c.status,
    users.c.created_at,
    users.c.totp_enabled_at,
    users.c.must_change_password,
)


def describe(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "username": row.username,
        "roles": sorted(row.roles),
        "companies": sorted(row.companies),
        "active": row.status == "active",
        "mfa_enabled": row.totp_enabled_at is not None,
        "must_change_password": row.must_change_password,
        "created_at": row.created_at.isoformat(),
    }


async def _lock_tenant(s: AsyncSession, tenant_id: uuid.UUID) -> Any:
    # Serialises seat and last-admin checks of one tenant across replicas.
    row = (
        await s.execute(
            select(tenants.c.id, tenants.c.seats, tenants.c.status)
            .where(tenants.c.id == tenant_id)
            .with_for_update()
        )
    ).first()
    if row is None:
        raise ApiError(404, "tenant_not_found", "No such tenant.")
    return row


async def _active_count(s: AsyncSession, tenant_id: uuid.UUID) -> int:
    return int(
        await s.scalar(
            select(func.count())
            .select_from(users)
            .where(users.c.tenant_id == tenant_id, users.c.status == "active")
        )
        or 0
    )


async def _require_seat(s: AsyncSession, tenant: Any) -> None:
    if tenant.seats is not None and await _active_count(s, tenant.id) >= tenant.seats:
        raise SeatLimitReached(tenant.seats)


async def _other_active_admins(s: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID) -> int:
    return int(
        await s.scalar(
            select(func.count())
            .select_from(users)
            .where(
                users.c.tenant_id == tenant_id,
                users.c.status == "active",
                users.c.id != user_id,
                literal("tenant_admin") == any_(users.c.roles),
            )
        )
        or 0
    )


async def _guard_last_admin(
    s: AsyncSession, tenant_id: uuid.UUID, current: Any, *, stays_admin: bool
) -> None:
    losing_an_admin = (
        "tenant_admin" in current.roles and current.status == "active" and not stays_admin
    )
    if losing_an_admin and await _other_active_admins(s, tenant_id, current.id) == 0:
        raise LastAdmin()


async def _get(s: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID) -> Any:
    row = (
        await s.execute(
            select(*USER_COLUMNS)
            .where(users.c.id == user_id, users.c.tenant_id == tenant_id)
            .with_for_update()
        )
    ).first()
    if row is None:
        raise UserNotFound()
    return row


async def create_user(
    ctx: Identity,
    *,
    tenant_id: uuid.UUID,
    username: str,
    roles: Iterable[str],
    companies: Iterable[str],
    actor: tuple[str, str | None],
    source_ip: str | None = None,
) -> NewUser:
    roles = check_roles(roles)
    name = normalise_username(username)
    otp = passwords.one_time_password()
    hashed = await asyncio.to_thread(passwords.hash_password, ctx.hasher, otp)
    user_id = uuid.uuid4()
    async with ctx.db.transaction() as s:
        tenant = await _lock_tenant(s, tenant_id)
        await _require_seat(s, tenant)
        taken = await s.scalar(
            select(users.c.id).where(users.c.tenant_id == tenant_id, users.c.username == name)
        )
        if taken is not None:
            raise UsernameTaken()
        await s.execute(
            insert(users).values(
                id=user_id,
                tenant_id=tenant_id,
                username=name,
                password_hash=hashed,
                roles=roles,
                companies=sorted(set(companies)),
                must_change_password=True,
                one_time_password_expires_at=ctx.now()
                + timedelta(seconds=ctx.settings.one_time_password_ttl_s),
                status="active",
            )
        )
        await audit.record(
            s,
            "user.created",
            actor=actor,
            tenant_id=tenant_id,
            target=("user", str(user_id)),
            source_ip=source_ip,
            details={"roles": " ".join(roles)},
        )
    return NewUser(user_id, name, roles, sorted(set(companies)), otp)


async def update_user(
    ctx: Identity,
    *,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    roles: Iterable[str] | None = None,
    companies: Iterable[str] | None = None,
    active: bool | None = None,
    actor: tuple[str, str | None],
    source_ip: str | None = None,
) -> dict[str, Any]:
    async with ctx.db.transaction() as s:
        tenant = await _lock_tenant(s, tenant_id)
        current = await _get(s, tenant_id, user_id)
        values: dict[str, Any] = {"updated_at": ctx.now()}
        new_roles = check_roles(roles) if roles is not None else list(current.roles)
        stays_admin = "tenant_admin" in new_roles and active is not False
        await _guard_last_admin(s, tenant_id, current, stays_admin=stays_admin)
        if roles is not None:
            values["roles"] = new_roles
        if companies is not None:
            values["companies"] = sorted(set(companies))
        if active is not None:
            if active and current.status != "active":
                await _require_seat(s, tenant)
            values["status"] = "active" if active else "disabled"
        await s.execute(update(users).where(users.c.id == user_id).values(**values))
        if active is False and current.status == "active":
            # Disabled now: refresh is refused at once; access tokens die within minutes.
            await sessions.revoke_all(s, reason="user_disabled", now=ctx.now(), user_id=user_id)
        await audit.record(
            s,
            "user.updated",
            actor=actor,
            tenant_id=tenant_id,
            target=("user", str(user_id)),
            source_ip=source_ip,
            details={k: _detail(v) for k, v in values.items() if k != "updated_at"},
        )
        return describe(await _get(s, tenant_id, user_id))


def _detail(value: Any) -> str:
    return " ".join(value) if isinstance(value, list) else str(value)


async def delete_user(
    ctx: Identity,
    *,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    actor: tuple[str, str | None],
    source_ip: str | None = None,
) -> None:
    async with ctx.db.transaction() as s:
        await _lock_tenant(s, tenant_id)
        current = await _get(s, tenant_id, user_id)
        await _guard_last_admin(s, tenant_id, current, stays_admin=False)
        # Sessions, refresh tokens, challenges and recovery codes go with the user (cascade).
        await s.execute(users.delete().where(users.c.id == user_id))
        await audit.record(
            s,
            "user.deleted",
            actor=actor,
            tenant_id=tenant_id,
            target=("user", str(user_id)),
            source_ip=source_ip,
        )


async def reset_user(
    ctx: Identity,
    *,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    actor: tuple[str, str | None],
    source_ip: str | None = None,
) -> str:
    """A new one-time password and no MFA: the user sets both up again at next login."""
    otp = passwords.one_time_password()
    hashed = await asyncio.to_thread(passwords.hash_password, ctx.hasher, otp)
    async with ctx.db.transaction() as s:
        await _get(s, tenant_id, user_id)
        await s.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(
                password_hash=hashed,
                must_change_password=True,
                one_time_password_expires_at=ctx.now()
                + timedelta(seconds=ctx.settings.one_time_password_ttl_s),
                totp_secret_enc=None,
                totp_enabled_at=None,
                totp_last_step=None,
                updated_at=ctx.now(),
            )
        )
        await s.execute(recovery_codes.delete().where(recovery_codes.c.user_id == user_id))
        await sessions.revoke_all(s, reason="user_reset", now=ctx.now(), user_id=user_id)
        await audit.record(
            s,
            "user.reset",
            actor=actor,
            tenant_id=tenant_id,
            target=("user", str(user_id)),
            source_ip=source_ip,
        )
    return otp


async def list_users(
    s: AsyncSession, tenant_id: uuid.UUID, *, username: str | None = None, limit: int, offset: int
) -> tuple[list[Any], int]:
    conditions = [users.c.tenant_id == tenant_id]
    if username is not None:
        conditions.append(users.c.username == normalise_username(username))
    total = int(
        await s.scalar(select(func.count()).select_from(users).where(and_(*conditions))) or 0
    )
    rows = await s.execute(
        select(*USER_COLUMNS)
        .where(and_(*conditions))
        .order_by(users.c.username)
        .limit(limit)
        .offset(offset)
    )
    return list(rows), total


async def get_user(s: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID) -> Any:
    row = (
        await s.execute(
            select(*USER_COLUMNS).where(users.c.id == user_id, users.c.tenant_id == tenant_id)
        )
    ).first()
    if row is None:
        raise UserNotFound()
    return row
