"""The services as they are really run: five separate processes on loopback ports, and
`make run` (all five behind one port, embedded PostgreSQL, first-start bootstrap)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from jinji.config import REPO_ROOT
from services.registry import SPECS

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_healthy(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} before {url} was up")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not healthy after {timeout_s}s")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JINJI_")}
    env.update(extra)
    return env


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Ctrl-C, as a person stops it; the whole process group (make and its child)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def five_services(database_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    procs: list[subprocess.Popen[bytes]] = []
    urls: dict[str, str] = {}
    env = clean_env(JINJI_DATABASE_URL=database_url, JINJI_DATA_DIR=str(tmp_path))
    try:
        for name in SPECS:
            port = free_port()
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "services.cli", "serve", name, "--port", str(port)],
                    cwd=REPO_ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
            urls[name] = f"http://127.0.0.1:{port}"
        for proc, (name, url) in zip(procs, urls.items(), strict=True):
            wait_until_healthy(f"{url}{SPECS[name].prefix}/healthz", proc)
        yield urls
    finally:
        for proc in procs:
            stop(proc)


def test_five_services_run_as_separate_processes(five_services: dict[str, str]) -> None:
    for name, base in five_services.items():
        prefix = SPECS[name].prefix
        health = httpx.get(f"{base}{prefix}/healthz")
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "service": name}
        ready = httpx.get(f"{base}{prefix}/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok"}
        spec = httpx.get(f"{base}{prefix}/openapi.json")
        assert spec.status_code == 200
        assert all(path.startswith(prefix) for path in spec.json()["paths"])
        assert "jinji_http_requests_total" in httpx.get(f"{base}/metrics").text
        # Each process serves only its own prefix: the gateway routes by prefix unchanged.
        other = next(s for s in SPECS.values() if s.name != name)
        assert httpx.get(f"{base}{other.prefix}/healthz").status_code == 404


def start_make_run(port: int, data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"PORT={port}", f"JINJI_DATA_DIR={data_dir}"],
        cwd=REPO_ROOT,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline().decode()
        if not line and proc.poll() is not None:
            break
        lines.append(line)
        if line.startswith("Jinji is running at"):
            break
    # Credentials, when printed, follow the URL line.
    for _ in range(4):
        lines.append(proc.stdout.readline().decode())
    return proc, "".join(lines)


def test_make_run_serves_everything_on_one_port_and_keeps_data(embedded_pg_root: Path) -> None:
    port = free_port()
    data_dir = embedded_pg_root / "data"
    proc, out = start_make_run(port, data_dir)
    base = f"http://127.0.0.1:{port}"
    try:
        assert f"Jinji is running at {base}" in out
        password = re.search(r"one-time password: (\S+)", out)
        assert password is not None, out
        for spec in SPECS.values():
            wait_until_healthy(f"{base}{spec.prefix}/healthz", proc)
            assert httpx.get(f"{base}{spec.prefix}/readyz").status_code == 200
        # make run builds the web console; the gateway serves it at "/".
        index = httpx.get(f"{base}/")
        assert index.status_code == 200
        assert '<div id="root"></div>' in index.text
        assert index.headers["content-security-policy"].startswith("default-src 'self'")
        unknown = httpx.get(f"{base}/payroll/healthz")
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "not_found"
        metrics = httpx.get(f"{base}/metrics").text
        assert 'route="/identity/healthz",service="identity"' in metrics
        assert 'route="/audit/healthz",service="audit_log"' in metrics

        creds_file = data_dir / "initial-operator.json"
        assert stat.S_IMODE(creds_file.stat().st_mode) == 0o600
        creds = json.loads(creds_file.read_text())
        assert creds["tenant"] == "platform"
        assert creds["username"] == "operator"
        assert creds["one_time_password"] == password.group(1)
    finally:
        stop(proc)
    # Stopped cleanly: the embedded PostgreSQL went down with it.
    assert not (data_dir / "postgres" / "pgdata" / "postmaster.pid").exists()

    # Second start on the same data directory: same account, nothing bootstrapped again.
    proc, out = start_make_run(port, data_dir)
    try:
        wait_until_healthy(f"{base}/identity/healthz", proc)
        assert f"one-time password: {password.group(1)}" in out
        assert json.loads((data_dir / "initial-operator.json").read_text()) == creds
    finally:
        stop(proc)


def test_jinji_up_stopped_by_sigterm_stops_its_database(embedded_pg_root: Path) -> None:
    """As a process manager stops it: the embedded PostgreSQL must not outlive it."""
    port = free_port()
    data_dir = embedded_pg_root / "data"
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "up", "--port", str(port)],
        cwd=REPO_ROOT,
        env=clean_env(JINJI_DATA_DIR=str(data_dir)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}/identity/healthz", proc)
        assert (data_dir / "postgres" / "pgdata" / "postmaster.pid").exists()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        stop(proc)
    assert not (data_dir / "postgres" / "pgdata" / "postmaster.pid").exists()
