"""The benchmarks' results: ``bench/results.json`` and the table in ``docs/performance.md``.

``record -- COMMAND...`` runs one benchmark, passes its output through, and stores its JSON
line (the last line of its output) in ``bench/results.json`` under its name, with the machine
(cores, CPU, memory), the date and the git commit of the run. ``write`` renders every stored
result as the table between the markers in ``docs/performance.md``: each row a figure, the
baseline measured in the same run, their ratio, and the goal where an issue set one.
``make bench`` records every benchmark, then writes.

    .venv/bin/python bench/report.py record -- .venv/bin/python bench/logins.py
    .venv/bin/python bench/report.py write
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- bench:begin (bench/report.py) -->", "<!-- bench:end -->"
# The order of the table, and of the benchmarks in `make bench`.
ORDER = (
    "migrate_tenants",
    "provision_tenants",
    "audit_log",
    "ingest_employees",
    "backup_restore",
    "analytics",
    "api_reads",
    "logins",
)


def _order(name: str) -> int:
    return ORDER.index(name) if name in ORDER else len(ORDER)


def _git(*args: str) -> str:
    done = subprocess.run(  # noqa: S603 - fixed argv, our own repository
        ["git", *args],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip()


def machine() -> dict[str, Any]:
    cpu = ""
    memory_gb = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": cpu or platform.processor(),
        "memory_gb": memory_gb,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def run_info() -> dict[str, Any]:
    # Changes to the code the benchmarks run (not to docs or charts) make the commit "dirty".
    dirty = _git("status", "--porcelain", "--", "libs", "services", "migrations", "bench")
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": _git("rev-parse", "--short", "HEAD") + ("-dirty" if dirty else ""),
        "machine": machine(),
    }


def load() -> dict[str, Any]:
    if RESULTS.exists():
        return dict(json.loads(RESULTS.read_text()))
    return {"results": {}}


def record(command: list[str]) -> int:
    """Run ``command``, echo its output, store its last line (a JSON object with
    ``benchmark``) in results.json. The command's exit code is returned."""
    started = datetime.now(UTC)
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)  # noqa: S603
    sys.stdout.write(done.stdout)
    sys.stdout.flush()
    if done.returncode != 0:
        return done.returncode
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    result = json.loads(lines[-1]) if lines else None
    if not isinstance(result, dict) or "benchmark" not in result:
        print(f"no JSON result line from {' '.join(command)}", file=sys.stderr)
        return 1
    info = run_info()
    info["seconds"] = round((datetime.now(UTC) - started).total_seconds())
    stored = load()
    stored["machine"] = info["machine"]
    stored.setdefault("results", {})[result["benchmark"]] = {"run": info, **result}
    stored["results"] = {
        name: stored["results"][name] for name in sorted(stored["results"], key=_order)
    }
    RESULTS.write_text(json.dumps(stored, ensure_ascii=False, indent=2) + "\n")
    return 0


# --- the table -------------------------------------------------------------------------------


def _get(result: dict[str, Any], key: str) -> Any:
    value: Any = result
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or (isinstance(value, float) and value >= 1000):
        return f"{value:,.0f}"
    return (
        f"{value:,.{digits}f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)
    )


@dataclass(frozen=True)
class Row:
    """One line of the table: a figure, its baseline (same run), the ratio, the goal."""

    label: str
    figure: str | Callable[[dict[str, Any]], Any]  # a key (dots for nested keys), or computed
    baseline_label: str
    baseline: str | None
    ratio: Callable[[dict[str, Any]], Any]
    goal: Callable[[dict[str, Any]], str] = lambda r: ""


def _key(name: str) -> Callable[[dict[str, Any]], Any]:
    return lambda r: _get(r, name)


def _div(a: str, b: str) -> Callable[[dict[str, Any]], Any]:
    def ratio(r: dict[str, Any]) -> Any:
        x, y = _get(r, a), _get(r, b)
        return None if x is None or not y else round(x / y, 2)

    return ratio


