"""The intake of ingestion's "datasets changed" messages (service tokens only).

Each message is acted on once: its id is recorded in the tenant's schema after the tenant's
results for the datasets as they are now exist, and a message already recorded is only
acknowledged. The results are computed from the current state, not from the message, so an
old or reordered message cannot bring back an old state.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from jinji import dataset_events
from jinji.errors import ApiError
from jinji.tenant_tables import analytics_events
from jinji.tokens import Principal, require_scopes
from jinji.web import service_router
from services.analytics.context import ContextDep
from services.registry import SPECS as SERVICES

router = service_router(SERVICES["analytics"])
Ingestion = Annotated[Principal, Depends(require_scopes(dataset_events.SCOPE))]


class Event(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    topic: Literal["dataset.committed", "dataset.deleted"]
    tenant_id: uuid.UUID


class Batch(BaseModel):
    events: list[Event] = Field(min_length=1, max_length=500)


@router.post(dataset_events.INTAKE_PATH.removeprefix("/analytics"), tags=["internal"])
async def dataset_changed(body: Batch, principal: Ingestion, ctx: ContextDep) -> dict[str, Any]:
    accepted = []
    for event in body.events:
        async with ctx.db.tenant_transaction(event.tenant_id) as tx:
            seen = await tx.session.scalar(
                select(analytics_events.c.message_id).where(
                    analytics_events.c.message_id == event.id
                )
            )
        if seen is None:
            try:
                settings = await ctx.tenants.get(event.tenant_id)
            except ApiError as error:
                if error.status != 404:
                    raise
                # The tenant is gone (terminated): nothing to compute for it any more.
                accepted.append(str(event.id))
                continue
            await ctx.results.current(event.tenant_id, settings.fiscal_year_start)
            async with ctx.db.tenant_transaction(event.tenant_id) as tx:
                await tx.session.execute(
                    pg_insert(analytics_events)
                    .values(message_id=event.id, topic=event.topic)
                    .on_conflict_do_nothing(index_elements=["message_id"])
                )
        accepted.append(str(event.id))
    return {"accepted": accepted}
