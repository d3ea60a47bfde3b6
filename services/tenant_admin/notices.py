"""Service notices (12.1.2, 16.1.1) and their delivery to tenants' webhooks.

Operators publish notices of changes, maintenance and incidents to every tenant or to listed
ones. Changes and maintenance are announced at least ``notice_lead_days`` ahead; incidents at
once. Each addressed tenant with a webhook also gets the notice POSTed to it, signed with the
tenant's secret: the outbox message is written in the notice's transaction, so a published
notice is always delivered (at least once) and a rolled-back one never is.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import any_, delete, func, insert, literal, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from jinji import outbox
from jinji.errors import ApiError
from jinji.keys import AssociatedData, DecryptionFailed, KeyUnavailable, UnwrapFailed
from services.tenant_admin import audit
from services.tenant_admin.context import TenantAdmin
from services.tenant_admin.tables import notices, tenants, webhooks

log = logging.getLogger(__name__)

KINDS = ("change", "maintenance", "incident")
SEVERITIES = ("info", "warning", "critical")
# Kinds that must be announced ahead of time; an incident is announced when it happens.
ANNOUNCED_AHEAD = frozenset({"change", "maintenance"})

WEBHOOK_DESTINATION = "webhook"
WEBHOOK_TIMEOUT = httpx.Timeout(5.0)
SIGNATURE_HEADER = "X-Jinji-Signature"
TIMESTAMP_HEADER = "X-Jinji-Timestamp"
DELIVERY_HEADER = "X-Jinji-Delivery"


class NoticeTooLate(ApiError):
    def __init__(self, earliest_start: datetime) -> None:
        super().__init__(
            422,
            "notice_too_late",
            "Changes and maintenance must be announced ahead of time; start later.",
            {"earliest_start": earliest_start.isoformat()},
        )


class InvalidPeriod(ApiError):
    def __init__(self) -> None:
        super().__init__(422, "invalid_period", "ends_at must be after starts_at.")


class UnknownTenants(ApiError):
    def __init__(self, unknown: Sequence[uuid.UUID]) -> None:
        super().__init__(
            422, "unknown_tenant", "Unknown tenant.", {"tenants": sorted(str(t) for t in unknown)}
        )


class TenantNotFound(ApiError):
    def __init__(self) -> None:
        super().__init__(404, "tenant_not_found", "No such tenant.")


class WebhookNotFound(ApiError):
    def __init__(self) -> None:
        super().__init__(404, "not_found", "No webhook is configured for this tenant.")


class InvalidWebhookUrl(ApiError):
    def __init__(self) -> None:
        super().__init__(
            422,
            "invalid_webhook_url",
            "The webhook URL must be an absolute public https:// URL without credentials.",
        )


@dataclass(frozen=True)
class NoticeDraft:
    kind: str
    severity: str
    title_ja: str
    title_en: str
    body_ja: str
    body_en: str
    starts_at: datetime
    ends_at: datetime | None
    # None: every tenant.
    tenant_ids: list[uuid.UUID] | None


def canonical_json(value: Any) -> bytes:
    """The one serialisation a signature is computed over: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def describe(row: RowMapping, *, operator: bool) -> dict[str, Any]:
    """A notice as shown to a tenant; operators also see who it is addressed to."""
    out: dict[str, Any] = {
        "id": str(row["id"]),
        "kind": row["kind"],
        "severity": row["severity"],
        "title": {"ja": row["title_ja"], "en": row["title_en"]},
        "body": {"ja": row["body_ja"], "en": row["body_en"]},
        "starts_at": _iso(row["starts_at"]),
        "ends_at": _iso(row["ends_at"]),
    }
    if operator:
        ids = row["tenant_ids"]
        out["tenants"] = "all" if ids is None else [str(t) for t in ids]
        out["created_at"] = _iso(row["created_at"])
        out["created_by"] = row["created_by"]
    return out


def earliest_start(now: datetime, lead_days: int) -> datetime:
    return now + timedelta(days=lead_days)


def check_draft(draft: NoticeDraft, *, now: datetime, lead_days: int) -> None:
    if draft.ends_at is not None and draft.ends_at <= draft.starts_at:
        raise InvalidPeriod()
    earliest = earliest_start(now, lead_days)
    if draft.kind in ANNOUNCED_AHEAD and draft.starts_at < earliest:
        raise NoticeTooLate(earliest)


