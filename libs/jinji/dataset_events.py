"""The "a tenant's datasets changed" messages ingestion sends analytics through its outbox.

Topics: ``dataset.committed`` (an upload made new versions) and ``dataset.deleted``. Each
message carries its outbox id, so analytics acts on it once however often it arrives.
"""

from __future__ import annotations

from typing import Any

from jinji import outbox
from jinji.client import ServiceClient

INTAKE_PATH = "/analytics/internal/v1/dataset-events"
AUDIENCE = "jinji-analytics"
SCOPE = "analytics:datasets"
DESTINATION = "analytics"
TOPICS = ("dataset.committed", "dataset.deleted")


def render(message: outbox.Message) -> dict[str, Any]:
    return {"id": str(message.id), "topic": message.topic, **message.payload}


def deliverer(client: ServiceClient) -> outbox.Deliverer:
    return outbox.http_deliverer(client, INTAKE_PATH, render)
