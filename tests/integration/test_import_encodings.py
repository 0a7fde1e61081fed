"""CSV imports in the encodings Japanese shops export: CP932 (Excel's "CSV" in Japan), UTF-8
with and without BOM, UTF-16 with BOM — detected, or chosen with ``--encoding`` / the upload's
``encoding`` field; full-width digits read as digits; a bad row reported by line while the
rest go in; a file that cannot be decoded refused naming the line and the encoding."""

from __future__ import annotations

import asyncio
import codecs
import json
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from livedesk.integrations import imports
from livedesk.kit.db import Database
from livedesk.kit.errors import ValidationFailed
from livedesk.models import Role, ShopOrder, ShopOrderLine, Shopper
from livedesk.models.integrations import ImportStatus
from livedesk.settings import Settings
from tests.conftest import login, wait_until

# A shop's customer export as Excel saves it: Japanese names (髙 and ㈱ exist only in CP932,
# not in plain Shift_JIS), full-width digits and hyphens in phone numbers, a full-width
# e-mail address, and one bad row (line 4: not an e-mail address).
CUSTOMERS = (
    "shop_customer_id,display_name,email,phone\r\n"
    "C-1,髙橋 葵,aoi@example.jp,０９０－１２３４－５６７８\r\n"
    "C-2,㈱山田商店 山田 太郎,ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ,03-1234-5678\r\n"
    "C-3,佐藤 花子,メールなし,080-0000-0000\r\n"
    "C-4,伊藤 蓮,ren@example.jp,\r\n"
)
ORDERS = (
    "order_id,shop_customer_id,ordered_at,sku,name,quantity,unit_price_minor\r\n"
    "O-1,C-1,２０２６-０９-０１T１０:００:００+０９:００,SERUM,美容液,２,４８００\r\n"
    "O-2,C-1,2026-09-02T10:00:00+09:00,MASK,シートマスク,１,１２００\r\n"
)


async def shoppers(db: Database) -> dict[str, Shopper]:
    async with db.read() as session:
        rows = (await session.scalars(select(Shopper))).all()
    return {s.display_name: s for s in rows}


async def import_bytes(
    db: Database, settings: Settings, kind: str, raw: bytes, encoding: str | None = None
) -> Any:
    job, _ = await imports.create_job(
        db, settings.data_dir, kind, raw, f"{kind}.csv", actor_staff_id=None, encoding=encoding
    )
    return await imports.run_job(db, settings.data_dir, job.id, batch=2)


def check_customers(job: Any, people: dict[str, Shopper]) -> None:
    assert job.status is ImportStatus.DONE
    assert (job.ok_rows, job.error_rows) == (3, 1)
    [error] = job.errors
    assert error["line"] == 4
    assert "email" in error["message"]
    assert set(people) == {"髙橋 葵", "㈱山田商店 山田 太郎", "伊藤 蓮"}
    assert people["髙橋 葵"].phone == "+819012345678"
    assert people["㈱山田商店 山田 太郎"].email == "taro@example.jp"
    assert people["㈱山田商店 山田 太郎"].phone == "+81312345678"


@pytest.mark.parametrize(
    ("encode", "label"),
    [
        (lambda text: text.encode("cp932"), "CP932 (Shift_JIS)"),
        (lambda text: text.encode("utf-8"), "UTF-8"),
        (lambda text: codecs.BOM_UTF8 + text.encode("utf-8"), "UTF-8"),
        (lambda text: text.encode("utf-16"), "UTF-16"),  # Python writes the BOM
    ],
    ids=["cp932", "utf-8", "utf-8-bom", "utf-16-bom"],
)
async def test_encoding_detected(db: Database, settings: Settings, encode: Any, label: str) -> None:
    job = await import_bytes(db, settings, "customers", encode(CUSTOMERS))
    check_customers(job, await shoppers(db))
    assert f"read as {label}" in job.message


