"""Provider operations shared by the operator API and the scheduled job."""

from __future__ import annotations

from services.identity import audit
from services.identity.context import Identity


async def rotate_signing_key(
    ctx: Identity, *, actor: tuple[str, str | None], source_ip: str | None = None
) -> str:
    """Publish a new signing key (see :mod:`services.identity.keyring` for its life)."""
    kid = await ctx.keyring.rotate()
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
