"""Which backups to keep (12.3.1: daily and weekly backups kept at least a month).

Every backup of the last ``daily_days`` days (35 by default, never fewer than 31), then the
newest backup of each ISO week for ``weekly_weeks`` weeks (8). The newest complete backup is
kept whatever its age: if backups stopped, pruning must not delete the last one (pgBackRest
keeps the last full backup for the same reason). Nothing else is deleted but leftovers of
runs that failed (no manifest) once they are a day old, so a run still writing is never
touched. Dates come from the manifests' ``created_at``; ``now`` is a parameter so tests can
move the clock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.backup import manifest as manifest_file
from services.backup.settings import MIN_DAILY_DAYS
from services.backup.store import MANIFEST, Store

log = logging.getLogger(__name__)

INCOMPLETE_GRACE = timedelta(days=1)


@dataclass(frozen=True)
class Policy:
    daily_days: int = 35
    weekly_weeks: int = 8

    def __post_init__(self) -> None:
        if self.daily_days < MIN_DAILY_DAYS:
            raise ValueError(f"backups are kept at least {MIN_DAILY_DAYS} days")
        if self.weekly_weeks < 0:
            raise ValueError("weekly_weeks cannot be negative")


@dataclass(frozen=True)
class Backup:
    id: str
    # None: no readable manifest (a run that failed or is still writing).
    created_at: datetime | None


@dataclass(frozen=True)
class Decision:
    id: str
    keep: bool
    reason: str


def _id_time(backup_id: str) -> datetime:
    return datetime.strptime(backup_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def plan(backups: list[Backup], now: datetime, policy: Policy) -> list[Decision]:
    complete = sorted(
        (b for b in backups if b.created_at is not None),
        key=lambda b: (b.created_at, b.id),
        reverse=True,
    )
    daily_from = now - timedelta(days=policy.daily_days)
    weekly_from = now - timedelta(weeks=policy.weekly_weeks)
    weeks_seen: set[tuple[int, int]] = set()
    decisions: list[Decision] = []
    for index, backup in enumerate(complete):
        created = backup.created_at
        assert created is not None
        week = created.isocalendar()[:2]
        newest_of_week = week not in weeks_seen
        weeks_seen.add(week)
        if index == 0:
            decisions.append(Decision(backup.id, True, "newest"))
        elif created >= daily_from:
            decisions.append(Decision(backup.id, True, "daily"))
        elif created >= weekly_from and newest_of_week:
            decisions.append(Decision(backup.id, True, "weekly"))
        else:
            decisions.append(Decision(backup.id, False, "expired"))
    for backup in backups:
        if backup.created_at is None:
            stale = _id_time(backup.id) < now - INCOMPLETE_GRACE
            decisions.append(
                Decision(backup.id, not stale, "incomplete" if stale else "incomplete, recent")
            )
    return sorted(decisions, key=lambda d: d.id)


def inventory(store: Store) -> list[Backup]:
    found = []
    for backup_id in store.backup_ids():
        created = None
        if store.exists(backup_id, MANIFEST):
            created = manifest_file.created_at(store.get(backup_id, MANIFEST))
            if created is None:
                # Unreadable but present: treat as complete and very old would delete it;
                # keep it out of the plan instead and say so.
                log.warning("backup manifest unreadable; kept", extra={"backup": backup_id})
                continue
        found.append(Backup(backup_id, created))
    return found


def prune(store: Store, policy: Policy, now: datetime, dry_run: bool = False) -> list[Decision]:
    decisions = plan(inventory(store), now, policy)
    for decision in decisions:
        if not decision.keep and not dry_run:
            store.delete(decision.id)
            log.info("backup deleted", extra={"backup": decision.id, "reason": decision.reason})
    return decisions