async def test_real_cp932_file_from_disk_with_full_width_order_numbers(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    # Written to disk and read back as bytes, as an upload of Excel's file would be.
    path = tmp_path / "orders.csv"
    path.write_bytes(ORDERS.encode("cp932"))
    raw = path.read_bytes()
    assert b"\x94\xfc\x97\x65\x89\x74" in raw  # 美容液 in CP932, not UTF-8
    job = await import_bytes(db, settings, "orders", raw)
    assert job.status is ImportStatus.DONE
    assert (job.ok_rows, job.error_rows) == (2, 0), job.errors
    async with db.read() as session:
        lines = (await session.scalars(select(ShopOrderLine).order_by(ShopOrderLine.sku))).all()
        orders = (await session.scalars(select(ShopOrder))).all()
    assert [(line.name, line.quantity, line.unit_price_minor) for line in lines] == [
        ("シートマスク", 1, 1200),
        ("美容液", 2, 4800),
    ]
    assert len(orders) == 2


async def test_chosen_encoding_and_undecodable_files(db: Database, settings: Settings) -> None:
    cp932 = CUSTOMERS.encode("cp932")
    # Chosen: Shift_JIS is read as CP932 (㈱ and 髙 decode).
    job = await import_bytes(db, settings, "customers", cp932, encoding="Shift_JIS")
    check_customers(job, await shoppers(db))
    # The wrong encoding chosen: refused whole, naming the encoding and the line.
    with pytest.raises(ValidationFailed) as wrong:
        await import_bytes(db, settings, "customers", cp932, encoding="utf-8")
    assert wrong.value.code == "bad_encoding"
    assert "UTF-8 at line 2" in wrong.value.message
    # Neither UTF-8 nor CP932 (0x85 0x40 is an unassigned CP932 code) on line 3.
    broken = b"shop_customer_id,display_name\r\nC-9,ok\r\nC-10,\x85\x40\xff\r\n"
    with pytest.raises(ValidationFailed) as neither:
        await import_bytes(db, settings, "customers", broken)
    assert neither.value.code == "bad_encoding"
    assert "UTF-8 at line 3" in neither.value.message
    assert "CP932 (Shift_JIS) at line 3" in neither.value.message
    assert neither.value.details == {"line": 3, "encodings": ["UTF-8", "CP932 (Shift_JIS)"]}
    # UTF-16 without its byte-order mark is not guessed, but named.
    with pytest.raises(ValidationFailed, match="UTF-16 without a byte-order mark"):
        await import_bytes(db, settings, "customers", CUSTOMERS.encode("utf-16-le"))
    job = await import_bytes(db, settings, "customers", CUSTOMERS.encode("utf-16-le"), encoding="utf-16-le")
    assert job.ok_rows == 3
    with pytest.raises(ValidationFailed, match="Unknown encoding"):
        await import_bytes(db, settings, "customers", cp932, encoding="latin-9000")


async def test_cli_encoding_option(database_url: str, tmp_path: Path, db: Database) -> None:
    csv_file = tmp_path / "customers.csv"
    csv_file.write_bytes(CUSTOMERS.encode("cp932"))
    env = {**os.environ, "LIVEDESK_DATABASE_URL": database_url, "LIVEDESK_DATA_DIR": str(tmp_path / "data")}

    async def run(*extra: str) -> tuple[int | None, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "livedesk",
            "import",
            "customers",
            str(csv_file),
            *extra,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
        return process.returncode, out.decode(), err.decode()

    code, _, err = await run("--encoding", "utf-8")
    assert code == 1
    assert "cannot be decoded as UTF-8 at line 2" in err
    code, out, err = await run("--encoding", "cp932")
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert (summary["ok"], summary["refused"]) == (3, 1)
    assert "line 4:" in err
    assert "髙橋 葵" in await shoppers(db)


async def test_admin_upload_with_encoding_field(
    client: TestClient[web.Request, web.Application], make_staff: Any, db: Database
) -> None:
    headers = await login(client, await make_staff(Role.ADMIN))
    csrf = {"X-CSRF-Token": headers["X-CSRF-Token"]}
    form = aiohttp.FormData()
    form.add_field("encoding", "cp932")
    form.add_field("file", CUSTOMERS.encode("cp932"), filename="顧客.csv", content_type="text/csv")
    response = await client.post("/api/v1/imports?kind=customers", data=form, headers=csrf)
    assert response.status == 201, await response.text()
    job = await response.json()

    async def finished() -> dict[str, Any] | None:
        current: dict[str, Any] = await (await client.get(f"/api/v1/imports/{job['id']}")).json()
        return current if current["status"] == "done" else None

    done = await wait_until(finished)
    assert (done["ok_rows"], done["error_rows"]) == (3, 1)
    assert [e["line"] for e in done["errors"]] == [4]
    assert "CP932" in done["message"]
    # The raw body (bytes, not UTF-8 text: application/octet-stream) with the query field; a
    # wrong one refused with the line and the encoding.
    raw_headers = {**headers, "Content-Type": "application/octet-stream"}
    wrong = await client.post(
        "/api/v1/imports?kind=customers&encoding=utf-8", data=CUSTOMERS.encode("cp932"), headers=raw_headers
    )
    assert wrong.status == 422
    error = (await wrong.json())["error"]
    assert error["code"] == "bad_encoding"
    assert "UTF-8 at line 2" in error["message"]
    chosen = await client.post(
        "/api/v1/imports?kind=customers&encoding=shift_jis",
        data=CUSTOMERS.encode("cp932"),
        headers=raw_headers,
    )
    # Accepted (a new job: the first one of this file is finished) and read as CP932.
    assert chosen.status == 201
    assert "CP932" in (await chosen.json())["message"]
    unknown = await client.post(
        "/api/v1/imports?kind=customers&encoding=klingon", data=b"x", headers=raw_headers
    )
    assert unknown.status == 422
    assert (await unknown.json())["error"]["code"] == "bad_encoding"
