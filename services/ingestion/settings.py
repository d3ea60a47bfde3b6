from pydantic import Field, SecretStr

from jinji.config import Settings


class IngestionSettings(Settings):
    max_upload_bytes: int = Field(default=200 * 1024 * 1024, ge=1024)
    max_columns: int = Field(default=100, ge=1)
    max_xlsx_uncompressed_bytes: int = Field(default=1_000_000_000, ge=1024)
    max_xlsx_ratio: int = Field(default=100, ge=2)
    # Ingestion's own service token, for the audit log and analytics.
    ingestion_client_id: str = "ingestion"
    ingestion_client_secret: SecretStr | None = None
