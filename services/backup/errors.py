"""The ways a backup job fails, each with a message an operator can act on.

Every error is a :class:`BackupError`; the CLI prints its message and exits with 1. None of
them is raised after a change to the live database: a failed restore leaves it as it was.
"""

from __future__ import annotations


class BackupError(Exception):
    """A backup, verify, restore or prune that could not be done; the message says why."""


class StoreUnavailable(BackupError):
    """The backup store cannot be read or written (missing, permissions, bucket, network)."""


class StoreFull(StoreUnavailable):
    """The backup store (or the local work directory) ran out of space."""


class BackupNotFound(BackupError):
    """No such backup, or it does not contain what was asked for."""


class BackupCorrupt(BackupError):
    """A stored file differs from what the manifest recorded, or does not authenticate."""


class BackupKeyError(BackupError):
    """The backup's data key cannot be unwrapped: the platform KEK is gone or is another one."""


class RestoreRefused(BackupError):
    """The restore was not started because it would be wrong (nothing was changed)."""


class RestoreFailed(BackupError):
    """PostgreSQL refused the restore; its transaction was rolled back."""