async def publish(
    ctx: TenantAdmin, draft: NoticeDraft, *, actor: str, source_ip: str | None
) -> dict[str, Any]:
    check_draft(draft, now=ctx.now(), lead_days=ctx.settings.notice_lead_days)
    notice_id = uuid.uuid4()
    async with ctx.db.transaction() as s:
        if draft.tenant_ids is not None:
            known = select(tenants.c.id).where(tenants.c.id.in_(draft.tenant_ids))
            found = set((await s.scalars(known)).all())
            unknown = [t for t in draft.tenant_ids if t not in found]
            if unknown:
                raise UnknownTenants(unknown)
        row = (
            (
                await s.execute(
                    insert(notices)
                    .values(
                        id=notice_id,
                        kind=draft.kind,
                        severity=draft.severity,
                        title_ja=draft.title_ja,
                        title_en=draft.title_en,
                        body_ja=draft.body_ja,
                        body_en=draft.body_en,
                        starts_at=draft.starts_at,
                        ends_at=draft.ends_at,
                        tenant_ids=draft.tenant_ids,
                        created_by=actor,
                    )
                    .returning(*notices.c)
                )
            )
            .mappings()
            .one()
        )
        await audit.record(
            s,
            "notice.published",
            actor=("operator", actor),
            target=("notice", str(notice_id)),
            source_ip=source_ip,
            details={
                "kind": draft.kind,
                "severity": draft.severity,
                "tenants": "all"
                if draft.tenant_ids is None
                else " ".join(str(t) for t in draft.tenant_ids),
            },
        )
        await _enqueue_webhooks(s, describe(row, operator=False), draft.tenant_ids)
    return describe(row, operator=True)


async def _enqueue_webhooks(
    s: AsyncSession, notice: dict[str, Any], tenant_ids: list[uuid.UUID] | None
) -> None:
    query = (
        select(webhooks.c.tenant_id, webhooks.c.url)
        .join(tenants, tenants.c.id == webhooks.c.tenant_id)
        .where(tenants.c.status == "active")
    )
    if tenant_ids is not None:
        query = query.where(webhooks.c.tenant_id.in_(tenant_ids))
    for tenant_id, url in (await s.execute(query)).all():
        await outbox.enqueue(
            s,
            source=audit.SOURCE,
            destination=WEBHOOK_DESTINATION,
            topic="notice.published",
            payload={"tenant_id": str(tenant_id), "url": url, "notice": notice},
        )


async def list_notices(
    s: AsyncSession,
    *,
    now: datetime,
    tenant_id: uuid.UUID | None,
    include_past: bool,
    limit: int,
    offset: int,
) -> list[RowMapping]:
    """Notices addressed to ``tenant_id`` (None: every notice, for operators) that are current
    or upcoming, or also ended ones with ``include_past``; newest first."""
    query = select(notices)
    if tenant_id is not None:
        query = query.where(
            or_(notices.c.tenant_ids.is_(None), literal(tenant_id) == any_(notices.c.tenant_ids))
        )
    if not include_past:
        query = query.where(or_(notices.c.ends_at.is_(None), notices.c.ends_at > now))
    query = query.order_by(notices.c.created_at.desc(), notices.c.id.desc())
    return list((await s.execute(query.limit(limit).offset(offset))).mappings().all())


# --------------------------------------------------------------------------- webhooks


def check_webhook_url(url: str) -> str:
    """Webhooks go to https:// only (the deliverer itself does not check: tests receive over
    plain HTTP on loopback)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        raise InvalidWebhookUrl() from None
    if parsed.scheme != "https" or not parsed.host or parsed.userinfo or parsed.fragment:
        raise InvalidWebhookUrl()
    if _internal_host(parsed.host):
        # Deliveries come from inside the platform's network: never point them at it.
        raise InvalidWebhookUrl()
    return url


async def resolves_internal(url: str) -> bool:
    """True when the URL's host is, or resolves to, any non-public address."""
    parsed = httpx.URL(url)
    if _internal_host(parsed.host):
        return True
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            parsed.host, parsed.port or 443, type=socket.SOCK_STREAM
        )
    except OSError:
        return False  # unresolvable: the POST fails and is retried like any outage
    return any(not ipaddress.ip_address(info[4][0]).is_global for info in infos)


def _internal_host(host: str) -> bool:
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return not address.is_global


def _secret_aad(platform_id: uuid.UUID, tenant_id: uuid.UUID) -> AssociatedData:
    # Under the platform DEK: a tenant may not have a DEK of its own (yet), and the secret
    # belongs to our delivery machinery rather than to the tenant's content.
    return AssociatedData(str(platform_id), "tenancy.webhooks", "secret_enc", str(tenant_id))


def _webhook_view(url: str, configured_at: datetime) -> dict[str, Any]:
    return {"url": url, "configured_at": configured_at.isoformat()}


