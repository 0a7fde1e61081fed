"""The ``livedesk`` command: serve, demo, db upgrade, staff add, import."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import secrets
import sys
from pathlib import Path

from pydantic import SecretStr, ValidationError

from livedesk.app import create_app
from livedesk.integrations import imports_cli
from livedesk.kit import gc_policy
from livedesk.kit.db import COMMAND_BUDGET, Database
from livedesk.kit.errors import AppError
from livedesk.kit.logging import configure_logging
from livedesk.kit.mail import outbox_of
from livedesk.kit.migrate import upgrade
from livedesk.models import Role
from livedesk.realtime import drain
from livedesk.settings import Settings
from livedesk.staff.schemas import StaffCreate
from livedesk.staff.service import create_staff


def _settings(**overrides: object) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SystemExit(f"livedesk: bad setting: {exc}") from None


def _demo_secret(data_dir: Path) -> SecretStr:
    """The demo keeps a generated secret in its data directory, so tokens survive restarts."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return SecretStr(path.read_text().strip())


def cmd_serve(args: argparse.Namespace) -> None:
    settings = _settings(host=args.host, port=args.port)
    if not settings.secret_key.get_secret_value():
        raise SystemExit("livedesk: set LIVEDESK_SECRET_KEY (a long random string) before serving")
    configure_logging(settings.log_level, settings.log_format)
    if args.migrate:
        asyncio.run(upgrade(settings.effective_database_url))
    _serve(settings)


def _serve(settings: Settings) -> None:
    app = create_app(settings)
    gc_policy.apply(app)
    # SIGTERM drains the replica before it stops (realtime/drain.py).
    drain.run_app(app)


def cmd_demo(args: argparse.Namespace) -> None:
    # Not a cycle: the demo data is loaded only by the command that seeds it, not by `serve`.
    from livedesk.demo.seed import DEMO_PASSWORD, seed_demo
    from livedesk.demo.surveys import show_demo_survey

    base = _settings(host=args.host, port=args.port)
    settings = base.model_copy(
        update={
            "secret_key": base.secret_key
            if base.secret_key.get_secret_value()
            else _demo_secret(base.data_dir),
            "log_format": "console" if base.log_format == "json" and sys.stderr.isatty() else base.log_format,
            # Without a mail server the demo keeps its mails in an outbox page, so a shopper
            # can still open the link that confirms a booking.
            "mail_outbox": base.mail_outbox or not base.smtp_host,
        }
    )
    configure_logging(settings.log_level, settings.log_format)
    settings.data_dir.mkdir(parents=True, exist_ok=True)

    async def prepare() -> list[tuple[str, str, str]]:
        await upgrade(settings.effective_database_url)
        db = Database(settings.effective_database_url, budget=COMMAND_BUDGET)
        try:
            logins = await seed_demo(db)
            await show_demo_survey(db)
            return logins
        finally:
            await db.dispose()

    logins = asyncio.run(prepare())
    url = settings.effective_public_url
    print(f"\nlivedesk demo is running on {url}  (data in {settings.data_dir.resolve()})\n")
    print(f"  shop page with the widget   {url}/demo/shop")
    print(f"  advisor console             {url}/staff/")
    print(f"  supervisor dashboard        {url}/supervisor/")
    print(f"  admin                       {url}/admin/")
    print(f"  API document                {url}/api/openapi.json")
    if outbox_of(settings) is not None:
        print(f"  demo mail outbox            {url}/demo/mail  (no SMTP server: mails stay here)")
    print()
    print(f"  demo logins (password for all: {DEMO_PASSWORD})")
    for role, email, name in logins:
        print(f"    {role:<11} {email:<32} {name}")
    print(flush=True)
    if args.no_serve:
        return
    _serve(settings)


def cmd_db_upgrade(_args: argparse.Namespace) -> None:
    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(upgrade(settings.effective_database_url))
    print("database is at the newest migration")


def cmd_staff_add(args: argparse.Namespace) -> None:
    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    password = args.password or os.environ.get("LIVEDESK_NEW_STAFF_PASSWORD") or getpass.getpass("password: ")
    try:
        data = StaffCreate(
            email=args.email,
            password=password,
            role=Role(args.role),
            display_name=args.name or args.email.split("@")[0],
        )
    except ValidationError as exc:
        raise SystemExit(f"livedesk: {exc}") from None

    async def add() -> str:
        db = Database(settings.effective_database_url, budget=COMMAND_BUDGET)
        try:
            async with db.transaction() as session:
                staff = await create_staff(session, data, actor_id=None)
                return str(staff.id)
        finally:
            await db.dispose()

    try:
        staff_id = asyncio.run(add())
    except AppError as exc:
        raise SystemExit(f"livedesk: {exc.message}") from None
    print(f"created {args.role} {args.email} ({staff_id})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="livedesk", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server (settings from LIVEDESK_* variables)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--migrate", action="store_true", help="apply database migrations first")
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="migrate, seed demo data (idempotent) and serve on SQLite")
    demo.add_argument("--host")
    demo.add_argument("--port", type=int)
    demo.add_argument("--no-serve", action="store_true", help="seed and exit")
    demo.set_defaults(func=cmd_demo)

    db = sub.add_parser("db", help="database commands")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_up = db_sub.add_parser("upgrade", help="apply migrations up to the newest")
    db_up.set_defaults(func=cmd_db_upgrade)

    staff = sub.add_parser("staff", help="staff accounts")
    staff_sub = staff.add_subparsers(dest="staff_command", required=True)
    add = staff_sub.add_parser("add", help="create a staff account")
    add.add_argument("email")
    add.add_argument("--role", choices=[r.value for r in Role], default=Role.ADVISOR.value)
    add.add_argument("--name", help="display name")
    add.add_argument("--password", help="(or LIVEDESK_NEW_STAFF_PASSWORD, or asked for)")
    add.set_defaults(func=cmd_staff_add)

    imports_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
