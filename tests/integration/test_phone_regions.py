"""Phone numbers on the booking form are read for the shopper's region: the booking page sends
``contact.phone_region`` (from the shopper's time zone, or the region they pick), and the
server parses the typed number with it (``phonenumbers``), Japan when none is sent. A number
written with ``+country code`` is read as written whatever the region."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from livedesk.kit.db import Database
from livedesk.models import Booking, Shopper
from tests.integration.test_booking_api import booking_body, confirm, next_slot, settings, world

__all__ = ["settings", "world"]  # fixtures used here, defined with the booking API tests

Client = TestClient[web.Request, web.Application]
UK_MOBILE = "07911 123456"


async def post_booking(client: Client, world: dict[str, Any], contact: dict[str, Any], minutes: int) -> Any:
    body = booking_body(world["type"]["id"], next_slot(minutes), world["advisor"].id)
    body["contact"] = {"name": "Emily Brown", "email": f"emily-{minutes}@example.co.uk", **contact}
    return await client.post("/api/v1/bookings", json=body)


async def test_a_uk_number_is_read_as_uk_with_region_gb(
    client: Client, world: dict[str, Any], db: Database
) -> None:
    response = await post_booking(client, world, {"phone": UK_MOBILE, "phone_region": "GB"}, 120)
    assert response.status == 201, await response.text()
    created = await confirm(client, await response.json())
    assert created["booking"]["contact_phone"] == "+447911123456"
    async with db.read() as session:
        booking = await session.get(Booking, uuid.UUID(created["booking"]["id"]))
        assert booking is not None
        shopper = await session.get(Shopper, booking.shopper_id)
        assert shopper is not None
        assert shopper.phone == "+447911123456"


async def test_a_uk_number_without_region_is_refused_as_japanese(
    client: Client, world: dict[str, Any]
) -> None:
    response = await post_booking(client, world, {"phone": UK_MOBILE}, 180)
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["code"] == "validation_failed"
    assert error["details"][0]["field"] == "contact.phone"
    assert "JP" in error["details"][0]["message"]  # says which country it was read for


async def test_japan_stays_the_default_and_lower_case_regions_are_accepted(
    client: Client, world: dict[str, Any], db: Database
) -> None:
    default = await post_booking(client, world, {"phone": "090-1234-5678"}, 240)
    assert default.status == 201, await default.text()
    lower = await post_booking(client, world, {"phone": "(212) 555-0123", "phone_region": "us"}, 300)
    assert lower.status == 201, await lower.text()
    async with db.read() as session:
        phones = {
            b.contact_phone
            for b in await session.scalars(
                select(Booking).where(
                    Booking.id.in_([uuid.UUID((await r.json())["booking"]["id"]) for r in (default, lower)])
                )
            )
        }
    assert phones == {"+819012345678", "+12125550123"}


async def test_a_plus_code_wins_over_the_region(client: Client, world: dict[str, Any]) -> None:
    response = await post_booking(client, world, {"phone": "+44 7911 123456", "phone_region": "JP"}, 360)
    assert response.status == 201, await response.text()
    assert (await response.json())["booking"]["contact_phone"] == "+447911123456"


async def test_unknown_regions_are_refused_naming_the_field(client: Client, world: dict[str, Any]) -> None:
    for region in ("ZZ", "G", "GBR", "1A", ""):
        response = await post_booking(client, world, {"phone": UK_MOBILE, "phone_region": region}, 420)
        assert response.status == 422, region
        error = (await response.json())["error"]
        assert error["details"][0]["field"] == "contact.phone_region", (region, error)
    # A region alone, without a number, is harmless.
    response = await post_booking(client, world, {"phone_region": "GB"}, 480)
    assert response.status == 201, await response.text()
