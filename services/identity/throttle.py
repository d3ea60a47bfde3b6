"""Brute-force throttling of failed password, TOTP and recovery-code attempts.

Failures are counted per key, a key being an account or a source address, in
``identity.throttle`` so every replica sees the same count (OWASP ASVS V2.2.1 / V6.3 style):
within a window the first ``max_failures`` failures are free, each further one blocks the key
for ``base_block × 2^(failures − max_failures − 1)``, capped at ``max_block``. A window
older than ``window`` without an active block starts over.

Callers check all keys of an attempt *before* verifying anything, record a failure on all of
them when the attempt fails, and clear only the account key when it succeeds: clearing the
address key too would let an attacker holding one valid account reset the counter for the
address they are guessing from.

Keys are hashes, never raw usernames or addresses (the table is not customer data). An
unknown username is keyed exactly like a known one, by ``(tenant, lower(username))``, so
guessing non-existent accounts is throttled identically and the throttle reveals nothing
about which accounts exist.

Time is the database's (``now()``), the same for every replica, unless a clock is injected
(tests).
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, overload

from sqlalchemy import DateTime, and_, delete, func, literal, or_, select, text
from sqlalchemy.sql.elements import ColumnElement

from jinji.db import Database
from jinji.errors import ApiError
from services.identity.tables import throttle

ACCOUNT_PREFIX = "acct:"
ADDRESS_PREFIX = "addr:"
# IPv6 clients usually get a whole /64; counting per address would let one client rotate
# through 2^64 of them.
IPV6_PREFIX_LEN = 64


@dataclass(frozen=True)
class ThrottlePolicy:
    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)
    base_block: timedelta = timedelta(minutes=1)
    max_block: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        if self.max_failures < 0:
            raise ValueError("max_failures must not be negative")
        if self.window <= timedelta(0) or self.base_block <= timedelta(0):
            raise ValueError("window and base_block must be positive")
        if self.max_block < self.base_block:
            raise ValueError("max_block must not be shorter than base_block")

    def block_for(self, failures: int) -> timedelta | None:
        """The block after the ``failures``-th failure in a window (None: still free)."""
        over = failures - self.max_failures
        if over <= 0:
            return None
        # Capping the exponent keeps the arithmetic finite; max_block applies long before.
        seconds = self.base_block.total_seconds() * 2.0 ** min(over - 1, 60)
        return timedelta(seconds=min(seconds, self.max_block.total_seconds()))


class Throttled(ApiError):
    """Too many failed attempts: try again after ``retry_after_s`` seconds (HTTP 429)."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(
            429,
            "too_many_attempts",
            "Too many failed attempts. Try again later.",
            {"retry_after_s": retry_after_s},
            {"Retry-After": str(retry_after_s)},
        )
        self.retry_after_s = retry_after_s


