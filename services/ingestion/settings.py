from jinji.config import Settings


class IngestionSettings(Settings):
    """Settings of this service; its own options are added with its endpoints."""
