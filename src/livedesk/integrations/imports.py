"""Bulk loads from CSV: shop customers, orders (one row per line item) and channel events.

An import is a job (``import_jobs``): the file is kept in the data directory under the job's
id, and rows are applied in batches, each batch in one transaction that also moves the job's
``next_line`` on. So an import stopped at any point (a crash, Ctrl-C, a restart) resumes at
the first row not yet committed, and running it again never applies a row twice (the rows
are idempotent upserts anyway). A bad row is reported by its line number and skipped; the
rest go on. The same file (by SHA-256) is the same job. Rows go through the shop API's
service, so its identity rule holds here too: a row of a new shop customer id carrying
another profile's e-mail or phone number is refused (by line), never attached to them.

The file may be UTF-8 (with or without BOM), CP932/Shift_JIS, UTF-16 with BOM (detected) or
EUC-JP (when chosen): ``csv_text.py`` says how. The job keeps the text as UTF-8, so a resumed
job reads it the same way. Full-width digits and signs in the columns parsed as numbers,
dates, phone numbers and e-mail addresses are read as their ASCII forms.

Columns (header row required, extra columns ignored):

* customers: ``shop_customer_id``, and any of ``display_name``, ``email``, ``phone``,
  ``phone_region``, ``locale``
* orders: ``order_id``, ``shop_customer_id``, ``ordered_at`` (ISO 8601 with offset), ``sku``,
  ``name``, ``quantity``, ``unit_price_minor``, and any of ``email``, ``phone``,
  ``display_name``, ``channel``, ``currency``, ``store_name``, ``total_minor``. Consecutive rows
  with the same ``order_id`` are one order.
* events: ``event_id``, ``shop_customer_id``, ``occurred_at``, and any of ``kind`` (default
  ``store.visit``), ``store_name``, ``description``
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import itertools
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.integrations import csv_text, shop
from livedesk.integrations.schemas import ChannelEventUpsert, OrderUpsert, ShopperUpsert
from livedesk.kit.clock import utcnow
from livedesk.kit.db import Database
from livedesk.kit.errors import AppError, NotFound, ValidationFailed
from livedesk.kit.logging import get_logger
from livedesk.models.integrations import ImportJob, ImportStatus

log = get_logger("livedesk.imports")

KINDS = ("customers", "orders", "events")
REQUIRED = {
    "customers": ("shop_customer_id",),
    "orders": ("order_id", "shop_customer_id", "ordered_at", "sku", "name", "quantity", "unit_price_minor"),
    "events": ("event_id", "shop_customer_id", "occurred_at"),
}
BATCH_ROWS = 200
MAX_ERRORS_KEPT = 1000
MAX_FILE_BYTES = 512 * 1024 * 1024
Progress = Callable[[ImportJob], Awaitable[None] | None]


@dataclass(frozen=True)
class Unit:
    """One thing to apply: a customer, an event, or an order with all its line rows."""

    first_line: int
    last_line: int
    rows: list[dict[str, str]]


def import_dir(data_dir: Path) -> Path:
    return data_dir / "imports"


def _save(folder: Path, name: str, raw: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(raw)


def check_header(kind: str, text: str) -> list[str]:
    """The header's columns; ValidationFailed naming the missing required ones."""
    if kind not in KINDS:
        raise ValidationFailed(
            f"Unknown import kind {kind!r}; expected one of {list(KINDS)}", code="bad_kind"
        )
    header = next(csv.reader(io.StringIO(text)), [])
    columns = [c.strip() for c in header]
    missing = [c for c in REQUIRED[kind] if c not in columns]
    if missing:
        raise ValidationFailed(
            f"The CSV header lacks the column(s) {', '.join(missing)} needed for {kind}",
            code="bad_csv",
            details={"missing": missing, "found": columns},
        )
    return columns


