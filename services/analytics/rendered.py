"""Dashboards already put together, per result state and view, with their JSON.

A dashboard's body depends only on the results it is made from (their fingerprint), the
minimum group size, the dashboard, the fiscal year and company asked for, and the caller's
scope; the key holds all of them, so an entry can never answer for another state or scope,
and a new state simply stops matching the old entries (which age out). The JSON is encoded
once: re-encoding the same cells on every read costs more than the rest of a read.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Entry:
    body: dict[str, Any]
    json: bytes


class Rendered:
    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[Hashable, Entry] = OrderedDict()

    def get(self, key: Hashable) -> Entry | None:
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def put(self, key: Hashable, body: dict[str, Any]) -> Entry:
        entry = Entry(body, json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)
        return entry