def _goal(text: str, met: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], str]:
    def goal(r: dict[str, Any]) -> str:
        ok = met(r)
        return text if ok is None else f"{text}: {'met' if ok else '**missed**'}"

    return goal


def _at_most(key: str, limit: float) -> Callable[[dict[str, Any]], Any]:
    return lambda r: None if _get(r, key) is None else _get(r, key) <= limit


def _at_least(key: str, limit: float) -> Callable[[dict[str, Any]], Any]:
    return lambda r: None if _get(r, key) is None else _get(r, key) >= limit


ROWS: dict[str, list[Row]] = {
    "migrate_tenants": [
        Row(
            "`jinji migrate`, 1,000 tenant schemas, parallel (s)",
            "parallel.migrate_s",
            "1 worker",
            "sequential.migrate_s",
            _div("parallel.migrate_s", "sequential.migrate_s"),
        ),
        Row(
            "`jinji migrate` again, every schema at head (s)",
            "parallel.rerun_s",
            "first run",
            "parallel.migrate_s",
            _key("rerun_vs_migrate"),
        ),
    ],
    "provision_tenants": [
        Row(
            "tenant provisioning over HTTP, p50 (s)",
            "provision_p50_s",
            "its database part alone",
            "baseline_schema_only_p50_s",
            _key("provision_vs_schema_only"),
            _goal("max < 1 s", _key("within_target")),
        ),
    ],
    "audit_log": [
        Row(
            "audit intake, batched (events/s)",
            "ingest_events_per_s",
            "plain inserts",
            "plain_insert_events_per_s",
            _key("ingest_vs_plain_insert"),
        ),
        Row(
            "audit verification (events/s)",
            "verify_events_per_s",
            "bare SHA-256",
            "sha256_only_events_per_s",
            _key("verify_vs_sha256_only"),
        ),
    ],
    "ingest_employees": [
        Row(
            "1M-row CP932 employees upload → committed (s)",
            "ingest_s",
            "COPY of the file",
            "copy_s",
            _key("ingest_vs_copy"),
            _goal("≤ 1.0", _at_most("ingest_vs_copy", 1.0)),
        ),
        Row(
            "… its memory above the process at rest (MB)",
            lambda r: (
                None
                if r.get("peak_rss_mb") is None
                else round(r["peak_rss_mb"] - r["idle_rss_mb"], 1)
            ),
            "file size (MB)",
            "file_mb",
            _key("upload_rss_vs_file"),
            _goal(
                "< 4",
                lambda r: (
                    None if r.get("upload_rss_vs_file") is None else r["upload_rss_vs_file"] < 4
                ),
            ),
        ),
    ],
    "backup_restore": [
        Row(
            "restore one tenant, 1M dataset rows (s)",
            "rto_tenant_in_process_s",
            "plain pg_restore",
            "plain_pg_restore_s",
            _key("restore_tenant_vs_plain_pg_restore"),
        ),
    ],
    "analytics": [
        Row(
            "analytics recompute, 50,000 employees × 36 months (s)",
            "recompute_s",
            "plain polars script",
            "baseline_s",
            _key("recompute_vs_baseline"),
            _goal("≤ 1.5", _at_most("recompute_vs_baseline", 1.5)),
        ),
        Row(
            "dashboard read p95 at concurrency 16 (ms)",
            "dashboard_p95_ms",
            "/healthz p95",
            "healthz_p95_ms",
            _key("dashboard_vs_healthz_p95"),
            _goal("p95 < 50 ms", _key("goals.dashboard_p95_met")),
        ),
    ],
    "api_reads": [
        Row(
            "GET /ingestion/v1/datasets at concurrency 32 (requests/s)",
            "datasets_per_s",
            "/healthz",
            "healthz_per_s",
            _key("datasets_rps_vs_healthz"),
        ),
        Row(
            "… its p99 (ms)",
            "datasets_p99_ms",
            "/healthz p99",
            "healthz_p99_ms",
            _key("datasets_p99_vs_healthz"),
        ),
        Row(
            "… server CPU per request (ms)",
            "datasets_jinji_cpu_ms_per_request",
            "/healthz",
            "healthz_jinji_cpu_ms_per_request",
            _key("datasets_cpu_vs_healthz"),
        ),
        Row(
            "GET /analytics/v1/dashboards/overview at concurrency 32 (requests/s)",
            "dashboard_per_s",
            "/healthz",
            "healthz_per_s",
            _key("dashboard_rps_vs_healthz"),
        ),
        Row(
            "… its p99 (ms)",
            "dashboard_p99_ms",
            "/healthz p99",
            "healthz_p99_ms",
            _key("dashboard_p99_vs_healthz"),
        ),
        Row(
            "… server CPU per request (ms)",
            "dashboard_jinji_cpu_ms_per_request",
            "/healthz",
            "healthz_jinji_cpu_ms_per_request",
            _key("dashboard_cpu_vs_healthz"),
        ),
    ],
    "logins": [
        Row(
            "password logins per core (per CPU-second of `jinji up`)",
            "login_per_core",
            "Keycloak per vCPU",
            "keycloak_logins_per_vcpu",
            _key("login_per_core_vs_keycloak"),
            _goal("≥ Keycloak", _at_least("login_per_core_vs_keycloak", 1.0)),
        ),
        Row(
            "… the same logins against argon2id alone (ratio: argon2id's share of a login)",
            "login_per_core",
            "argon2id alone",
            "argon2id_verify_per_core",
            _key("login_cpu_share_argon2id"),
        ),
        Row(
            "refresh-token grants per core (per CPU-second of `jinji up`)",
            "refresh_per_core",
            "Keycloak per vCPU",
            "keycloak_refreshes_per_vcpu",
            _key("refresh_per_core_vs_keycloak"),
            _goal("≥ Keycloak", _at_least("refresh_per_core_vs_keycloak", 1.0)),
        ),
    ],
}