async def set_webhook(
    ctx: TenantAdmin,
    *,
    tenant_id: uuid.UUID,
    url: str,
    secret: str,
    actor: str,
    source_ip: str | None,
) -> dict[str, Any]:
    check_webhook_url(url)
    platform_id = await ctx.platform_tenant()
    secret_enc = await ctx.envelope.encrypt(
        str(platform_id), secret.encode(), _secret_aad(platform_id, tenant_id)
    )
    async with ctx.db.transaction() as s:
        if await s.scalar(select(tenants.c.id).where(tenants.c.id == tenant_id)) is None:
            raise TenantNotFound()
        upsert = pg_insert(webhooks).values(tenant_id=tenant_id, url=url, secret_enc=secret_enc)
        configured_at = await s.scalar(
            upsert.on_conflict_do_update(
                index_elements=[webhooks.c.tenant_id],
                set_={"url": url, "secret_enc": secret_enc, "created_at": func.now()},
            ).returning(webhooks.c.created_at)
        )
        # Neither the URL (it may carry a token) nor anything about the secret is audited.
        await audit.record(
            s,
            "webhook.configured",
            actor=("user", actor),
            tenant_id=tenant_id,
            target=("webhook", str(tenant_id)),
            source_ip=source_ip,
        )
    assert configured_at is not None
    return _webhook_view(url, configured_at)


async def get_webhook(ctx: TenantAdmin, tenant_id: uuid.UUID) -> dict[str, Any]:
    async with ctx.db.transaction() as s:
        row = (
            await s.execute(
                select(webhooks.c.url, webhooks.c.created_at).where(
                    webhooks.c.tenant_id == tenant_id
                )
            )
        ).one_or_none()
    if row is None:
        raise WebhookNotFound()
    return _webhook_view(row.url, row.created_at)


async def delete_webhook(
    ctx: TenantAdmin, *, tenant_id: uuid.UUID, actor: str, source_ip: str | None
) -> None:
    """Idempotent: removing a webhook that is not there is not an error."""
    async with ctx.db.transaction() as s:
        removed = await s.scalar(
            delete(webhooks)
            .where(webhooks.c.tenant_id == tenant_id)
            .returning(webhooks.c.tenant_id)
        )
        if removed is not None:
            await audit.record(
                s,
                "webhook.deleted",
                actor=("user", actor),
                tenant_id=tenant_id,
                target=("webhook", str(tenant_id)),
                source_ip=source_ip,
            )


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """``X-Jinji-Signature``: HMAC-SHA256 over ``<timestamp>.<body>`` with the tenant's secret
    (its UTF-8 bytes), hex-encoded and prefixed ``sha256=``."""
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def webhook_deliverer(ctx: TenantAdmin, http: httpx.AsyncClient) -> outbox.Deliverer:
    """Delivers ``webhook`` outbox messages: one signed POST each, acknowledged on 2xx.

    Each message goes to the tenant's webhook as configured at delivery time (URL and secret
    change together); a message whose webhook was removed meanwhile is acknowledged and
    dropped. Neither the secret nor the URL is ever logged.
    """

    async def deliver(batch: Sequence[outbox.Message]) -> set[uuid.UUID]:
        platform_id = await ctx.platform_tenant()
        acked: set[uuid.UUID] = set()
        for message in batch:
            if await _deliver_one(ctx, http, platform_id, message):
                acked.add(message.id)
        return acked

    return deliver


async def _deliver_one(
    ctx: TenantAdmin, http: httpx.AsyncClient, platform_id: uuid.UUID, message: outbox.Message
) -> bool:
    tenant_id = uuid.UUID(str(message.payload["tenant_id"]))
    where = {"message_id": str(message.id), "tenant_id": str(tenant_id)}
    async with ctx.db.transaction() as s:
        row = (
            await s.execute(
                select(webhooks.c.url, webhooks.c.secret_enc).where(
                    webhooks.c.tenant_id == tenant_id
                )
            )
        ).one_or_none()
    if row is None:
        log.info("webhook removed before delivery; notice dropped", extra=where)
        return True
    if not ctx.settings.webhook_allow_internal and await resolves_internal(row.url):
        # A public name may point at an internal address (or be re-pointed after it was
        # saved): such a delivery is dropped, never sent into the platform's network.
        log.warning("webhook host resolves to an internal address; notice dropped", extra=where)
        return True
    try:
        secret = await ctx.envelope.decrypt(
            str(platform_id), row.secret_enc, _secret_aad(platform_id, tenant_id)
        )
    except (DecryptionFailed, KeyUnavailable, UnwrapFailed) as exc:
        log.warning("webhook secret unavailable", extra={**where, "error": type(exc).__name__})
        return False
    body = canonical_json(message.payload["notice"])
    timestamp = str(int(ctx.now().timestamp()))
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        TIMESTAMP_HEADER: timestamp,
        DELIVERY_HEADER: str(message.id),
    }
    try:
        # Streamed and never read: a receiver's answer body is of no use and may be large.
        async with http.stream(
            "POST",
            row.url,
            content=body,
            headers=headers,
            timeout=WEBHOOK_TIMEOUT,
            follow_redirects=False,
        ) as response:
            status = response.status_code
    except httpx.HTTPError as exc:
        log.warning("webhook delivery failed", extra={**where, "error": type(exc).__name__})
        return False
    if not 200 <= status < 300:
        log.warning("webhook delivery refused", extra={**where, "status": status})
        return False
    return True
