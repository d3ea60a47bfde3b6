from pydantic import Field

from jinji.config import Settings


class IdentitySettings(Settings):
    access_token_ttl_s: int = Field(default=300, ge=60, le=3600)
    service_token_ttl_s: int = Field(default=300, ge=60, le=3600)
    challenge_ttl_s: int = Field(default=300, ge=60, le=900)
    one_time_password_ttl_s: int = Field(default=72 * 3600, ge=3600)
    # Defaults for a tenant's sessions; each tenant may set its own (internal policy API).
    session_idle_s: int = Field(default=1800, ge=60)
    session_absolute_s: int = Field(default=12 * 3600, ge=300)
    # Tenant and operator passwords: argon2id at or above OWASP's minimum (m=19 MiB, t=2, p=1).
    argon2_memory_kib: int = Field(default=19_456, ge=19_456)
    argon2_time_cost: int = Field(default=2, ge=2)
    argon2_parallelism: int = Field(default=1, ge=1)
    # Browsers get the refresh token only in this httpOnly cookie; set false for plain-HTTP
    # local runs only (a Secure cookie is not sent over http://).
    refresh_cookie_secure: bool = True
