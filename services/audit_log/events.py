"""The shape of an audit event, and the rule that it carries no personal data.

Audit logs are kept after a customer's data is deleted (CLD8.1.5), so an event may hold ids,
codes and numbers only. Emails are refused anywhere; free text is refused in detail fields
(a known list field may hold space-separated codes, e.g. roles or amr); every refusal names
the field.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator

from jinji.audit import CODE, check_details

Id = Annotated[str, Field(min_length=1, max_length=128, pattern=rf"^{CODE}$")]
Action = Annotated[
    str, Field(min_length=3, max_length=128, pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
]


class Actor(BaseModel):
    type: Literal["user", "service", "operator", "system", "scim"]
    id: Id | None = None


class Target(BaseModel):
    type: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z_]+$")]
    id: Id


class EventIn(BaseModel):
    id: uuid.UUID
    occurred_at: datetime
    service: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z_]+$")]
    action: Action
    outcome: Literal["success", "failure"]
    actor: Actor
    tenant_id: uuid.UUID | None = None
    target: Target | None = None
    source_ip: Annotated[str, Field(max_length=64, pattern=r"^[0-9A-Fa-f:.]+$")] | None = None
    request_id: Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z0-9._-]+$")] | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    @field_validator("occurred_at")
    @classmethod
    def aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("occurred_at must carry a time zone")
        return value

    @field_validator("details")
    @classmethod
    def ids_and_codes_only(cls, details: dict[str, Any]) -> dict[str, Any]:
        check_details(details)
        return details


class Batch(BaseModel):
    events: list[EventIn] = Field(min_length=1, max_length=1000)
