"""Product cards come from the catalogue, and intake answers name only the shopper's own
booking — each written as the attack it stops.

A card is the shop speaking (name, price, picture and a link the call page opens), so a
shopper may not send one, and staff send only a SKU: the server fills the rest from the
catalogue, in the consultation's language.
"""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pydantic import ValidationError
from sqlalchemy import func, select

from livedesk.kit.db import Database
from livedesk.models import (
    Message,
    MessageKind,
    Product,
    Role,
    SurveyResponse,
)
from livedesk.settings import Settings
from livedesk.surveys import service as surveys
from livedesk.surveys.schemas import SurveyCreate
from tests.conftest import login
from tests.integration.test_surveys import booking_of

SHOP_PAGE = "https://shop.example/products/{sku}"
SERUM = {
    "sku": "HB-SK-001",
    "name": "Sakura Glow Serum",
    "name_ja": "桜グロウ美容液",
    "price_minor": 8800,
    "currency": "JPY",
    "image_url": "/demo/products/hb-sk-001.svg",
}
# What an attacker would put on a card: a free product, someone else's picture, a script link.
FORGED = {
    "sku": SERUM["sku"],
    "name": "FREE — claim now",
    "price_minor": 0,
    "currency": "USD",
    "image_url": "https://evil.example/pixel.png",
    "url": "javascript:alert(document.cookie)",
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"presence_grace_seconds": 0.0, "product_page_url": SHOP_PAGE})


async def _catalogue(db: Database) -> None:
    async with db.transaction() as session:
        session.add(Product(id=uuid.uuid4(), active=True, **SERUM))
        session.add(
            Product(
                id=uuid.uuid4(),
                sku="HB-OLD-1",
                name="Retired Balm",
                name_ja="",
                price_minor=1000,
                currency="JPY",
                image_url="",
                active=False,
            )
        )


async def _active_chat(
    live: Any, make_staff: Any, *, locale: str = "ja", language: str | None = None
) -> tuple[Any, Any, dict[str, Any]]:
    advisor = await make_staff(Role.ADVISOR)
    console = await live.staff(advisor)
    await console.wait_for("presence.changed", lambda p: p["status"] == "available")
    shopper = await live.shopper((await live.visitor(locale=locale))["token"])
    join: dict[str, Any] = {"kind": "chat"}
    if language is not None:
        join["language"] = language
    consultation = await shopper.ok("queue.join", join)
    await console.wait_for("offer.new")
    await console.ok("offer.accept", {"consultation_id": consultation["id"]})
    return shopper, console, consultation


async def _messages(db: Database, consultation_id: str) -> list[Message]:
    async with db.read() as session:
        rows = await session.scalars(
            select(Message).where(Message.consultation_id == uuid.UUID(consultation_id)).order_by(Message.seq)
        )
        return list(rows.all())


async def test_a_shopper_cannot_forge_a_product_card(live: Any, make_staff: Any, db: Database) -> None:
    await _catalogue(db)
    shopper, console, consultation = await _active_chat(live, make_staff)
    ref = {"consultation_id": consultation["id"]}
    forged = await shopper.call(
        "chat.send", {**ref, "client_id": "forged-0001", "kind": "product", "body": "FREE", "data": FORGED}
    )
    assert forged["ok"] is False
    assert forged["error"]["code"] == "product_card_staff_only"
    # Naming a real SKU and nothing else is refused too: a card is the shop speaking.
    bare = await shopper.call(
        "chat.send", {**ref, "client_id": "forged-0002", "kind": "product", "data": {"sku": SERUM["sku"]}}
    )
    assert bare["error"]["code"] == "product_card_staff_only"
    # The shopper's next message is the first thing the advisor hears: nothing came before it.
    text = await shopper.ok("chat.send", {**ref, "client_id": "after-0001", "body": "hello"})
    await console.wait_for("chat.message", lambda m: m["id"] == text["id"])
    assert [(m["seq"], m["kind"]) for m in console.received("chat.message")] == [(1, "text")]
    assert [(m.seq, m.kind) for m in await _messages(db, consultation["id"])] == [(1, MessageKind.TEXT)]