def _rows(text: str) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for each data row; line 1 is the header."""
    reader = csv.DictReader(io.StringIO(text))
    reader.fieldnames = [f.strip() for f in reader.fieldnames or []]
    for row in reader:
        # Line of the row's *end*; for one-line rows (the norm) that is its line.
        clean = {k: (v or "").strip() for k, v in row.items() if k is not None}
        yield reader.line_num, csv_text.normalise(clean)


def units(kind: str, text: str, start_line: int = 2) -> Iterator[Unit]:
    """The rows from ``start_line`` on, grouped into units (orders span consecutive rows)."""
    rows = ((n, r) for n, r in _rows(text) if n >= start_line)
    if kind != "orders":
        for n, row in rows:
            yield Unit(n, n, [row])
        return
    for _, group in itertools.groupby(rows, key=lambda item: item[1].get("order_id", "")):
        items = list(group)
        yield Unit(items[0][0], items[-1][0], [r for _, r in items])


def count_rows(text: str) -> int:
    return sum(1 for _ in _rows(text))


def _opt(row: dict[str, str], *names: str) -> dict[str, str]:
    return {name: row[name] for name in names if row.get(name)}


async def apply_unit(session: AsyncSession, kind: str, unit: Unit) -> None:
    """Apply one unit through the same service as the shop API (ValidationError or AppError
    for a bad unit)."""
    first = unit.rows[0]
    if kind == "customers":
        data = ShopperUpsert.model_validate(
            _opt(first, "display_name", "email", "phone", "phone_region", "locale")
        )
        await shop.upsert_shopper(session, first["shop_customer_id"], data, source="import")
        return
    customer = {
        "shop_customer_id": first.get("shop_customer_id", ""),
        **_opt(first, "email", "phone", "phone_region", "display_name"),
    }
    if kind == "events":
        event = ChannelEventUpsert.model_validate(
            {
                "customer": customer,
                "occurred_at": first.get("occurred_at"),
                **_opt(first, "kind", "store_name", "description"),
            }
        )
        await shop.record_event(session, first["event_id"], event, integration_id=None, source="import")
        return
    order = OrderUpsert.model_validate(
        {
            "customer": customer,
            "ordered_at": first.get("ordered_at"),
            **_opt(first, "channel", "currency", "store_name", "total_minor"),
            "lines": [
                {
                    "sku": r.get("sku"),
                    "name": r.get("name"),
                    "quantity": r.get("quantity"),
                    "unit_price_minor": r.get("unit_price_minor"),
                }
                for r in unit.rows
            ],
        }
    )
    await shop.upsert_order(session, first["order_id"], order, source="import")


def describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors(include_url=False, include_input=False):
            field = ".".join(str(p) for p in err["loc"]) or "row"
            parts.append(f"{field}: {err['msg']}")
        return "; ".join(parts)
    if isinstance(exc, AppError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


async def create_job(
    db: Database,
    data_dir: Path,
    kind: str,
    raw: bytes,
    filename: str,
    *,
    actor_staff_id: uuid.UUID | None,
    encoding: str | None = None,
) -> tuple[ImportJob, bool]:
    """The job for this file: an unfinished job of the same content is resumed (False), else a
    new one is made (True). The text is decoded first (``encoding``, or detected: 422
    ``bad_encoding`` naming the line that cannot be), then the header checked (422 naming
    missing columns)."""
    if len(raw) > MAX_FILE_BYTES:
        raise ValidationFailed(f"The file is larger than {MAX_FILE_BYTES} bytes", code="too_large")
    decoded = csv_text.decode(raw, encoding)
    text = decoded.text
    check_header(kind, text)
    digest = hashlib.sha256(raw).hexdigest()
    async with db.transaction() as session:
        existing = await session.scalar(
            select(ImportJob)
            .where(
                ImportJob.content_sha256 == digest,
                ImportJob.kind == kind,
                ImportJob.status == ImportStatus.RUNNING,
            )
            .order_by(ImportJob.created_at.desc())
            .limit(1)
        )
        if existing is not None and (import_dir(data_dir) / f"{existing.id}.csv").exists():
            return existing, False
        now = utcnow()
        job = ImportJob(
            id=uuid.uuid4(),
            kind=kind,
            filename=filename[:300],
            content_sha256=digest,
            status=ImportStatus.RUNNING,
            total_rows=count_rows(text),
            next_line=2,
            ok_rows=0,
            error_rows=0,
            errors=[],
            message=f"read as {decoded.label}",
            created_by_staff_id=actor_staff_id,
            created_at=now,
            updated_at=now,
            bytes_total=len(raw),
        )
        # Kept as UTF-8 whatever it came in: the runner (and a resume) reads one encoding.
        await asyncio.to_thread(_save, import_dir(data_dir), f"{job.id}.csv", text.encode())
        session.add(job)
    return job, True


async def get_job(session: AsyncSession, job_id: uuid.UUID) -> ImportJob:
    job = await session.get(ImportJob, job_id)
    if job is None:
        raise NotFound("No such import", code="import_not_found")
    return job


async def list_jobs(session: AsyncSession, limit: int = 20) -> list[ImportJob]:
    rows = await session.scalars(select(ImportJob).order_by(ImportJob.created_at.desc()).limit(limit))
    return list(rows.all())


def rows_done(job: ImportJob) -> int:
    return job.ok_rows + job.error_rows


async def run_job(
    db: Database, data_dir: Path, job_id: uuid.UUID, progress: Progress | None = None, batch: int = BATCH_ROWS
) -> ImportJob:
    """Apply the job's rows from where it stopped, a batch per transaction; returns the job as
    it ended. Stops (without error) when another runner moved the job on meanwhile."""
    path = import_dir(data_dir) / f"{job_id}.csv"
    async with db.read() as session:
        job = await get_job(session, job_id)
    if job.status is not ImportStatus.RUNNING:
        return job
    if not path.exists():
        async with db.transaction() as session:
            job = await get_job(session, job_id)
            job.status = ImportStatus.FAILED
            job.message = "The uploaded file is gone from the data directory; upload it again"
            job.updated_at = utcnow()
        return job
    text = csv_text.decode(await asyncio.to_thread(path.read_bytes), "utf-8").text
    pending = units(job.kind, text, job.next_line)
    while True:
        chunk: list[Unit] = []
        rows_in_chunk = 0
        for unit in pending:
            chunk.append(unit)
            rows_in_chunk += len(unit.rows)
            if rows_in_chunk >= batch:
                break
        expected = job.next_line
        async with db.transaction() as session:
            current = await session.get(ImportJob, job_id, with_for_update=True)
            if current is None or current.next_line != expected or current.status is not ImportStatus.RUNNING:
                log.info("import moved on by another runner; stopping", job=str(job_id))
                return current or job
            job = current
            errors = list(job.errors)
            # Counted here and written once per batch: changing the job per row would make
            # every row's queries flush an UPDATE of it first.
            ok, refused = 0, 0
            for unit in chunk:
                try:
                    async with session.begin_nested():
                        await apply_unit(session, job.kind, unit)
                    ok += len(unit.rows)
                except (ValidationError, AppError, ValueError) as exc:
                    refused += len(unit.rows)
                    if len(errors) < MAX_ERRORS_KEPT:
                        entry: dict[str, Any] = {"line": unit.first_line, "message": describe(exc)}
                        if unit.last_line != unit.first_line:
                            entry["last_line"] = unit.last_line
                        errors.append(entry)
            job.ok_rows += ok
            job.error_rows += refused
            job.errors = errors
            if chunk:
                job.next_line = chunk[-1].last_line + 1
            else:
                job.status = ImportStatus.DONE
                job.finished_at = utcnow()
                read_as = f" ({job.message})" if job.message.startswith("read as") else ""
                job.message = f"{job.ok_rows} rows imported, {job.error_rows} refused{read_as}"
            job.updated_at = utcnow()
        if progress is not None:
            result = progress(job)
            if result is not None:
                await result
        if not chunk:
            return job
