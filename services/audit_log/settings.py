from jinji.config import Settings


class AuditLogSettings(Settings):
    """Settings of this service; its own options are added with its endpoints."""
