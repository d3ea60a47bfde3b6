"""Retention: every backup of the last 35 days, one a week for 8 weeks, never under 31 days.

The clock is a parameter: 120 days of nightly backups are laid out as manifests in a real
directory store and pruned as of a chosen "now".
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.backup.retention import Backup, Policy, plan, prune
from services.backup.settings import BackupSettings
from services.backup.store import MANIFEST, DirectoryStore

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


def nightly(days: int, hour: int = 2) -> list[Backup]:
    """One backup at 02:15 UTC on each of the last ``days`` days, newest today."""
    out = []
    for back in range(days):
        at = (NOW - timedelta(days=back)).replace(hour=hour, minute=15)
        out.append(Backup(f"{at:%Y%m%dT%H%M%SZ}-{back:04x}", at))
    return out


def kept(decisions: list) -> dict[str, str]:
    return {d.id: d.reason for d in decisions if d.keep}


def test_default_policy_keeps_35_days_of_dailies_and_8_weeks_of_weeklies() -> None:
    backups = nightly(120)
    decisions = plan(backups, NOW, Policy())
    keep = kept(decisions)
    by_id = {b.id: b.created_at for b in backups}
    window = timedelta(days=35)
    # Every backup of the last 35 days: 35 nightly ones (today's counts as "newest").
    recent = {b.id for b in backups if NOW - b.created_at <= window}
    assert len(recent) == 35
    assert {i for i, r in keep.items() if r in ("newest", "daily")} == recent
    # Beyond that: one per ISO week, each the newest (Sunday's) of its week, back to 8 weeks.
    weekly = sorted((by_id[i] for i, r in keep.items() if r == "weekly"), reverse=True)
    assert weekly, "weekly backups beyond the daily window"
    assert all(at.isoweekday() == 7 for at in weekly)
    assert len({at.isocalendar()[:2] for at in weekly}) == len(weekly)
    assert min(weekly) >= NOW - timedelta(weeks=8)
    assert len(weekly) == 3  # weeks 6, 7 and 8 back; the others are inside the daily window
    # The rest, and only the rest, goes: nothing of the last 35 days.
    deleted = {d.id for d in decisions if not d.keep}
    assert deleted == set(by_id) - set(keep)
    assert all(NOW - by_id[i] > window for i in deleted)


def test_retention_is_configurable_but_never_below_31_days() -> None:
    keep = kept(plan(nightly(120), NOW, Policy(daily_days=40, weekly_weeks=12)))
    assert sum(1 for r in keep.values() if r in ("newest", "daily")) == 40
    assert any(r == "weekly" for r in keep.values())
    with pytest.raises(ValueError, match="at least 31 days"):
        Policy(daily_days=30)
    with pytest.raises(ValidationError, match="backup_keep_daily_days"):
        BackupSettings(backup_keep_daily_days=14)


def test_the_newest_backup_is_kept_however_old() -> None:
    # Backups stopped 200 days ago: pruning must not delete the last one there is.
    old = [b for b in nightly(260) if (NOW - b.created_at).days >= 200]
    keep = kept(plan(old, NOW, Policy()))
    assert keep == {old[0].id: "newest"}


def test_leftovers_of_failed_runs_go_after_a_day_running_ones_stay() -> None:
    stale = Backup("20261120T021500Z-aaaa", None)
    running = Backup("20261125T021500Z-bbbb", None)
    decisions = {d.id: d for d in plan([*nightly(3), stale, running], NOW, Policy())}
    assert not decisions[stale.id].keep
    assert decisions[running.id].keep


def test_prune_deletes_exactly_the_plan_from_a_real_store(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path / "store")
    backups = nightly(70)
    for b in backups:
        store.put(b.id, "tenancy.pgdump.jbk", b"sealed bytes")
        store.put(b.id, MANIFEST, json.dumps({"created_at": b.created_at.isoformat()}).encode())
    store.put("20261101T021500Z-dead", "tenancy.pgdump.jbk", b"half written")

    dry = prune(store, Policy(), NOW, dry_run=True)
    assert len(store.backup_ids()) == 71
    decisions = prune(store, Policy(), NOW)
    assert [d.id for d in dry] == [d.id for d in decisions]
    assert set(store.backup_ids()) == set(kept(decisions))
    assert "20261101T021500Z-dead" not in store.backup_ids()
    # Pruning again as of the same time deletes nothing more.
    assert all(d.keep for d in prune(store, Policy(), NOW))