def _digest(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


@overload
def account_key(user_id: uuid.UUID, /) -> str: ...


@overload
def account_key(tenant: uuid.UUID | str, username: str, /) -> str: ...


def account_key(subject: uuid.UUID | str, username: str | None = None, /) -> str:
    """The throttle key of an account: ``account_key(user_id)`` or
    ``account_key(tenant, username)``, the tenant given by id or by slug (use one of them
    consistently: they make different keys). The second form works for tenants and usernames
    that do not exist and ignores case, so use it for every attempt, whether or not the user
    was found, to throttle known and unknown usernames alike."""
    if username is None:
        if not isinstance(subject, uuid.UUID):
            raise TypeError("account_key(user_id) takes a uuid.UUID")
        return ACCOUNT_PREFIX + _digest("acct", "user", str(subject))
    return ACCOUNT_PREFIX + _digest("acct", _tenant_part(subject), username.lower())


def _tenant_part(tenant: uuid.UUID | str) -> str:
    if isinstance(tenant, uuid.UUID):
        return str(tenant)
    try:
        return str(uuid.UUID(tenant))
    except ValueError:
        # A slug, possibly one sent by a client: any text, never an error.
        return tenant.lower()


def address_key(source_ip: str) -> str:
    """The throttle key of a source address: IPv4 as is, IPv6 by its /64 network (an
    IPv4-mapped IPv6 address counts as the IPv4 address). Raises ValueError for anything
    that is not an IP address."""
    address = ipaddress.ip_address(source_ip.strip())
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            network = str(address.ipv4_mapped)
        else:
            network = str(ipaddress.IPv6Network((int(address), IPV6_PREFIX_LEN), strict=False))
    else:
        network = str(address)
    return ADDRESS_PREFIX + _digest("addr", network)


# One statement per key: the new count, window and block are computed from the row as locked
# by ON CONFLICT, so concurrent failures on any replica never lose an increment.
_FAILURE = text(
    """
    WITH p AS (
        SELECT COALESCE(CAST(:now AS timestamptz), now()) AS now,
               CAST(:max_failures AS integer) AS max_failures,
               make_interval(secs => CAST(:window_s AS float8)) AS window_len,
               CAST(:base_block_s AS float8) AS base_block_s,
               CAST(:max_block_s AS float8) AS max_block_s
    )
    INSERT INTO identity.throttle AS t (key, failures, window_started_at, blocked_until)
    SELECT CAST(:key AS text), 1, p.now,
           p.now + make_interval(secs => CAST(:first_block_s AS float8))
    FROM p
    ON CONFLICT (key) DO UPDATE SET (failures, window_started_at, blocked_until) = (
        SELECT s.failures,
               s.window_started_at,
               CASE WHEN s.failures > p.max_failures THEN GREATEST(
                   s.blocked_until,
                   p.now + make_interval(secs => LEAST(
                       p.max_block_s,
                       p.base_block_s * power(2, LEAST(s.failures - p.max_failures - 1, 60))
                   ))
               ) ELSE s.blocked_until END
        FROM p,
             LATERAL (
                 SELECT t.window_started_at + p.window_len <= p.now
                        AND (t.blocked_until IS NULL OR t.blocked_until <= p.now) AS fresh
             ) AS r,
             LATERAL (
                 SELECT CASE WHEN r.fresh THEN 1 ELSE t.failures + 1 END AS failures,
                        CASE WHEN r.fresh THEN p.now ELSE t.window_started_at END
                            AS window_started_at,
                        CASE WHEN r.fresh THEN NULL ELSE t.blocked_until END AS blocked_until
             ) AS s
    )
    RETURNING t.failures,
              CAST(extract(epoch FROM t.blocked_until - (SELECT p.now FROM p)) AS float8)
                  AS block_s
    """
)


def _ceil_s(seconds: float) -> int:
    return max(1, math.ceil(seconds))


def _unique_sorted(keys: Iterable[str]) -> list[str]:
    # Sorted, so transactions touching several keys lock them in the same order (no
    # deadlocks between replicas); unique, since one statement may not hit a row twice.
    unique = sorted(set(keys))
    for key in unique:
        if not key.startswith((ACCOUNT_PREFIX, ADDRESS_PREFIX)):
            raise ValueError("not a throttle key; use account_key() or address_key()")
    return unique


class Throttle:
    def __init__(
        self,
        db: Database,
        policy: ThrottlePolicy | None = None,
        clock: Callable[[], datetime] | None = None,
        address_policy: ThrottlePolicy | None = None,
    ) -> None:
        self.db = db
        self.policy = policy or ThrottlePolicy()
        # One address may be a whole office behind NAT: it gets far more room than one
        # account before it is slowed down (unless a test or deployment says otherwise).
        self.address_policy = address_policy or ThrottlePolicy(max_failures=100)
        self.clock = clock

    def _params(self, key: str) -> dict[str, Any]:
        policy = self.address_policy if key.startswith(ADDRESS_PREFIX) else self.policy
        first_block = policy.block_for(1)
        return {
            "now": self._now_param(),
            "max_failures": policy.max_failures,
            "window_s": policy.window.total_seconds(),
            "base_block_s": policy.base_block.total_seconds(),
            "max_block_s": policy.max_block.total_seconds(),
            "first_block_s": None if first_block is None else first_block.total_seconds(),
            "key": key,
        }

    def _now_param(self) -> datetime | None:
        return self.clock() if self.clock is not None else None

    def _now_sql(self) -> ColumnElement[Any]:
        if self.clock is not None:
            return literal(self.clock(), DateTime(timezone=True))
        return func.now()

    async def check(self, *keys: str) -> None:
        """Raises :class:`Throttled` if any of ``keys`` is blocked now."""
        wanted = _unique_sorted(keys)
        if not wanted:
            return
        now = self._now_sql()
        query = select(func.max(throttle.c.blocked_until - now)).where(
            throttle.c.key.in_(wanted), throttle.c.blocked_until > now
        )
        async with self.db.transaction() as s:
            remaining: timedelta | None = (await s.execute(query)).scalar_one()
        if remaining is not None:
            raise Throttled(_ceil_s(remaining.total_seconds()))

    async def failure(self, *keys: str) -> int | None:
        """Records one failure on each of ``keys``; returns the longest block it caused, in
        seconds, or None when no key is blocked."""
        wanted = _unique_sorted(keys)
        longest: float | None = None
        async with self.db.transaction() as s:
            for key in wanted:
                row = (await s.execute(_FAILURE, self._params(key))).one()
                block_s = row.block_s
                if block_s is not None and block_s > 0 and (longest is None or block_s > longest):
                    longest = block_s
        return None if longest is None else _ceil_s(longest)

    async def success(self, account_key: str) -> None:
        """Clears an account's failures after a successful login. Only an account key: the
        address counter keeps running (see the module docstring)."""
        if not account_key.startswith(ACCOUNT_PREFIX):
            raise ValueError("success() clears account keys only")
        async with self.db.transaction() as s:
            await s.execute(delete(throttle).where(throttle.c.key == account_key))

    async def purge_expired(self) -> int:
        """Deletes rows whose window and block are both over (housekeeping); the next failure
        on such a key would start over anyway. Returns the number of rows deleted."""
        now = self._now_sql()
        window = literal(self.policy.window)
        query = delete(throttle).where(
            and_(
                throttle.c.window_started_at + window <= now,
                or_(throttle.c.blocked_until.is_(None), throttle.c.blocked_until <= now),
            )
        )
        async with self.db.transaction() as s:
            result = await s.execute(query)
        return int(getattr(result, "rowcount", 0) or 0)
