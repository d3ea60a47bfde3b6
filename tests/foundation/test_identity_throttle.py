"""Brute-force throttling on real PostgreSQL: growing blocks after the free failures, window
expiry, what a success clears, no lost increments under concurrency, and the keys."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from jinji.db import Database
from services.identity.tables import throttle as throttle_table
from services.identity.throttle import (
    Throttle,
    Throttled,
    ThrottlePolicy,
    account_key,
    address_key,
)

MINUTE = 60


class Clock:
    def __init__(self) -> None:
        # Close to real time: purge_expired() in one test must not reach other tests' rows.
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def throttle(db: Database, clock: Clock) -> Throttle:
    # Same policy for both kinds of key here; the default address policy is tested apart.
    return Throttle(db, clock=clock, address_policy=ThrottlePolicy())


def new_account() -> str:
    return account_key(uuid.uuid4(), "someone")


async def row(db: Database, key: str) -> tuple[int, datetime, datetime | None] | None:
    async with db.transaction() as s:
        found = (
            await s.execute(
                select(
                    throttle_table.c.failures,
                    throttle_table.c.window_started_at,
                    throttle_table.c.blocked_until,
                ).where(throttle_table.c.key == key)
            )
        ).first()
    return None if found is None else (found[0], found[1], found[2])


async def retry_after(throttle: Throttle, *keys: str) -> int:
    with pytest.raises(Throttled) as raised:
        await throttle.check(*keys)
    return raised.value.retry_after_s


async def test_five_failures_free_sixth_blocks_a_minute(throttle: Throttle) -> None:
    key = new_account()
    for _ in range(5):
        await throttle.check(key)
        assert await throttle.failure(key) is None
    await throttle.check(key)
    assert await throttle.failure(key) == MINUTE
    assert await retry_after(throttle, key) == MINUTE


async def test_throttled_is_a_429_with_retry_after(throttle: Throttle) -> None:
    key = new_account()
    for _ in range(6):
        await throttle.failure(key)
    with pytest.raises(Throttled) as raised:
        await throttle.check(key)
    assert raised.value.status == 429
    assert raised.value.headers["Retry-After"] == "60"


async def test_blocks_grow_and_are_capped(throttle: Throttle, clock: Clock) -> None:
    key = new_account()
    for _ in range(5):
        await throttle.failure(key)
    blocks = []
    for _ in range(9):
        blocks.append(await throttle.failure(key))
        clock.advance(timedelta(seconds=1))
    assert blocks == [m * MINUTE for m in (1, 2, 4, 8, 16, 32, 60, 60, 60)]
    assert await retry_after(throttle, key) == 60 * MINUTE - 1


async def test_block_passes(throttle: Throttle, clock: Clock) -> None:
    key = new_account()
    for _ in range(7):
        await throttle.failure(key)
    clock.advance(timedelta(seconds=90))
    assert await retry_after(throttle, key) == 30
    clock.advance(timedelta(seconds=30))
    await throttle.check(key)
    # Still in the window: the next failure blocks again, longer.
    assert await throttle.failure(key) == 4 * MINUTE


async def test_window_expiry_resets_the_count(throttle: Throttle, clock: Clock) -> None:
    key = new_account()
    for _ in range(5):
        await throttle.failure(key)
    clock.advance(timedelta(minutes=15))
    assert await throttle.failure(key) is None
    found = await row(throttle.db, key)
    assert found is not None
    assert found[0] == 1
    assert found[1] == clock.now
    for _ in range(4):
        assert await throttle.failure(key) is None
    assert await throttle.failure(key) == MINUTE


async def test_window_does_not_reset_during_a_block(throttle: Throttle, clock: Clock) -> None:
    key = new_account()
    policy = ThrottlePolicy(base_block=timedelta(minutes=20), max_block=timedelta(hours=1))
    throttle = Throttle(throttle.db, policy, clock)
    for _ in range(6):
        await throttle.failure(key)
    clock.advance(timedelta(minutes=16))  # window over, block not
    assert await throttle.failure(key) == 40 * MINUTE
    found = await row(throttle.db, key)
    assert found is not None
    assert found[0] == 7


async def test_success_clears_the_account_but_not_the_address(
    throttle: Throttle,
) -> None:
    account = new_account()
    address = address_key("198.51.100.7")
    for _ in range(4):
        await throttle.failure(account, address)
    await throttle.success(account)
    assert await row(throttle.db, account) is None
    found = await row(throttle.db, address)
    assert found is not None
    assert found[0] == 4
    with pytest.raises(ValueError, match="account keys only"):
        await throttle.success(address)


async def test_check_raises_if_any_key_is_blocked(throttle: Throttle) -> None:
    account, address = new_account(), address_key(f"2001:db8:{uuid.uuid4().int % 65536:x}::1")
    for _ in range(6):
        await throttle.failure(address)
    await throttle.check(account)
    assert await retry_after(throttle, account, address) == MINUTE
    await throttle.check()  # no keys: nothing to check


async def test_concurrent_failures_are_all_counted(throttle: Throttle) -> None:
    key = new_account()
    await asyncio.gather(*(throttle.failure(key) for _ in range(20)))
    found = await row(throttle.db, key)
    assert found is not None
    assert found[0] == 20
    assert await retry_after(throttle, key) == 60 * MINUTE


async def test_concurrent_failures_on_shared_keys_do_not_deadlock(throttle: Throttle) -> None:
    a, b = new_account(), new_account()
    await asyncio.gather(
        *(throttle.failure(*((a, b) if i % 2 else (b, a))) for i in range(20)),
    )
    for key in (a, b):
        found = await row(throttle.db, key)
        assert found is not None
        assert found[0] == 20


async def test_default_clock_is_the_database_time(db: Database) -> None:
    throttle = Throttle(db)
    key = new_account()
    for _ in range(5):
        assert await throttle.failure(key) is None
    block = await throttle.failure(key)
    assert block is not None
    assert MINUTE - 2 <= block <= MINUTE
    with pytest.raises(Throttled) as raised:
        await throttle.check(key)
    assert 1 <= raised.value.retry_after_s <= MINUTE


def test_unknown_user_keys() -> None:
    tenant, other = uuid.uuid4(), uuid.uuid4()
    assert account_key(tenant, "Yamada") == account_key(tenant, "yamada")
    assert account_key(tenant, "Yamada") == account_key(str(tenant), "YAMADA")
    assert account_key(tenant, "yamada") != account_key(other, "yamada")
    assert account_key(tenant, "yamada") != account_key(tenant, "yamada2")
    assert account_key("acme", "yamada") == account_key("ACME", "Yamada")
    assert account_key("acme", "yamada") != account_key("acme-2", "yamada")
    user_id = uuid.uuid4()
    assert account_key(user_id) != account_key(user_id, "")


def test_keys_hold_no_username_or_address() -> None:
    key = account_key(uuid.uuid4(), "Yamada.Taro@example.com")
    for text in ("yamada", "taro", "example"):
        assert text not in key.lower()
    assert "203.0.113" not in address_key("203.0.113.9")
    assert len(key) == len("acct:") + 64


def test_address_keys() -> None:
    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff:ffff:ffff:ffff")
    assert address_key("2001:db8:1:2::1") == address_key("2001:DB8:1:2:0:0:0:1")
    assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
    assert address_key("203.0.113.9") != address_key("203.0.113.10")
    assert address_key("::ffff:203.0.113.9") == address_key("203.0.113.9")
    assert address_key("203.0.113.9") != account_key(uuid.uuid4(), "203.0.113.9")
    with pytest.raises(ValueError, match="does not appear to be"):
        address_key("testclient")


def test_policy_blocks() -> None:
    policy = ThrottlePolicy()
    assert policy.block_for(5) is None
    assert policy.block_for(6) == timedelta(minutes=1)
    assert policy.block_for(8) == timedelta(minutes=4)
    assert policy.block_for(10_000) == timedelta(hours=1)
    with pytest.raises(ValueError, match="max_block"):
        ThrottlePolicy(base_block=timedelta(hours=2))


async def test_no_free_failures_blocks_at_once(db: Database, clock: Clock) -> None:
    throttle = Throttle(db, ThrottlePolicy(max_failures=0), clock)
    key = new_account()
    assert await throttle.failure(key) == MINUTE
    assert await throttle.failure(key) == 2 * MINUTE


async def test_rejects_foreign_keys(throttle: Throttle) -> None:
    with pytest.raises(ValueError, match="not a throttle key"):
        await throttle.failure("yamada")
    with pytest.raises(ValueError, match="not a throttle key"):
        await throttle.check("yamada")


async def test_purge_expired_removes_only_finished_rows(throttle: Throttle, clock: Clock) -> None:
    now = clock.now
    window = timedelta(minutes=15)
    rows = {
        # window over, never blocked
        "done": (now - window - timedelta(seconds=1), None),
        # window over, block over
        "done_blocked": (now - 2 * window, now - timedelta(seconds=1)),
        # window still running
        "in_window": (now - timedelta(minutes=5), None),
        # window over, block still running
        "blocked": (now - 2 * window, now + timedelta(minutes=10)),
    }
    keys = {name: new_account() for name in rows}
    async with throttle.db.transaction() as s:
        await s.execute(
            insert(throttle_table),
            [
                {
                    "key": keys[name],
                    "failures": 7,
                    "window_started_at": started,
                    "blocked_until": blocked,
                }
                for name, (started, blocked) in rows.items()
            ],
        )
    assert await throttle.purge_expired() >= 2
    assert await row(throttle.db, keys["done"]) is None
    assert await row(throttle.db, keys["done_blocked"]) is None
    assert await row(throttle.db, keys["in_window"]) is not None
    assert await row(throttle.db, keys["blocked"]) is not None


async def test_an_address_gets_more_room_than_an_account(db: Database) -> None:
    throttle = Throttle(db)
    account = new_account()
    address = address_key(f"2001:db8:ffff:{uuid.uuid4().int % 65536:x}::1")
    await asyncio.gather(*(throttle.failure(address) for _ in range(100)))
    await throttle.check(address)  # an office behind one NAT address is not locked out yet
    assert await throttle.failure(address) == MINUTE
    for _ in range(5):
        await throttle.failure(account)
    assert await throttle.failure(account) == MINUTE
