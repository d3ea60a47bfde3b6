"""The tenant gate's memory: an "active" answer is trusted for its lifetime, any other answer
never, so a termination reaches every service within TENANT_STATUS_TTL_S."""

from __future__ import annotations

from typing import Any

from jinji.db import TENANT_STATUS_TTL_S, ActiveTenants


class Registry:
    """Stands in for tenancy.tenants (Database.tenant_is_active runs against PostgreSQL in
    tests/foundation and tests/security); counts the reads."""

    def __init__(self) -> None:
        self.status: dict[str, str] = {}
        self.reads = 0

    async def tenant_is_active(self, tenant_id: str) -> bool:
        self.reads += 1
        return self.status.get(tenant_id) == "active"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def gate() -> tuple[ActiveTenants, Registry, Clock]:
    registry, clock = Registry(), Clock()
    db: Any = registry
    return ActiveTenants(db, clock=clock), registry, clock


async def test_an_active_answer_is_trusted_for_the_lifetime_then_read_again() -> None:
    active, registry, clock = gate()
    registry.status["a"] = "active"
    assert await active("a")
    clock.now += TENANT_STATUS_TTL_S / 2
    assert await active("a")
    assert registry.reads == 1
    registry.status["a"] = "terminated"
    assert await active("a")  # still within the lifetime of the last answer
    clock.now += TENANT_STATUS_TTL_S
    assert not await active("a")
    assert registry.reads == 2


async def test_a_refusal_is_never_remembered() -> None:
    active, registry, _ = gate()
    registry.status["p"] = "provisioning"
    assert not await active("p")
    assert not await active("unknown")
    registry.status["p"] = "active"
    assert await active("p")
    assert registry.reads == 3


async def test_memory_stays_bounded() -> None:
    active, registry, _ = gate()
    for n in range(ActiveTenants.MAX_REMEMBERED + 5):
        registry.status[str(n)] = "active"
        assert await active(str(n))
    assert len(active._active_until) <= ActiveTenants.MAX_REMEMBERED
