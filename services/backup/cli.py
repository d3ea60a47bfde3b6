"""``jinji backup run|prune|verify|restore|list``: one JSON line on stdout, exit code 1 on
failure (the error is a sentence in ``error``; logs go to stderr)."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from services.backup import jobs
from services.backup.settings import BackupSettings


def add_parser(sub: Any) -> None:
    backup = sub.add_parser("backup", help="encrypted backups and restores (docs/backups.md)")
    commands = backup.add_subparsers(dest="backup_command", required=True)
    run = commands.add_parser("run", help="take a backup, then prune (the daily CronJob)")
    run.add_argument("--no-prune", action="store_true", help="keep every backup this time")
    prune = commands.add_parser("prune", help="delete the backups retention no longer keeps")
    prune.add_argument("--dry-run", action="store_true", help="only say what would go")
    verify = commands.add_parser("verify", help="restore a backup into a scratch database")
    verify.add_argument("--backup", metavar="ID", help="default: the newest complete backup")
    restore = commands.add_parser("restore", help="one tenant in place, or all into an empty db")
    what = restore.add_mutually_exclusive_group(required=True)
    what.add_argument("--tenant", metavar="SLUG", help="tenant slug (or id) to restore in place")
    what.add_argument(
        "--all", dest="everything", action="store_true", help="every schema, into an empty db"
    )
    restore.add_argument("--backup", metavar="ID", help="default: the newest that holds it")
    commands.add_parser("list", help="the backups in the store")


def main(args: argparse.Namespace) -> int:
    settings = BackupSettings()
    command = args.backup_command
    result: dict[str, Any]
    if command == "run":
        result = asyncio.run(jobs.run_backup(settings, prune_after=not args.no_prune))
    elif command == "prune":
        result = asyncio.run(jobs.run_prune(settings, dry_run=args.dry_run))
    elif command == "verify":
        result = asyncio.run(jobs.run_verify(settings, backup_id=args.backup))
    elif command == "restore":
        result = asyncio.run(
            jobs.run_restore(
                settings, tenant=args.tenant, everything=args.everything, backup_id=args.backup
            )
        )
    else:
        result = asyncio.run(jobs.list_backups(settings))
    print(json.dumps(result, ensure_ascii=False))
    return 0 if result["ok"] else 1
