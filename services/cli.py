"""The ``jinji`` command: ``up`` (everything, one process), ``serve`` (one service), ``migrate``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from jinji import logs
from jinji.config import Settings
from jinji.db import async_url
from jinji.migrate import migrate_all
from jinji.tenancy import quote_ident
from services.backup import cli as backup_cli
from services.registry import SPECS

DATABASE_NAME = "jinji"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jinji", description="Jinji HR analytics service")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run all five services in one process (local gateway)")
    up.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    up.add_argument("--host", default="127.0.0.1")

    serve = sub.add_parser(
        "serve", help="run one service, or the web console (as each Kubernetes Deployment does)"
    )
    serve.add_argument("service", choices=[*sorted(SPECS), "console"])
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    serve.add_argument("--host", default="127.0.0.1")

    migrate = sub.add_parser("migrate", help="migrate control schemas, then every tenant schema")
    migrate.add_argument("--workers", type=int, default=max(os.cpu_count() or 1, 2))

    audit = sub.add_parser("audit", help="audit-log tools")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="verify an exported stream, offline")
    verify.add_argument("file", type=Path)

    sub.add_parser(
        "bootstrap",
        help="first-start set-up with secrets from the environment (a chart hook, after migrate)",
    )
    sub.add_parser(
        "purge",
        help="terminate ended contracts and purge tenants that are due (the CronJob)",
    )
    sub.add_parser(
        "rotate-signing-key",
        help="make a new token signing key current (the scheduled job; audited)",
    )
    backup_cli.add_parser(sub)

    args = parser.parse_args(argv)
    settings = Settings()
    logs.configure(settings.log_level)
    if args.command == "up":
        return cmd_up(settings, args.host, args.port)
    if args.command == "serve":
        if args.service == "console":
            return cmd_serve_console(settings, args.host, args.port)
        return cmd_serve(args.service, args.host, args.port)
    if args.command == "audit":
        from services.audit_log.offline import verify_export

        report = verify_export(args.file)
        print(json.dumps(report))
        return 0 if report["ok"] else 1
    if args.command == "bootstrap":
        return cmd_bootstrap(settings)
    if args.command == "purge":
        return asyncio.run(cmd_purge())
    if args.command == "rotate-signing-key":
        return asyncio.run(cmd_rotate_signing_key())
    if args.command == "backup":
        return backup_cli.main(args)
    return cmd_migrate(settings, args.workers)


def cmd_migrate(settings: Settings, workers: int) -> int:
    from jinji.runtime import require_database_url

    report = asyncio.run(
        migrate_all(require_database_url(settings), settings.migrations_dir, workers=workers)
    )
    print(
        json.dumps(
            {
                "ok": report.ok,
                "tenants": report.tenants_total,
                "skipped_at_head": report.tenants_skipped,
                "migrated": report.tenants_migrated,
                "failed": sorted(report.failures),
                "seconds": round(report.control_seconds + report.tenant_seconds, 3),
            }
        )
    )
    return 0 if report.ok else 1


def cmd_bootstrap(settings: Settings) -> int:
    """Run after `jinji migrate`: every secret comes from the environment (the cluster's
    Secrets); nothing secret is generated, written or printed."""
    from services import bootstrap

    try:
        given = bootstrap.secrets_from_environment(dict(os.environ))
        asyncio.run(bootstrap.run(settings, given))
    except bootstrap.BootstrapError as error:
        print(json.dumps({"ok": False, "error": str(error)}))
        return 2
    print(json.dumps({"ok": True, "service_clients": sorted(given.clients)}))
    return 0


def cmd_serve(service: str, host: str, port: int) -> int:
    import uvicorn

    from services.registry import create

    uvicorn.run(create(service), host=host, port=port, log_config=None, proxy_headers=True)
    return 0


def cmd_serve_console(settings: Settings, host: str, port: int) -> int:
    import uvicorn

    from services.console import Console

    console = Console.if_built(settings.web_dir)
    if console is None:
        print(f"No console build in {settings.web_dir} (cd web && npm ci && npm run build)")
        return 1
    uvicorn.run(console, host=host, port=port, log_config=None, proxy_headers=True)
    return 0


def cmd_up(settings: Settings, host: str, port: int) -> int:
    import uvicorn

    from jinji.pgembed import EmbeddedPostgres
    from services import bootstrap
    from services.console import Console
    from services.gateway import Gateway
    from services.registry import create

    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.environ["JINJI_DATA_DIR"] = str(data_dir)
    embedded = None
    if settings.database_url is None:
        embedded = EmbeddedPostgres(data_dir / "postgres")
        embedded.start()
        asyncio.run(ensure_database(embedded.url(), DATABASE_NAME))
        os.environ["JINJI_DATABASE_URL"] = embedded.url(DATABASE_NAME)
    # Tokens name the URL they were issued at: the one this gateway actually serves.
    os.environ.setdefault("JINJI_ISSUER", f"http://{host}:{port}/identity")
    settings = Settings()
    try:
        if cmd_migrate(settings, workers=max(os.cpu_count() or 1, 2)) != 0:
            return 1
        first_login = asyncio.run(bootstrap.run(settings))
        # Local service clients: each service reads its own secret from the environment.
        clients = json.loads((data_dir / bootstrap.SERVICE_CLIENTS_FILE).read_text())
        os.environ.setdefault("JINJI_IDENTITY_CLIENT_SECRET", clients["tenant-admin"])
        os.environ.setdefault("JINJI_INGESTION_CLIENT_SECRET", clients["ingestion"])
        os.environ.setdefault("JINJI_ANALYTICS_CLIENT_SECRET", clients["analytics"])
        base = f"http://{host}:{port}"
        print(f"\nJinji is running at {base}  (metrics: {base}/metrics)")
        if not (settings.web_dir / "index.html").is_file():
            print(f"The web console is not built ({settings.web_dir}): only the APIs are served.")
        if first_login is not None:
            print(
                "First login of the platform operator (shown once; also in "
                f"{first_login.file}):\n  tenant: {first_login.tenant}\n"
                f"  username: {first_login.username}\n"
                f"  one-time password: {first_login.one_time_password}\n",
                flush=True,
            )
        apps = {SPECS[name].prefix: create(name) for name in SPECS}
        # uvicorn re-raises the signal that stopped it once it has shut down; as an
        # exception here (not the default "terminate"), the embedded database is stopped too.
        signal.signal(signal.SIGTERM, _raise_interrupt)
        with contextlib.suppress(KeyboardInterrupt):
            gateway = Gateway(apps, console=Console.if_built(settings.web_dir))
            uvicorn.run(gateway, host=host, port=port, log_config=None)
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


async def cmd_purge() -> int:
    import httpx

    from jinji.db import Database
    from jinji.runtime import require_database_url
    from services.tenant_admin import context, lifecycle
    from services.tenant_admin.settings import TenantAdminSettings

    settings = TenantAdminSettings()
    db = Database(require_database_url(settings), application_name="jinji-purge", pool_size=2)
    try:
        async with httpx.AsyncClient(timeout=settings.http_timeout_s) as http:
            done = await lifecycle.run_due(context.build(settings, db, http), job="jinji-purge")
    finally:
        await db.dispose()
    print(json.dumps(done))
    return 0 if done["failed"] == 0 else 1


async def cmd_rotate_signing_key() -> int:
    from jinji.db import Database
    from jinji.runtime import make_envelope, require_database_url
    from services.identity.context import LazyIdentity
    from services.identity.operations import rotate_signing_key
    from services.identity.settings import IdentitySettings

    settings = IdentitySettings()
    db = Database(require_database_url(settings), application_name="jinji-rotate", pool_size=2)
    try:
        ctx = await LazyIdentity(settings, db, make_envelope(settings, db)).get()
        kid = await rotate_signing_key(ctx, actor=("system", "scheduled-rotation"))
    finally:
        await db.dispose()
    print(json.dumps({"rotated": True, "kid": kid}))
    return 0


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


async def ensure_database(server_url: str, name: str) -> None:
    engine = create_async_engine(async_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            found = await conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            )
            if not found:
                # CREATE DATABASE takes no parameters; the name is our own constant.
                await conn.execute(text(f"CREATE DATABASE {quote_ident(name)}"))
    finally:
        await engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