@pytest.mark.parametrize(
    ("locale", "language", "name"),
    [("ja", None, SERUM["name_ja"]), ("en", None, SERUM["name"]), ("ja", "en", SERUM["name"])],
    ids=["ja-profile", "en-profile", "en-consultation"],
)
async def test_staff_card_is_filled_from_the_catalogue(
    live: Any, make_staff: Any, db: Database, locale: str, language: str | None, name: str
) -> None:
    await _catalogue(db)
    shopper, console, consultation = await _active_chat(live, make_staff, locale=locale, language=language)
    ref = {"consultation_id": consultation["id"]}
    # The advisor's client (or anyone holding its cookie) sends forged fields with the SKU.
    sent = await console.ok(
        "chat.send", {**ref, "client_id": "card-000001", "kind": "product", "body": "FREE", "data": FORGED}
    )
    expected = {
        "sku": SERUM["sku"],
        "name": name,
        "price_minor": 8800,
        "currency": "JPY",
        "image_url": SERUM["image_url"],
        "url": "https://shop.example/products/HB-SK-001",
        "language": "ja" if name == SERUM["name_ja"] else "en",
    }
    assert sent["message"]["data"] == expected
    assert sent["message"]["body"] == name
    delivered = await shopper.wait_for("chat.message", lambda m: m["id"] == sent["id"])
    assert (delivered["kind"], delivered["data"], delivered["body"]) == ("product", expected, name)
    (stored,) = await _messages(db, consultation["id"])
    assert (stored.kind, stored.data, stored.body) == (MessageKind.PRODUCT, expected, name)
    # A re-send of the same card (a lost ack) is the same message, not a second card.
    again = await console.ok(
        "chat.send", {**ref, "client_id": "card-000001", "kind": "product", "data": {"sku": SERUM["sku"]}}
    )
    assert (again["duplicate"], again["seq"]) == (True, sent["seq"])


async def test_unknown_withdrawn_and_malformed_skus_are_refused(
    live: Any, make_staff: Any, db: Database
) -> None:
    await _catalogue(db)
    shopper, console, consultation = await _active_chat(live, make_staff)
    ref = {"consultation_id": consultation["id"]}

    async def card(client_id: str, data: Any) -> dict[str, Any]:
        ack: dict[str, Any] = await console.call(
            "chat.send", {**ref, "client_id": client_id, "kind": "product", "data": data}
        )
        assert ack["ok"] is False, ack
        error: dict[str, Any] = ack["error"]
        return error

    unknown = await card("unknown-01", {**FORGED, "sku": "NO-SUCH-SKU"})
    assert unknown["code"] == "unknown_sku"
    assert "NO-SUCH-SKU" in unknown["message"]
    assert (await card("withdrawn-1", {"sku": "HB-OLD-1"}))["code"] == "product_withdrawn"
    assert (await card("nosku-0001", {"name": "x"}))["code"] == "validation_failed"
    assert (await card("badsku-001", {"sku": "../../etc"}))["code"] == "validation_failed"
    assert (await card("nodata-001", None))["code"] == "validation_failed"
    assert await _messages(db, consultation["id"]) == []
    # The shopper heard none of it; the advisor's next message is the first they get.
    text = await console.ok("chat.send", {**ref, "client_id": "after-0001", "body": "one moment"})
    await shopper.wait_for("chat.message", lambda m: m["id"] == text["id"])
    assert [m["seq"] for m in shopper.received("chat.message")] == [1]


async def test_a_card_stored_before_its_product_was_withdrawn_still_answers_a_resend(
    live: Any, make_staff: Any, db: Database
) -> None:
    await _catalogue(db)
    _shopper, console, consultation = await _active_chat(live, make_staff)
    send = {"consultation_id": consultation["id"], "client_id": "card-resend", "kind": "product"}
    first = await console.ok("chat.send", {**send, "data": {"sku": SERUM["sku"]}})
    async with db.transaction() as session:
        product = await session.scalar(select(Product).where(Product.sku == SERUM["sku"]))
        assert product is not None
        product.active = False
    again = await console.ok("chat.send", {**send, "data": {"sku": SERUM["sku"]}})
    assert (again["duplicate"], again["id"], again["message"]["data"]["name"]) == (
        True,
        first["id"],
        SERUM["name_ja"],
    )
    fresh = await console.call(
        "chat.send", {**send, "client_id": "card-fresh1", "data": {"sku": SERUM["sku"]}}
    )
    assert fresh["error"]["code"] == "product_withdrawn"


