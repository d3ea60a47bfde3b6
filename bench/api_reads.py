"""Benchmark: authenticated API reads vs ``/healthz`` on the same server, at concurrency 32.

Starts ``jinji up`` on loopback (embedded PostgreSQL in a temp dir, or a scratch database on
JINJI_TEST_DATABASE_URL's server), provisions a tenant through tenant-admin and uploads a year
of monthly employees snapshots through ingestion. Then, over real HTTP with
``httpx.AsyncClient`` workers (one keep-alive connection each), in turns so a burst of other
work on the machine slows all alike:

- ``GET /ingestion/v1/datasets`` as the tenant's admin: ES256 token check (cached JWKS), the
  tenant transaction (role and search_path switched), one query;
- ``GET /analytics/v1/dashboards/overview`` as the same admin: the same, plus the tenant's
  settings (cached), the dashboard rules, the stored results, and a ``dashboard.viewed`` audit
  event written to the outbox and delivered by the relay during the run;
- baseline: ``GET /ingestion/healthz`` on the same server (no token, no database).

Reported: throughput, p50/p95/p99, and the server's CPU time per request (from /proc), each
as a ratio to the baseline.

    .venv/bin/python bench/api_reads.py --seconds 24 --concurrency 32
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import _support
import httpx

ENDPOINTS = {
    "healthz": "/ingestion/healthz",
    "datasets": "/ingestion/v1/datasets",
    "dashboard": "/analytics/v1/dashboards/overview?fiscal_year=2024",
}
MONTHS = [f"2024-{m:02d}" for m in range(4, 13)] + [f"2025-{m:02d}" for m in range(1, 4)]


def main(work: Path, seconds: float, concurrency: int, rows: int, turns: int) -> dict[str, Any]:
    with _support.jinji_up(work) as up, httpx.Client(base_url=up.base, timeout=120) as http:
        operator = _support.operator_token(http, up.identity, up.one_time_password)
        tenant = _support.provision_tenant(http, up.base, operator, {"HQ": "本社", "SALES": "販売"})
        for i, month in enumerate(MONTHS):
            uploaded = http.post(
                "/ingestion/v1/uploads",
                headers=tenant.admin,
                files={
                    "file": (
                        "e.csv",
                        _support.employees_csv(rows, seed=i, companies=("HQ", "SALES")),
                    )
                },
                data={"kind": "employees", "as_of": month},
            )
            if uploaded.status_code != 201:
                raise RuntimeError(f"upload failed: {uploaded.status_code} {uploaded.text}")
        # Analytics has recomputed for the last upload: no recompute runs behind the reads.
        _support.wait_outbox_drained(up.base, ["ingestion"])
        board = http.get(ENDPOINTS["dashboard"], headers=tenant.admin)
        if board.status_code != 200 or not any(w["series"] for w in board.json()["widgets"]):
            raise RuntimeError(f"dashboard without data: {board.status_code} {board.text[:300]}")

        def getter(path: str) -> _support.Request:
            async def get(client: httpx.AsyncClient, worker: int) -> httpx.Response:
                return await client.get(path)

            return get

        runs: dict[str, list[_support.Run]] = {name: [] for name in ENDPOINTS}
        for path in ENDPOINTS.values():  # warm-up
            _support.drive(
                up, getter(path), concurrency=concurrency, seconds=2, headers=tenant.admin
            )
        for _ in range(turns):
            for name, path in ENDPOINTS.items():
                runs[name].append(
                    _support.drive(
                        up,
                        getter(path),
                        concurrency=concurrency,
                        seconds=seconds / turns / len(ENDPOINTS),
                        headers=tenant.admin,
                    )
                )
    merged = {name: _merge(parts) for name, parts in runs.items()}
    base = merged["healthz"]
    result: dict[str, Any] = {
        "benchmark": "api_reads",
        "concurrency": concurrency,
        "snapshots": len(MONTHS),
        "employees_per_snapshot": rows,
    }
    for name, run in merged.items():
        result.update(run.summary(name))
    for name in ("datasets", "dashboard"):
        run = merged[name]
        result[f"{name}_rps_vs_healthz"] = round(run.per_s / base.per_s, 3)
        result[f"{name}_p99_vs_healthz"] = round(
            _support.percentiles_ms(run.latencies)["p99"]
            / _support.percentiles_ms(base.latencies)["p99"],
            1,
        )
        result[f"{name}_cpu_vs_healthz"] = round(
            (run.jinji_cpu_s / run.count) / (base.jinji_cpu_s / base.count), 1
        )
    return result


def _merge(parts: list[_support.Run]) -> _support.Run:
    pg = [p.postgres_cpu_s for p in parts]
    return _support.Run(
        [latency for p in parts for latency in p.latencies],
        {},
        sum(p.seconds for p in parts),
        sum(p.jinji_cpu_s for p in parts),
        None if any(x is None for x in pg) else sum(x or 0 for x in pg),
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=24.0, help="all timed turns together")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rows", type=int, default=1000, help="employees per snapshot")
    parser.add_argument("--turns", type=int, default=4)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="jinji-bench-reads-"))
    try:
        result = main(work, args.seconds, args.concurrency, args.rows, args.turns)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))
