from pydantic import Field

from jinji.config import Settings


class AuditLogSettings(Settings):
    # A signed checkpoint after this many events in a stream, or after the interval.
    checkpoint_every: int = Field(default=100, ge=1, le=100_000)
    checkpoint_interval_s: float = Field(default=60.0, gt=0)
    # Events older than this are removed in whole segments (see retention.py).
    retention_days: int = Field(default=400, ge=1)
