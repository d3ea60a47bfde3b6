"""Keys for customer content: KEK providers (local files, AWS KMS) and envelope encryption."""

from jinji.keys.dek_cache import DekCache
from jinji.keys.envelope import (
    MAX_ENCRYPTIONS_PER_DEK,
    AssociatedData,
    DecryptionFailed,
    DekStore,
    Envelope,
    NoCurrentDek,
    WrappedDek,
)
from jinji.keys.local import LocalKeyProvider
from jinji.keys.provider import (
    KeyProvider,
    KeyUnavailable,
    UnwrapFailed,
    check_owner,
    make_provider,
)

__all__ = [
    "MAX_ENCRYPTIONS_PER_DEK",
    "AssociatedData",
    "DecryptionFailed",
    "DekCache",
    "DekStore",
    "Envelope",
    "KeyProvider",
    "KeyUnavailable",
    "LocalKeyProvider",
    "NoCurrentDek",
    "UnwrapFailed",
    "WrappedDek",
    "check_owner",
    "make_provider",
]
