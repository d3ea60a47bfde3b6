from pydantic import Field

from jinji.config import Settings


class IdentitySettings(Settings):
    access_token_ttl_s: int = Field(default=300, ge=60, le=3600)
    # Tenant and operator passwords: argon2id at or above OWASP's minimum (m=19 MiB, t=2, p=1).
    argon2_memory_kib: int = Field(default=19_456, ge=19_456)
    argon2_time_cost: int = Field(default=2, ge=2)
    argon2_parallelism: int = Field(default=1, ge=1)