async def test_the_catalogue_api_the_console_picks_from_lists_active_products(
    live: Any, make_staff: Any, db: Database
) -> None:
    """The console's picker reads GET /api/v1/products: both names, price and picture, and
    no withdrawn product (which the server would refuse on a card)."""
    await _catalogue(db)
    advisor = await make_staff(Role.ADVISOR)
    async with aiohttp.ClientSession(base_url=live.url) as http:
        cookie = await live.staff_cookie(advisor)
        response = await http.get("/api/v1/products", headers={"Cookie": f"livedesk_session={cookie}"})
        assert response.status == 200, await response.text()
        listed = await response.json()
    assert [(p["sku"], p["name"], p["name_ja"], p["price_minor"]) for p in listed] == [
        (SERUM["sku"], SERUM["name"], SERUM["name_ja"], 8800)
    ]


@pytest.mark.parametrize(
    "template",
    ["javascript:alert(1)//{sku}", "//evil.example/{sku}", "http://shop.example/{sku}", "/shop/no-sku"],
)
def test_the_card_link_template_is_a_site_path_or_https_with_the_sku(template: str) -> None:
    with pytest.raises(ValidationError, match="product_page_url"):
        Settings(product_page_url=template)


# ---------------------------------------------------------------- intake booking check


def _survey() -> SurveyCreate:
    label = {"ja": "話題", "en": "Topic"}
    return SurveyCreate.model_validate(
        {
            "name": "Before your call",
            "title": {"ja": "ご相談の前に", "en": "Before your call"},
            "questions": [
                {
                    "id": "topic",
                    "type": "single_choice",
                    "label": label,
                    "required": True,
                    "choices": [
                        {"value": "skincare", "label": label},
                        {"value": "makeup", "label": label},
                    ],
                }
            ],
        }
    )


async def test_intake_answers_may_name_only_the_shoppers_own_booking(
    live: Any, make_staff: Any, db: Database
) -> None:
    advisor = await make_staff(Role.ADVISOR)
    async with db.transaction() as session:
        survey = await surveys.create_survey(session, _survey(), actor_id=None)
    attacker, victim = await live.visitor(), await live.visitor()
    victims_booking = await booking_of(db, uuid.UUID(victim["shopper_id"]), advisor.id, days=3)
    own_booking = await booking_of(db, uuid.UUID(attacker["shopper_id"]), advisor.id, days=4)

    async def submit(token: str, booking_id: uuid.UUID) -> aiohttp.ClientResponse:
        async with aiohttp.ClientSession(base_url=live.url) as http:
            response = await http.post(
                "/api/v1/intake-responses",
                json={
                    "survey_id": str(survey.id),
                    "version": 1,
                    "answers": {"topic": "skincare"},
                    "booking_id": str(booking_id),
                },
                headers={"Authorization": f"Bearer {token}"},
            )
            await response.read()
            return response

    # Another shopper's booking, and one that does not exist, get the same answer.
    for booking_id in (victims_booking, uuid.uuid4()):
        refused = await submit(attacker["token"], booking_id)
        assert refused.status == 422
        assert (await refused.json())["error"]["code"] == "booking_not_yours"
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(SurveyResponse)) == 0
    accepted = await submit(attacker["token"], own_booking)
    assert accepted.status == 201, await accepted.text()
    async with db.read() as session:
        kept = await session.scalar(select(SurveyResponse))
    assert kept is not None
    assert (kept.booking_id, str(kept.shopper_id)) == (own_booking, attacker["shopper_id"])


async def test_a_products_own_page_is_its_cards_link(
    client: TestClient[web.Request, web.Application], live: Any, make_staff: Any, db: Database
) -> None:
    """An admin gives a product its own page (the shop's URL template is the fallback): the card
    links there; a page address that is neither a site path nor https is refused."""
    admin = await make_staff(Role.ADMIN)
    headers = await login(client, admin)
    made = await client.post(
        "/api/v1/products",
        json={
            "sku": "HB-MK-9",
            "name": "Petal Lip",
            "price_minor": 3300,
            "currency": "JPY",
            "page_url": "https://hanami.example/lips/petal",
        },
        headers=headers,
    )
    assert made.status == 201, await made.text()
    bad = await client.post(
        "/api/v1/products",
        json={
            "sku": "HB-MK-10",
            "name": "X",
            "price_minor": 1,
            "currency": "JPY",
            "page_url": "javascript:x",
        },
        headers=headers,
    )
    assert bad.status == 422
    _shopper, console, consultation = await _active_chat(live, make_staff, locale="en")
    sent = await console.ok(
        "chat.send",
        {
            "consultation_id": consultation["id"],
            "client_id": "card-page-1",
            "kind": "product",
            "data": {"sku": "HB-MK-9"},
        },
    )
    assert sent["message"]["data"]["url"] == "https://hanami.example/lips/petal"
