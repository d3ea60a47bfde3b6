from pydantic import Field, SecretStr

from jinji.config import Settings


class AnalyticsSettings(Settings):
    # Analytics' own service token: tenant settings from tenant-admin, audit events.
    analytics_client_id: str = "analytics"
    analytics_client_secret: SecretStr | None = None
    # A tenant's settings (fiscal year, minimum group size) are re-read after this long.
    tenant_settings_ttl_s: float = Field(default=30.0, ge=0)
    # Decrypted results kept in memory, for this many tenants (least recently used first out).
    result_cache_tenants: int = Field(default=16, ge=1)
    # Dashboards already put together (per result state, view and caller scope).
    rendered_cache_entries: int = Field(default=2048, ge=1)
