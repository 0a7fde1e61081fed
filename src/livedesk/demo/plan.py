"""The demo shoppers and their history, generated deterministically.

``build_plan(anchor)`` is a pure function: the same anchor day gives the same plan, and every
id in it comes from a stable key (shop customer id, order number), never from the clock, so
seeding can recognise what it wrote before. Times are laid out backwards from the anchor day,
in the local business hours of whoever served the shopper.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from livedesk.demo import data
from livedesk.demo.data import Product, StaffProfile, Topic
from livedesk.models import ConsultationKind, IdentityKind, MessageKind, OrderChannel, Role, SenderKind

# Fixed namespace: ids derived from it are the same on every machine and every run.
DEMO_NAMESPACE = uuid.UUID("9a1f4c3e-2b7d-5e60-8c1a-6d2f0e4b7a93")
SHOPPER_COUNT = 50
SEED = 42


def demo_id(kind: str, key: str) -> uuid.UUID:
    return uuid.uuid5(DEMO_NAMESPACE, f"{kind}:{key}")


@dataclass(frozen=True)
class PlannedLine:
    product: Product
    quantity: int


@dataclass
class PlannedOrder:
    external_id: str
    channel: OrderChannel
    store_name: str
    ordered_at: datetime
    lines: list[PlannedLine]

    @property
    def id(self) -> uuid.UUID:
        return demo_id("order", self.external_id)

    @property
    def total(self) -> int:
        return sum(line.product.price * line.quantity for line in self.lines)


@dataclass(frozen=True)
class PlannedMessage:
    seq: int
    sender: SenderKind
    kind: MessageKind
    body: str
    data: dict[str, Any]
    at: datetime


@dataclass
class PlannedConsultation:
    key: str
    kind: ConsultationKind
    advisor: StaffProfile
    nominated: bool
    topic: Topic
    language: str
    requested_at: datetime
    accepted_at: datetime
    ended_at: datetime
    closed_at: datetime
    product: Product
    messages: list[PlannedMessage] = field(default_factory=list)

    @property
    def id(self) -> uuid.UUID:
        return demo_id("consultation", self.key)

    @property
    def duration_seconds(self) -> int:
        return int((self.ended_at - self.accepted_at).total_seconds())


@dataclass
class PlannedShopper:
    shop_customer_id: str
    display_name: str
    name_latin: str
    email: str
    phone: str | None
    locale: str
    timezone: str
    attributes: dict[str, Any]
    created_at: datetime
    orders: list[PlannedOrder] = field(default_factory=list)
    consultations: list[PlannedConsultation] = field(default_factory=list)

    @property
    def id(self) -> uuid.UUID:
        return demo_id("shopper", self.shop_customer_id)

    @property
    def identities(self) -> list[tuple[IdentityKind, str]]:
        found = [(IdentityKind.SHOP_CUSTOMER_ID, self.shop_customer_id), (IdentityKind.EMAIL, self.email)]
        if self.phone:
            found.append((IdentityKind.PHONE, self.phone))
        return found


@dataclass
class Plan:
    anchor: date
    shoppers: list[PlannedShopper]


def demo_anchor(now: datetime) -> date:
    """Yesterday (UTC): every planned time, in any time zone's business hours, is in the past."""
    return (now.astimezone(UTC) - timedelta(days=1)).date()


