"""A tenant's settings analytics applies, read from tenant-admin with analytics' own token.

Kept for ``tenant_settings_ttl_s``: a changed minimum group size applies within that time; a
changed fiscal year start changes the results' fingerprint, so nothing computed for the old
one is served after the cache entry expires.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from jinji.client import ServiceClient
from jinji.errors import ApiError


@dataclass(frozen=True)
class TenantSettings:
    fiscal_year_start: int  # month 1..12
    min_group_size: int
    companies: tuple[str, ...]


class TenantSettingsSource:
    def __init__(
        self,
        client: ServiceClient,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl_s = ttl_s
        self._clock = clock
        self._cache: dict[uuid.UUID, tuple[float, TenantSettings]] = {}

    async def get(self, tenant_id: uuid.UUID) -> TenantSettings:
        now = self._clock()
        cached = self._cache.get(tenant_id)
        if cached is not None and now - cached[0] < self._ttl_s:
            return cached[1]
        response = await self._client.request("GET", f"/tenants/v1/tenants/{tenant_id}/settings")
        if response.status_code == 404:
            raise ApiError(404, "tenant_not_found", "No such tenant.")
        if response.status_code != 200:
            raise ApiError(
                503,
                "tenants_unavailable",
                "The tenant's settings could not be read. Retry shortly.",
                {"status": response.status_code},
                {"Retry-After": "5"},
            )
        body = response.json()
        settings = TenantSettings(
            fiscal_year_start=int(body["fiscal_year_start_month"]),
            min_group_size=int(body["min_group_size"]),
            companies=tuple(c["code"] for c in body["companies"]),
        )
        self._cache[tenant_id] = (now, settings)
        return settings
