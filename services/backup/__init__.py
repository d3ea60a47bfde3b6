"""Backups (12.3.1): consistent, encrypted, per-schema logical backups of the database, their
retention, verification by restoring into a scratch database, and restores of one tenant in
place or of everything into an empty database. See docs/backups.md."""
