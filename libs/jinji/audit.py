"""Audit events, written to the outbox in the caller's transaction so an event exists if and
only if what it describes happened; the relay delivers them to the audit-log service.

Ids and reason codes only: never passwords, codes, secrets, emails, names or HR data (the
audit trail is kept after a customer's data is deleted).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from jinji import outbox
from jinji.client import ServiceClient, ServiceTokens
from jinji.config import Settings
from jinji.logs import request_id_var

INGEST_PATH = "/audit/v1/events"
AUDIENCE = "jinji-audit-log"
SCOPE = "audit:write"


class AuditTrail:
    def __init__(self, service: str, action_prefix: str) -> None:
        self.service = service
        self.action_prefix = action_prefix

    async def record(
        self,
        session: AsyncSession,
        action: str,
        *,
        outcome: str = "success",
        actor: tuple[str, str | None] = ("system", None),
        tenant_id: uuid.UUID | None = None,
        target: tuple[str, str] | None = None,
        source_ip: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> uuid.UUID:
        event_id = uuid.uuid4()
        await outbox.enqueue(
            session,
            source=self.service,
            destination="audit",
            topic=action,
            message_id=event_id,
            payload={
                "id": str(event_id),
                "occurred_at": datetime.now(UTC).isoformat(),
                "service": self.service,
                "action": f"{self.action_prefix}.{action}",
                "outcome": outcome,
                "actor": {"type": actor[0], "id": actor[1]},
                "tenant_id": str(tenant_id) if tenant_id else None,
                "target": {"type": target[0], "id": target[1]} if target else None,
                "source_ip": source_ip,
                "request_id": request_id_var.get(),
                "details": details or {},
            },
        )
        return event_id


def client(http: httpx.AsyncClient, settings: Settings, tokens: ServiceTokens) -> ServiceClient:
    """The audit log, called with the service's own token (scope ``audit:write``)."""
    return ServiceClient(
        http, settings.resolved_audit_url, tokens(AUDIENCE, SCOPE), service="audit_log"
    )


def deliverer(client: ServiceClient) -> outbox.Deliverer:
    """Delivers outbox batches to the audit log (its intake is idempotent on event id)."""
    return outbox.http_deliverer(client, INGEST_PATH, lambda message: message.payload)
