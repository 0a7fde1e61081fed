"""``livedesk import KIND FILE``: bulk-load shop customers, orders or channel events from CSV,
with progress on the terminal. Interrupt it at any time; running it again on the same file
resumes where it stopped."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from livedesk.integrations import imports
from livedesk.kit.db import COMMAND_BUDGET, Database
from livedesk.kit.errors import AppError
from livedesk.kit.logging import configure_logging
from livedesk.models.integrations import ImportJob, ImportStatus
from livedesk.settings import Settings


def _show(job: ImportJob) -> None:
    done = imports.rows_done(job)
    share = f"{100 * done / job.total_rows:5.1f}%" if job.total_rows else "  -  "
    sys.stderr.write(
        f"\r{job.kind}: {done}/{job.total_rows} rows {share}  ok {job.ok_rows}  refused {job.error_rows}  "
    )
    sys.stderr.flush()


async def run_import(
    settings: Settings,
    kind: str,
    path: Path,
    *,
    batch: int = imports.BATCH_ROWS,
    encoding: str | None = None,
) -> ImportJob:
    db = Database(settings.effective_database_url, budget=COMMAND_BUDGET)
    try:
        job, created = await imports.create_job(
            db,
            settings.data_dir,
            kind,
            await asyncio.to_thread(path.read_bytes),
            path.name,
            actor_staff_id=None,
            encoding=encoding,
        )
        if not created:
            sys.stderr.write(f"resuming import {job.id} at line {job.next_line}\n")
        _show(job)
        job = await imports.run_job(db, settings.data_dir, job.id, progress=_show, batch=batch)
        sys.stderr.write("\n")
        return job
    finally:
        await db.dispose()


def cmd_import(args: argparse.Namespace) -> None:
    settings = Settings()
    configure_logging("warning", settings.log_format)
    path = Path(args.file)
    if not path.is_file():
        raise SystemExit(f"livedesk: no such file: {path}")
    try:
        job = asyncio.run(run_import(settings, args.kind, path, batch=args.batch, encoding=args.encoding))
    except AppError as exc:
        raise SystemExit(f"livedesk: {exc.message}") from None
    except KeyboardInterrupt:
        raise SystemExit("\nlivedesk: import interrupted; run the same command again to resume") from None
    for error in job.errors:
        print(f"line {error['line']}: {error['message']}", file=sys.stderr)
    print(
        json.dumps(
            {
                "import_id": str(job.id),
                "status": job.status.value,
                "rows": job.total_rows,
                "ok": job.ok_rows,
                "refused": job.error_rows,
            }
        )
    )
    if job.status is not ImportStatus.DONE:
        raise SystemExit(1)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("import", help="bulk-load shop customers, orders or events from CSV (resumable)")
    parser.add_argument("kind", choices=imports.KINDS)
    parser.add_argument("file", help="CSV file with a header row (see docs/integration.md)")
    parser.add_argument("--batch", type=int, default=imports.BATCH_ROWS, help="rows per transaction")
    parser.add_argument(
        "--encoding",
        default=None,
        help="the file's encoding (utf-8, cp932/shift_jis, utf-16, utf-16-le, utf-16-be, euc-jp); "
        "default: detected (BOM, else UTF-8, else CP932)",
    )
    parser.set_defaults(func=cmd_import)
