"""Audit events, written to the outbox in the caller's transaction so an event exists if and
only if what it describes happened; the relay delivers them to the audit-log service.

Ids and reason codes only: never passwords, codes, secrets, emails, names or HR data (the
audit trail is kept after a customer's data is deleted).
"""

from __future__ import annotations

import json
import re
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
CODE = r"[A-Za-z0-9_.:/+=#-]+"
_CODE_RE = re.compile(rf"^{CODE}$")
_CODES_RE = re.compile(rf"^{CODE}( {CODE})*$")
_EMAIL_RE = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")
# Detail keys whose value is a list of codes separated by spaces.
LIST_KEYS = frozenset({"amr", "roles", "scopes", "companies", "tenants"})
MAX_DETAILS_BYTES = 4096
AUDIENCE = "jinji-audit-log"
SCOPE = "audit:write"


def check_details(details: dict[str, Any]) -> None:
    """Refuse anything that could be personal data (ValueError naming the field): flat ids,
    codes and numbers only, no emails. The audit log checks every event it takes the same way;
    services check theirs when they record them, so a bad event fails the action that made it
    instead of waiting in the outbox."""
    if len(json.dumps(details, ensure_ascii=False).encode()) > MAX_DETAILS_BYTES:
        raise ValueError("details exceed 4 KB")
    for key, value in details.items():
        if not _CODE_RE.match(key) or len(key) > 64:
            raise ValueError(f"details.{key}: not a valid key")
        check_value(key, value)


def check_value(key: str, value: Any) -> None:
    """Refuse anything that could be personal data; the message names the field."""
    if value is None or isinstance(value, bool | int | float):
        return
    if not isinstance(value, str):
        raise ValueError(f"details.{key}: nested values are not allowed (flat JSON only)")
    if _EMAIL_RE.search(value):
        raise ValueError(f"details.{key}: looks like an email address (ids only)")
    pattern = _CODES_RE if key in LIST_KEYS else _CODE_RE
    if len(value) > 512 or not (value == "" or pattern.match(value)):
        raise ValueError(f"details.{key}: free text is not allowed (ids and codes only)")


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
        check_details(details or {})
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
