"""CSV imports: orders grouped from line rows, bad rows reported by line while the rest go in,
resuming after an interruption without applying a row twice, the CLI with progress, and the
admin upload with progress polling (admins only)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from livedesk.integrations import imports
from livedesk.kit.db import Database
from livedesk.models import Role, ShopOrder, ShopOrderLine, Shopper, TimelineEvent, TimelineKind
from livedesk.models.integrations import ChannelEvent, ImportJob, ImportStatus
from livedesk.settings import Settings
from tests.conftest import login, wait_until

ORDERS = """order_id,shop_customer_id,email,display_name,ordered_at,channel,sku,name,quantity,unit_price_minor
O-1,C-1,one@example.com,Aoi Ito,2026-09-01T10:00:00+09:00,web,SERUM,Serum,1,4800
O-1,C-1,one@example.com,Aoi Ito,2026-09-01T10:00:00+09:00,web,MASK,Masks,2,1200
O-2,C-2,not-an-email,Bad Mail,2026-09-02T10:00:00+09:00,web,SERUM,Serum,1,4800
O-3,C-3,three@example.com,Ken Abe,2026-09-03T10:00:00+09:00,store,CREAM,Cream,x,5200
O-4,C-1,one@example.com,Aoi Ito,2026-09-04T10:00:00+09:00,web,CREAM,Cream,1,5200
O-5,C-5,,Rin Oda,2026-09-05T10:00:00,web,CREAM,Cream,1,5200
O-6,C-6,six@example.com,Mei Sato,2026-09-06T10:00:00+09:00,web,LOTION,Lotion,1,2600
"""


async def count(db: Database, model: Any) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_bad_rows_reported_by_line_rest_imported(db: Database, settings: Settings) -> None:
    job, created = await imports.create_job(
        db, settings.data_dir, "orders", ORDERS.encode(), "orders.csv", actor_staff_id=None
    )
    assert created
    assert job.total_rows == 7
    job = await imports.run_job(db, settings.data_dir, job.id)
    assert job.status is ImportStatus.DONE
    assert (job.ok_rows, job.error_rows) == (4, 3)
    by_line = {e["line"]: e["message"] for e in job.errors}
    assert set(by_line) == {4, 5, 7}
    assert "customer.email" in by_line[4]
    assert "quantity" in by_line[5]
    assert "ordered_at" in by_line[7]  # no time-zone offset
    async with db.read() as session:
        orders = (await session.scalars(select(ShopOrder.external_id).order_by(ShopOrder.external_id))).all()
        lines = await session.scalar(select(func.count()).select_from(ShopOrderLine))
        aoi = await session.scalar(select(Shopper).where(Shopper.email == "one@example.com"))
        events = await session.scalar(
            select(func.count())
            .select_from(TimelineEvent)
            .where(TimelineEvent.kind == TimelineKind.SHOP_ORDER)
        )
    assert orders == ["O-1", "O-4", "O-6"]
    assert lines == 4  # O-1's two rows are one order with two lines
    assert aoi is not None
    assert aoi.display_name == "Aoi Ito"
    assert events == 3


async def test_interrupted_import_resumes_without_repeating(db: Database, settings: Settings) -> None:
    raw = ORDERS.encode()
    job, _ = await imports.create_job(db, settings.data_dir, "orders", raw, "orders.csv", actor_staff_id=None)

    class Stop(Exception):
        pass

    def stop_after_first_batch(current: ImportJob) -> None:
        raise Stop

    with pytest.raises(Stop):
        await imports.run_job(db, settings.data_dir, job.id, progress=stop_after_first_batch, batch=2)
    async with db.read() as session:
        stopped = await imports.get_job(session, job.id)
    assert stopped.status is ImportStatus.RUNNING
    # The first batch (order O-1, lines 2-3) is committed, and the job knows it.
    assert stopped.next_line == 4
    assert await count(db, ShopOrder) == 1

    again, created = await imports.create_job(
        db, settings.data_dir, "orders", raw, "orders.csv", actor_staff_id=None
    )
    assert (again.id, created) == (job.id, False)
    seen: list[int] = []
    done = await imports.run_job(
        db, settings.data_dir, job.id, progress=lambda j: seen.append(imports.rows_done(j)), batch=2
    )
    assert done.status is ImportStatus.DONE
    assert (done.ok_rows, done.error_rows) == (4, 3)
    assert seen == sorted(seen)
    assert await count(db, ShopOrder) == 3
    assert await count(db, ShopOrderLine) == 4
    # A finished file imported again is a new job whose upserts change nothing.
    repeat, created = await imports.create_job(
        db, settings.data_dir, "orders", raw, "orders.csv", actor_staff_id=None
    )
    assert created
    await imports.run_job(db, settings.data_dir, repeat.id)
    assert await count(db, ShopOrder) == 3


async def test_customers_and_events(db: Database, settings: Settings) -> None:
    customers = (
        "shop_customer_id,display_name,email,phone\nC-1,Aoi Ito,aoi@example.com,090-1234-5678\n,No Id,,\n"
    )
    job, _ = await imports.create_job(
        db, settings.data_dir, "customers", customers.encode(), "c.csv", actor_staff_id=None
    )
    job = await imports.run_job(db, settings.data_dir, job.id)
    assert (job.ok_rows, job.error_rows) == (1, 1)
    assert job.errors[0]["line"] == 3
    events = (
        "event_id,shop_customer_id,occurred_at,kind,store_name,description\n"
        "V-1,C-1,2026-09-01T10:00:00+09:00,store.visit,Ginza,tried lipsticks\n"
        "V-1,C-1,2026-09-01T10:00:00+09:00,store.visit,Ginza,tried lipsticks\n"
    )
    job, _ = await imports.create_job(
        db, settings.data_dir, "events", events.encode(), "e.csv", actor_staff_id=None
    )
    job = await imports.run_job(db, settings.data_dir, job.id)
    assert job.ok_rows == 2
    assert await count(db, ChannelEvent) == 1


async def test_missing_columns_refused_up_front(db: Database, settings: Settings) -> None:
    from livedesk.kit.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as caught:
        await imports.create_job(
            db, settings.data_dir, "orders", b"order_id,sku\nO-1,X\n", "x.csv", actor_staff_id=None
        )
    assert "shop_customer_id" in caught.value.message
    with pytest.raises(ValidationFailed):
        await imports.create_job(
            db, settings.data_dir, "orders", b"\xff\xfe\x00", "x.csv", actor_staff_id=None
        )


async def test_cli_imports_with_progress(database_url: str, tmp_path: Path) -> None:
    csv_file = tmp_path / "orders.csv"
    csv_file.write_text(ORDERS)
    env = {**os.environ, "LIVEDESK_DATABASE_URL": database_url, "LIVEDESK_DATA_DIR": str(tmp_path / "data")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "livedesk",
        "import",
        "orders",
        str(csv_file),
        "--batch",
        "2",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert summary["status"] == "done"
    assert (summary["ok"], summary["refused"]) == (4, 3)
    progress = err.decode()
    assert "7/7 rows" in progress
    assert "line 4:" in progress


async def test_admin_upload_with_progress(
    client: TestClient[web.Request, web.Application], make_staff: Any
) -> None:
    advisor_headers = await login(client, await make_staff(Role.ADVISOR))
    denied = await client.post(
        "/api/v1/imports?kind=orders",
        data=ORDERS.encode(),
        headers={**advisor_headers, "Content-Type": "text/csv"},
    )
    assert denied.status == 403
    client.session.cookie_jar.clear()
    headers = {**await login(client, await make_staff(Role.ADMIN)), "Content-Type": "text/csv"}
    bad = await client.post("/api/v1/imports?kind=orders", data=b"sku\nX\n", headers=headers)
    assert bad.status == 422
    assert "order_id" in (await bad.json())["error"]["message"]
    # The admin page uploads multipart (streamed, beyond the JSON body limit).
    form = aiohttp.FormData()
    form.add_field("file", ORDERS.encode(), filename="orders.csv", content_type="text/csv")
    csrf = {"X-CSRF-Token": headers["X-CSRF-Token"]}
    response = await client.post("/api/v1/imports?kind=orders", data=form, headers=csrf)
    assert response.status == 201, await response.text()
    job = await response.json()

    async def finished() -> dict[str, Any] | None:
        current: dict[str, Any] = await (await client.get(f"/api/v1/imports/{job['id']}")).json()
        return current if current["status"] == "done" else None

    done = await wait_until(finished)
    assert (done["processed_rows"], done["ok_rows"], done["error_rows"]) == (7, 4, 3)
    assert [e["line"] for e in done["errors"]] == [4, 5, 7]
    # The raw text/csv body works too; the same content resumes (here: re-reports) its job.
    raw = await client.post("/api/v1/imports?kind=orders", data=ORDERS.encode(), headers=headers)
    assert raw.status == 201
    listed = await (await client.get("/api/v1/imports")).json()
    names = {item["id"]: item["filename"] for item in listed["imports"]}
    assert names[job["id"]] == "orders.csv"
    assert len(names) == 2
