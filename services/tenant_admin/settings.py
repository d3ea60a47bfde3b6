from pydantic import Field, SecretStr

from jinji.config import Settings


class TenantAdminSettings(Settings):
    # Identity's internal API, called with tenant-admin's own service token.
    identity_client_id: str = "tenant-admin"
    identity_client_secret: SecretStr | None = None
    # 12.1.2: changes and maintenance are announced at least this long before they start.
    notice_lead_days: int = Field(default=7, ge=0, le=90)
    # How often the lifecycle loop looks for contracts that ended and purges that are due.
    lifecycle_interval_s: float = Field(default=60.0, gt=0)
    # Deliver webhooks to hosts resolving to internal addresses (local test receivers only).
    webhook_allow_internal: bool = False
