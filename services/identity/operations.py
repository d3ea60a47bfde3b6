"""Provider operations shared by the operator API and the scheduled job."""

from __future__ import annotations

from datetime import timedelta

from services.identity import audit
from services.identity.context import Identity


async def rotate_signing_key(
    ctx: Identity, *, actor: tuple[str, str | None], source_ip: str | None = None
) -> str:
    """New current signing key; the previous one stays published until every token it
    signed has expired, then the next rotation retires it."""
    keep = timedelta(seconds=ctx.settings.access_token_ttl_s + ctx.settings.token_leeway_s + 60)
    kid = await ctx.keyring.rotate(keep)
    async with ctx.db.transaction() as s:
        await audit.record(
            s,
            "signing_key.rotated",
            actor=actor,
            tenant_id=ctx.platform_tenant,
            target=("signing_key", kid),
            source_ip=source_ip,
        )
    return kid
