"""The advisor's product search (issue 19 item 5): GET /api/v1/products?q= matches SKU, the
English or the Japanese name, case-insensitively, pages by ``after`` (the last SKU seen, in
SKU order), treats % and _ as letters (a search for "100%" finds the product named so and
not everything), and refuses a bad cursor with a clear 422. Both databases."""

from __future__ import annotations

from typing import Any

from livedesk.models import Role
from tests.integration.test_payments import StaffHttp

PRODUCTS = [
    {"sku": "TS-SERUM-01", "name": "Night Serum", "name_ja": "ナイト美容液"},
    {"sku": "TS-SERUM-02", "name": "Day Serum", "name_ja": "デイ美容液"},
    {"sku": "TS-SERUM-03", "name": "Serum Duo", "name_ja": "美容液デュオ"},
    {"sku": "TS-OIL-100", "name": "Cleansing oil 100% plant", "name_ja": "植物100%クレンジングオイル"},
    {"sku": "TS-MASK_A", "name": "Sheet mask", "name_ja": "シートマスク"},
]


async def test_search_by_name_or_sku_in_both_languages_in_pages(live: Any, make_staff: Any) -> None:
    admin = await StaffHttp(live.url).login(await make_staff(Role.ADMIN))
    advisor = await StaffHttp(live.url).login(await make_staff(Role.ADVISOR))
    try:
        for p in PRODUCTS:
            status, body = await admin.request("POST", "/api/v1/products", json={**p, "price_minor": 1000})
            assert status == 201, body

        async def skus(query: str) -> list[str]:
            status, listed = await advisor.request("GET", f"/api/v1/products?{query}")
            assert status == 200, listed
            return [p["sku"] for p in listed]

        serums = ["TS-SERUM-01", "TS-SERUM-02", "TS-SERUM-03"]
        assert await skus("q=serum") == serums
        assert await skus("q=SERUM") == serums
        assert await skus("q=%E7%BE%8E%E5%AE%B9%E6%B6%B2") == serums  # 美容液
        assert await skus("q=ts-oil") == ["TS-OIL-100"]
        # Pages of two, by the last SKU seen; the last page is short, then nothing.
        assert await skus("q=serum&limit=2") == serums[:2]
        assert await skus("q=serum&limit=2&after=TS-SERUM-02") == serums[2:]
        assert await skus("q=serum&limit=2&after=TS-SERUM-03") == []
        # LIKE's wildcards are letters here.
        assert await skus("q=100%25") == ["TS-OIL-100"]
        assert await skus("q=%25") == ["TS-OIL-100"]
        assert await skus("q=mask_") == ["TS-MASK_A"]
        assert await skus("q=_") == ["TS-MASK_A"]
        # A cursor longer than any SKU is refused in words.
        status, bad = await advisor.request("GET", f"/api/v1/products?after={'x' * 200}")
        assert status == 422, bad
        assert bad["error"]["code"] == "validation_failed"
    finally:
        await admin.close()
        await advisor.close()
