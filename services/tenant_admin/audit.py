"""Tenant-admin's audit events, written to the outbox in the caller's transaction so an event
exists if and only if what it describes happened. Ids and reason codes only: never secrets,
URLs, report titles or descriptions."""

from __future__ import annotations

import ipaddress
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from jinji import outbox
from jinji.logs import request_id_var

SOURCE = "tenant_admin"
_UNKNOWN_PEER = "0.0.0.0"  # noqa-free placeholder: a peer address that could not be parsed


def client_ip(request: Request) -> str:
    host = request.client.host if request.client else ""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return _UNKNOWN_PEER


async def record(
    session: AsyncSession,
    action: str,
    *,
    outcome: str = "success",
    actor: tuple[str, str | None] = ("system", None),
    tenant_id: uuid.UUID | None = None,
    target: tuple[str, str] | None = None,
    source_ip: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    event_id = uuid.uuid4()
    await outbox.enqueue(
        session,
        source=SOURCE,
        destination="audit",
        topic=action,
        message_id=event_id,
        payload={
            "id": str(event_id),
            "occurred_at": datetime.now(UTC).isoformat(),
            "service": SOURCE,
            "action": f"tenants.{action}",
            "outcome": outcome,
            "actor": {"type": actor[0], "id": actor[1]},
            "tenant_id": str(tenant_id) if tenant_id else None,
            "target": {"type": target[0], "id": target[1]} if target else None,
            "source_ip": source_ip,
            "request_id": request_id_var.get(),
            "details": details or {},
        },
    )
