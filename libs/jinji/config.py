"""Settings shared by every service, read from the environment (prefix ``JINJI_``).

Each service subclasses :class:`Settings` for its own options, so there is one way to
configure anything: an environment variable, documented by the field that reads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JINJI_", extra="ignore", frozen=True)

    # Unset: `jinji up` starts an embedded PostgreSQL under data_dir.
    database_url: SecretStr | None = None
    data_dir: Path = Path(".data")
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_pool_timeout_s: float = Field(default=5.0, gt=0)
    db_statement_timeout_ms: int = Field(default=30_000, ge=0)

    key_provider: Literal["local", "aws-kms"] = "local"
    # Outside the database on purpose: a database backup must never contain a KEK.
    key_dir: Path | None = None
    kms_region: str = "ap-northeast-1"
    kms_endpoint_url: str | None = None
    dek_cache_ttl_s: float = Field(default=300.0, ge=0)

    # Token verification (every service) and issuance (identity).
    issuer: str = "http://127.0.0.1:8000/identity"
    jwks_url: str | None = None
    token_leeway_s: int = Field(default=30, ge=0, le=120)

    # Other services' base URLs (without their prefix: /audit, /tenants, /analytics). Unset:
    # the gateway the issuer is served from, as in `jinji up`.
    audit_url: str | None = None
    # Identity as the other services reach it (service tokens): unset, the issuer URL.
    identity_url: str | None = None
    tenants_url: str | None = None
    analytics_url: str | None = None

    # Outgoing HTTP calls (JWKS fetches, other services).
    http_timeout_s: float = Field(default=5.0, gt=0)

    log_level: str = "INFO"
    migrations_dir: Path = REPO_ROOT / "migrations"
    # The built web console (`npm run build` in web/), served at "/" by `jinji up`.
    web_dir: Path = REPO_ROOT / "web" / "dist"

    @property
    def resolved_key_dir(self) -> Path:
        return self.key_dir if self.key_dir is not None else self.data_dir / "keys"

    @property
    def gateway_url(self) -> str:
        return self.issuer.removesuffix("/identity")

    @property
    def resolved_identity_url(self) -> str:
        return self.identity_url or self.issuer

    @property
    def token_url(self) -> str:
        return f"{self.resolved_identity_url}/oauth2/token"

    @property
    def resolved_audit_url(self) -> str:
        return self.audit_url or self.gateway_url

    @property
    def resolved_tenants_url(self) -> str:
        return self.tenants_url or self.gateway_url

    @property
    def resolved_analytics_url(self) -> str:
        return self.analytics_url or self.gateway_url

    @property
    def resolved_jwks_url(self) -> str:
        return self.jwks_url or f"{self.issuer}/.well-known/jwks.json"
