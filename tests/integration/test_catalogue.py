"""The product catalogue: admins create, change and import (CSV, all or nothing, idempotent);
every staff member reads it; prices in minor units for JPY and USD; the demo catalogue
matches the demo shop."""

from __future__ import annotations

from typing import Any

from livedesk.demo import data
from livedesk.demo.catalogue import seed_catalogue
from livedesk.kit.db import Database
from livedesk.models import Role
from tests.integration.test_payments import StaffHttp

CSV = """sku,name,name_ja,price,currency,image_url,active
HB-SK-001,Sakura Glow Serum,桜グロウ美容液,8800,JPY,/demo/products/hb-sk-001.svg,true
US-TOTE,Canvas Tote,,12.34,USD,https://cdn.example/tote.png,
EU-PEN,Fountain Pen,,25.5,EUR,,false
"""


async def test_admins_manage_the_catalogue_and_staff_read_it(live: Any, make_staff: Any) -> None:
    admin = await StaffHttp(live.url).login(await make_staff(Role.ADMIN))
    advisor = await StaffHttp(live.url).login(await make_staff(Role.ADVISOR))
    try:
        status, product = await admin.request(
            "POST",
            "/api/v1/products",
            json={"sku": "HB-MU-002", "name": "Silk Lip Tint", "price_minor": 3300},
        )
        assert status == 201, product
        assert (product["currency"], product["price_minor"], product["active"]) == ("JPY", 3300, True)
        status, taken = await admin.request(
            "POST", "/api/v1/products", json={"sku": "HB-MU-002", "name": "Again", "price_minor": 1}
        )
        assert (status, taken["error"]["code"]) == (409, "sku_taken")
        status, bad = await admin.request(
            "POST", "/api/v1/products", json={"sku": "X-1", "name": "X", "price_minor": 1, "currency": "ISK"}
        )
        assert status == 422
        assert bad["error"]["details"][0]["field"] == "currency"
        status, bad = await admin.request(
            "POST",
            "/api/v1/products",
            json={"sku": "X-1", "name": "X", "price_minor": 1, "image_url": "javascript:alert(1)"},
        )
        assert status == 422

        # Advisors read, cannot write.
        status, listed = await advisor.request("GET", "/api/v1/products?q=lip")
        assert status == 200
        assert [p["sku"] for p in listed] == ["HB-MU-002"]
        status, _denied = await advisor.request(
            "POST", "/api/v1/products", json={"sku": "Y-1", "name": "Y", "price_minor": 1}
        )
        assert status == 403
        status, _ = await advisor.request(
            "PATCH", f"/api/v1/products/{product['id']}", json={"price_minor": 1}
        )
        assert status == 403
        async with live.http.get("/api/v1/products") as anonymous:
            assert anonymous.status == 401

        status, changed = await admin.request(
            "PATCH", f"/api/v1/products/{product['id']}", json={"price_minor": 3520, "active": False}
        )
        assert status == 200
        assert (changed["price_minor"], changed["active"]) == (3520, False)
        status, listed = await advisor.request("GET", "/api/v1/products")
        assert listed == []  # withdrawn
        status, _ = await advisor.request("GET", "/api/v1/products?include_inactive=true")
        assert status == 403
        status, everything = await admin.request("GET", "/api/v1/products?include_inactive=true")
        assert [p["sku"] for p in everything] == ["HB-MU-002"]
        status, _missing = await admin.request(
            "PATCH", "/api/v1/products/00000000-0000-0000-0000-000000000000", json={"name": "Z"}
        )
        assert status == 404
    finally:
        await admin.close()
        await advisor.close()


async def test_csv_import_upserts_by_sku_all_or_nothing(live: Any, make_staff: Any) -> None:
    admin = await StaffHttp(live.url).login(await make_staff(Role.ADMIN))
    csv_type = {"Content-Type": "text/csv"}
    try:
        status, result = await admin.request(
            "POST", "/api/v1/products/import", data=CSV.encode(), headers=csv_type
        )
        assert status == 200, result
        assert (result["created"], result["updated"], result["unchanged"]) == (3, 0, 0)
        prices = {p["sku"]: (p["price_minor"], p["currency"], p["active"]) for p in result["products"]}
        assert prices == {
            "HB-SK-001": (8800, "JPY", True),
            "US-TOTE": (1234, "USD", True),
            "EU-PEN": (2550, "EUR", False),
        }
        # The same file again changes nothing; a changed price updates that one row.
        status, again = await admin.request(
            "POST", "/api/v1/products/import", data=CSV.encode(), headers=csv_type
        )
        assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 3)
        changed = CSV.replace("12.34,USD", "13.00,USD")
        status, once_more = await admin.request(
            "POST", "/api/v1/products/import", data=changed.encode(), headers=csv_type
        )
        assert (once_more["created"], once_more["updated"], once_more["unchanged"]) == (0, 1, 2)

        # Every bad cell is named, and nothing at all is imported.
        broken = (
            "sku,name,price,currency\n"
            "NEW-1,New thing,100,JPY\n"
            "NEW-2,Half yen,100.5,JPY\n"
            "NEW-3,,5,USD\n"
            "NEW-1,Repeat,1,JPY\n"
            "NEW-4,Odd money,1,XXX\n"
        )
        status, error = await admin.request(
            "POST", "/api/v1/products/import", data=broken.encode(), headers=csv_type
        )
        assert status == 422
        assert error["error"]["code"] == "csv_invalid"
        assert [(d["line"], d["field"]) for d in error["error"]["details"]] == [
            (3, "price"),
            (4, "name"),
            (5, "sku"),
            (6, "currency"),
        ]
        assert "nothing was imported" in error["error"]["message"]
        status, listed = await admin.request("GET", "/api/v1/products?q=new")
        assert listed == []

        status, error = await admin.request(
            "POST", "/api/v1/products/import", data=b"sku,title\nA,B\n", headers=csv_type
        )
        assert status == 422
        assert "missing column(s) name, price" in error["error"]["message"]
        status, error = await admin.request(
            "POST",
            "/api/v1/products/import",
            data=b'{"sku": 1}',
            headers={"Content-Type": "application/json"},
        )
        assert status == 415
        status, error = await admin.request(
            "POST",
            "/api/v1/products/import",
            data="sku,name,price\nA,Ä,1\n".encode("utf-16"),
            headers=csv_type,
        )
        assert status == 400
        assert "UTF-8" in error["error"]["message"]
        advisor = await StaffHttp(live.url).login(await make_staff(Role.ADVISOR))
        status, _ = await advisor.request(
            "POST", "/api/v1/products/import", data=CSV.encode(), headers=csv_type
        )
        await advisor.close()
        assert status == 403
    finally:
        await admin.close()


async def test_demo_catalogue_matches_the_demo_shop(db: Database) -> None:
    async with db.transaction() as session:
        assert await seed_catalogue(session) == len(data.CATALOGUE)
    async with db.transaction() as session:
        assert await seed_catalogue(session) == 0  # idempotent
    from livedesk.catalogue.service import list_products
    from livedesk.pages.routes import WEB_DIR

    async with db.read() as session:
        products = {p.sku: p for p in await list_products(session)}
    for item in data.CATALOGUE:
        product = products[item.sku]
        assert (product.price_minor, product.currency, product.name) == (item.price, "JPY", item.name_en)
        assert (WEB_DIR / product.image_url.lstrip("/")).is_file()
