"""A short-lived in-memory cache of unwrapped DEKs.

It spares a KMS round trip per value, and its TTL bounds how long a destroyed KEK's data
stays readable in a running process (call :meth:`DekCache.clear` to end that at once).
Python cannot reliably wipe ``bytes``, so keeping DEKs only here, briefly, is the best we do.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class DekCache:
    def __init__(
        self,
        ttl: float = 300.0,
        max_size: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._max_size = max_size
        self._clock = clock
        self._entries: OrderedDict[tuple[str, int], tuple[float, bytes]] = OrderedDict()

    def __repr__(self) -> str:
        # Never the keys themselves: reprs end up in logs and tracebacks.
        return f"DekCache(ttl={self._ttl}, max_size={self._max_size}, size={len(self._entries)})"

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, tenant: str, version: int) -> bytes | None:
        key = (tenant, version)
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, dek = entry
        if self._clock() >= expires_at:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return dek

    def put(self, tenant: str, version: int, dek: bytes) -> None:
        if self._ttl <= 0 or self._max_size <= 0:
            return
        key = (tenant, version)
        self._entries[key] = (self._clock() + self._ttl, dek)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_size:
            self._entries.popitem(last=False)

    def clear(self, tenant: str | None = None) -> None:
        if tenant is None:
            self._entries.clear()
            return
        for key in [k for k in self._entries if k[0] == tenant]:
            del self._entries[key]
