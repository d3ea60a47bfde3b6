"""How `jinji migrate` shares tenant schemas among worker processes (no database needed)."""

from __future__ import annotations

import os

import pytest

from jinji import migrate

LOCAL = "postgresql://postgres@127.0.0.1:5432/jinji"
REMOTE = "postgresql://jinji@db.example.internal:5432/jinji"


@pytest.mark.parametrize(
    "url", [LOCAL, "postgresql://postgres@localhost/jinji", "postgresql:///jinji"]
)
def test_local_server_gets_no_more_workers_than_usable_cpus(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    # The server's backends run on the same CPUs as the workers: on one CPU, run in-process.
    monkeypatch.setattr(migrate, "usable_cpus", lambda: 1)
    assert migrate.worker_count(2, url) == 1
    monkeypatch.setattr(migrate, "usable_cpus", lambda: 2)
    assert migrate.worker_count(2, url) == 2
    assert migrate.worker_count(8, url) == 2
    assert migrate.worker_count(0, url) == 1


def test_remote_server_gets_the_workers_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    # Its half of the work runs elsewhere: a second worker fills the time the first waits.
    monkeypatch.setattr(migrate, "usable_cpus", lambda: 1)
    assert migrate.worker_count(2, REMOTE) == 2


def test_usable_cpus_is_within_the_affinity() -> None:
    assert 1 <= migrate.usable_cpus() <= len(os.sched_getaffinity(0))


@pytest.mark.parametrize(("pending", "workers"), [(9, 2), (20, 2), (1000, 2), (1001, 3), (5, 8)])
def test_chunks_cover_every_pending_schema_once_in_order(pending: int, workers: int) -> None:
    schemas = [f"t_{i:032x}" for i in range(pending)]
    parts = migrate.chunks(schemas, workers)
    assert [s for part in parts for s in part] == schemas
    assert all(parts)
    assert len(parts) <= workers * migrate.CHUNKS_PER_WORKER
