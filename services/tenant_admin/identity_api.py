"""Calls to identity's internal API (service token, scope ``identity:tenants``)."""

from __future__ import annotations

import uuid
from typing import Any

from jinji.errors import ApiError
from services.tenant_admin.context import TenantAdmin


class IdentityCallFailed(ApiError):
    def __init__(self, operation: str, status: int) -> None:
        super().__init__(
            503,
            "identity_unavailable",
            "The identity service did not complete the request; nothing half-done is visible. "
            "Retry shortly.",
            {"operation": operation, "status": status},
            {"Retry-After": "5"},
        )


async def _call(
    ctx: TenantAdmin, operation: str, method: str, path: str, json: Any = None
) -> dict[str, Any]:
    # Every call below is idempotent on identity's side, so retries are safe.
    response = await ctx.identity.request(
        method, f"/internal/v1/tenants{path}", json=json, idempotent=True
    )
    if response.status_code >= 300:
        raise IdentityCallFailed(operation, response.status_code)
    return response.json() if response.content else {}


async def set_policy(ctx: TenantAdmin, tenant_id: uuid.UUID, policy: dict[str, Any]) -> None:
    await _call(ctx, "set_policy", "PUT", f"/{tenant_id}", policy)


async def first_admin(ctx: TenantAdmin, tenant_id: uuid.UUID, username: str) -> dict[str, Any]:
    return await _call(ctx, "first_admin", "POST", f"/{tenant_id}/admins", {"username": username})


async def suspend(ctx: TenantAdmin, tenant_id: uuid.UUID) -> None:
    await _call(ctx, "suspend", "POST", f"/{tenant_id}/suspend")


async def users_summary(ctx: TenantAdmin, tenant_id: uuid.UUID) -> dict[str, Any]:
    return await _call(ctx, "users_summary", "GET", f"/{tenant_id}/users/summary")


async def admins(ctx: TenantAdmin, tenant_id: uuid.UUID) -> list[dict[str, Any]]:
    return list((await _call(ctx, "admins", "GET", f"/{tenant_id}/admins"))["admins"])


async def purge(ctx: TenantAdmin, tenant_id: uuid.UUID) -> None:
    await _call(ctx, "purge", "DELETE", f"/{tenant_id}")