def table(stored: dict[str, Any]) -> str:
    results = stored.get("results", {})
    lines = [
        "| benchmark | figure | baseline (same run) | ratio | goal |",
        "|---|---|---|---|---|",
    ]
    for name in sorted(results, key=_order):
        result = results[name]
        for row in ROWS.get(name, []):
            base = "" if row.baseline is None else _num(_get(result, row.baseline))
            figure = row.figure(result) if callable(row.figure) else _get(result, row.figure)
            lines.append(
                f"| {row.label} | {_num(figure)} | "
                f"{row.baseline_label}: {base} | {_num(row.ratio(result))} | {row.goal(result)} |"
            )
    runs = sorted(
        {(r["run"]["date"][:10], r["run"]["commit"]) for r in results.values() if "run" in r}
    )
    box = stored.get("machine", {})
    lines += [
        "",
        f"Machine: {box.get('cores')} cores ({box.get('cpu')}), {box.get('memory_gb')} GB, "
        f"{box.get('os')}, Python {box.get('python')}. Runs: "
        + ", ".join(f"{date} at {commit}" for date, commit in runs)
        + ". Every figure: `bench/results.json`.",
    ]
    return "\n".join(lines)


def write() -> int:
    stored = load()
    doc = DOC.read_text()
    if BEGIN not in doc or END not in doc:
        print(f"{DOC} has no {BEGIN} … {END} markers", file=sys.stderr)
        return 1
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{BEGIN}\n{table(stored)}\n{END}{tail}")
    print(f"wrote {DOC.relative_to(ROOT)} from {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="run one benchmark and store its JSON line")
    rec.add_argument("argv", nargs=argparse.REMAINDER)
    sub.add_parser("write", help="render the table in docs/performance.md")
    args = parser.parse_args()
    if args.command == "record":
        argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        sys.exit(record(argv))
    sys.exit(write())