class _Planner:
    def __init__(self, anchor: date) -> None:
        self.anchor = anchor
        # Demo content, not security: a fixed seed makes every run write the same rows.
        self.rng = random.Random(SEED)  # noqa: S311
        self.next_order_number = 10001
        self.advisors = [s for s in data.STAFF if s.role is Role.ADVISOR]

    def at(self, days_ago: int, minutes_after_opening: int, tz: str) -> datetime:
        """A time on a day before the anchor, counted from 10:00 local opening time."""
        day = self.anchor - timedelta(days=days_ago)
        local = datetime.combine(day, time(10, 0), ZoneInfo(tz)) + timedelta(minutes=minutes_after_opening)
        return local.astimezone(UTC)

    def shopper(self, index: int) -> PlannedShopper:
        rng = self.rng
        number = index + 1
        foreign = index % 7 == 3
        if foreign:
            name = data.FOREIGN_NAMES[(index // 7) % len(data.FOREIGN_NAMES)]
            display_name = name_latin = name
            given, family = name.lower().split(" ")
            locale, tz = "en", "Europe/London"
            phone = f"+447911{rng.randrange(100000, 999999)}" if rng.random() < 0.6 else None
        else:
            family_ja, family_en = rng.choice(data.FAMILY_NAMES)
            given_ja, given_en = rng.choice(data.GIVEN_NAMES)
            display_name = f"{family_ja} {given_ja}"
            name_latin = f"{given_en} {family_en}"
            given, family = given_en.lower(), family_en.lower()
            locale, tz = "ja", "Asia/Tokyo"
            prefix = rng.choice(("90", "80", "70"))
            phone = f"+81{prefix}{rng.randrange(10_000_000, 99_999_999)}" if rng.random() < 0.85 else None
        email = f"{given}.{family}{number:02d}@{rng.choice(data.EMAIL_DOMAINS)}"
        beauty = rng.random() < 0.7
        topics: list[Topic] = (
            rng.sample(["skincare", "makeup", "fragrance"], 2) if beauty else ["styling", "sizing"]
        )
        attributes: dict[str, Any] = {"name_latin": name_latin, "interests": list(topics)}
        if beauty:
            attributes["skin_type"] = rng.choice(data.SKIN_TYPES)
        else:
            attributes["size"] = rng.choice(data.SIZES)
        if not foreign:
            attributes["preferred_store"] = rng.choice(data.STORES)
        created_days_ago = rng.randint(240, 720)
        shopper = PlannedShopper(
            shop_customer_id=f"C{1000 + number}",
            display_name=display_name,
            name_latin=name_latin,
            email=email,
            phone=phone,
            locale=locale,
            timezone=tz,
            attributes=attributes,
            created_at=self.at(created_days_ago, rng.randint(0, 600), tz),
        )
        order_count = rng.randint(1, 6)
        consultation_count = rng.choices((0, 1, 2, 3), weights=(15, 40, 30, 15))[0]
        order_days: list[tuple[int, Product | None]] = []
        previous: StaffProfile | None = None
        consult_days = sorted(rng.sample(range(6, created_days_ago - 1), consultation_count), reverse=True)
        for n, days_ago in enumerate(consult_days, start=1):
            consultation = self.consultation(shopper, f"{shopper.shop_customer_id}-{n}", days_ago, previous)
            previous = consultation.advisor
            shopper.consultations.append(consultation)
            # Omnichannel in one line: a recommendation on a call, bought on the web shop days later.
            if len(order_days) < order_count and rng.random() < 0.45:
                order_days.append((days_ago - rng.randint(1, 4), consultation.product))
        while len(order_days) < order_count:
            order_days.append((rng.randint(1, created_days_ago - 1), None))
        for days_ago, recommended in sorted(order_days, key=lambda item: -item[0]):
            shopper.orders.append(self.order(shopper, days_ago, recommended, beauty=beauty))
        return shopper

    def order(
        self, shopper: PlannedShopper, days_ago: int, recommended: Product | None, *, beauty: bool
    ) -> PlannedOrder:
        rng = self.rng
        in_store = recommended is None and shopper.locale == "ja" and rng.random() < 0.4
        wanted = ("skincare", "makeup", "fragrance") if beauty else ("apparel", "accessories")
        pool = [p for p in data.CATALOGUE if p.category in wanted]
        products = [recommended] if recommended else []
        for product in rng.sample(pool, rng.choices((1, 2, 3), weights=(50, 35, 15))[0]):
            if product not in products and len(products) < 3:
                products.append(product)
        lines = [PlannedLine(p, 2 if p.price < 4000 and rng.random() < 0.2 else 1) for p in products]
        external_id = f"HB{self.next_order_number}"
        self.next_order_number += 1
        return PlannedOrder(
            external_id=external_id,
            channel=OrderChannel.STORE if in_store else OrderChannel.WEB,
            store_name=shopper.attributes.get("preferred_store", data.STORES[0]) if in_store else "",
            ordered_at=self.at(days_ago, rng.randint(0, 600), shopper.timezone),
            lines=lines,
        )

    def consultation(
        self, shopper: PlannedShopper, key: str, days_ago: int, previous: StaffProfile | None
    ) -> PlannedConsultation:
        rng = self.rng
        topic: Topic = rng.choice(shopper.attributes["interests"])
        skilled = [a for a in self.advisors if topic in a.skills]
        able = [a for a in skilled if shopper.locale in a.languages] or skilled
        # Returning shoppers often ask for the advisor they had last time (nomination).
        nominated = previous is not None and previous in able and rng.random() < 0.6
        advisor = previous if nominated and previous is not None else rng.choice(able)
        kind = rng.choices(
            (ConsultationKind.VIDEO, ConsultationKind.VOICE, ConsultationKind.CHAT), weights=(50, 20, 30)
        )[0]
        requested = self.at(days_ago, rng.randint(0, 540), advisor.timezone)
        accepted = requested + timedelta(seconds=rng.randint(8, 95))
        minutes = rng.randint(10, 40) if kind is ConsultationKind.VIDEO else rng.randint(5, 20)
        ended = accepted + timedelta(minutes=minutes, seconds=rng.randint(0, 59))
        product = rng.choice([p for p in data.CATALOGUE if topic in p.topics])
        consultation = PlannedConsultation(
            key=key,
            kind=kind,
            advisor=advisor,
            nominated=nominated,
            topic=topic,
            language=shopper.locale,
            requested_at=requested,
            accepted_at=accepted,
            ended_at=ended,
            closed_at=ended + timedelta(minutes=rng.randint(1, 4)),
            product=product,
        )
        script = data.SCRIPTS[(topic, shopper.locale)]
        step = (ended - accepted) / (len(script) + 1)
        for seq, (who, text) in enumerate(script, start=1):
            at = accepted + step * seq
            if who == "product":
                name = product.name_ja if shopper.locale == "ja" else product.name_en
                message = PlannedMessage(
                    seq,
                    SenderKind.STAFF,
                    MessageKind.PRODUCT,
                    name,
                    {
                        "sku": product.sku,
                        "name": name,
                        "price_minor": product.price,
                        "currency": data.CURRENCY,
                        "image_url": product.image_url,
                    },
                    at,
                )
            else:
                sender = SenderKind.SHOPPER if who == "shopper" else SenderKind.STAFF
                message = PlannedMessage(seq, sender, MessageKind.TEXT, text, {}, at)
            consultation.messages.append(message)
        return consultation


def build_plan(anchor: date) -> Plan:
    planner = _Planner(anchor)
    return Plan(anchor=anchor, shoppers=[planner.shopper(i) for i in range(SHOPPER_COUNT)])
