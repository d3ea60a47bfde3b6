"""Verifying an exported stream with no database: `jinji audit verify FILE`."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from services.audit_log import log


def verify_export(path: Path) -> dict[str, Any]:
    keys: dict[str, bytes] = {}
    rows: dict[str, list[tuple[int, bytes, bytes]]] = {}
    signed: dict[str, list[tuple[int, bytes, str, bytes]]] = {}
    cuts: dict[str, tuple[int, list[bytes]]] = {}
    with path.open("rb") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                kind = item["type"]
                if kind == "key":
                    keys[item["kid"]] = base64.b64decode(item["public_key"])
                elif kind == "event":
                    rows.setdefault(item["stream"], []).append(
                        (
                            int(item["seq"]),
                            base64.b64decode(item["body"]),
                            base64.b64decode(item["leaf_hash"]),
                        )
                    )
                elif kind == "cut":
                    cuts[item["stream"]] = (
                        int(item["size"]),
                        [base64.b64decode(h) for h in item["frontier"]],
                    )
                elif kind == "checkpoint":
                    signed.setdefault(item["stream"], []).append(
                        (
                            int(item["size"]),
                            base64.b64decode(item["root_hash"]),
                            str(item["kid"]),
                            base64.b64decode(item["signature"]),
                        )
                    )
            except (ValueError, KeyError, TypeError):
                return {"ok": False, "error": f"line {number} is not a valid export line"}
    streams = {}
    for stream in sorted(set(rows) | set(signed)):
        result = log.verify_stream(
            stream,
            sorted(rows.get(stream, [])),
            signed.get(stream, []),
            keys,
            cuts.get(stream),
        )
        streams[stream] = {
            "ok": result.ok,
            "checked": result.checked,
            "first_bad_seq": result.first_bad_seq,
            "reason": result.reason,
        }
    has_checkpoint = all(signed.get(s) for s in streams)
    return {
        "ok": bool(streams) and has_checkpoint and all(v["ok"] for v in streams.values()),
        "streams": streams,
    }
