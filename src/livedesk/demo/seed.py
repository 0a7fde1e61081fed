"""Seed the demo brand, staff, shoppers and their history — idempotently.

Every row is found again by a stable natural key (brand slug, team name, staff e-mail, shopper
identity, shop order number) or by an id derived from one (``plan.demo_id``), so a second run
inserts nothing. A fact and its timeline event are written together or not at all, as the
timeline requires. The rows are written directly rather than through the customers service:
the demo describes a history that already happened, with its own times.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from livedesk.demo import data
from livedesk.demo.booking import seed_booking
from livedesk.demo.catalogue import seed_catalogue
from livedesk.demo.history import seed_history
from livedesk.demo.plan import (
    Plan,
    PlannedConsultation,
    PlannedOrder,
    PlannedShopper,
    build_plan,
    demo_anchor,
    demo_id,
)
from livedesk.demo.surveys import seed_surveys
from livedesk.kit.clock import utcnow
from livedesk.kit.db import Database
from livedesk.models import (
    Brand,
    Consultation,
    ConsultationStatus,
    IdentityKind,
    Message,
    OrderChannel,
    Role,
    SenderKind,
    ShopOrder,
    ShopOrderLine,
    Shopper,
    ShopperIdentity,
    Staff,
    Team,
    TimelineEvent,
    TimelineKind,
)
from livedesk.staff.passwords import hash_password

# Printed by `livedesk demo` and shown nowhere else; demo accounts only.
DEMO_PASSWORD = "hanami-demo-2468"  # noqa: S105

_CHUNK = 500
T = TypeVar("T")


async def seed_demo(db: Database) -> list[tuple[str, str, str]]:
    """Write the demo content that is not there yet; returns (role, e-mail, display name) of
    every demo login."""
    plan = build_plan(demo_anchor(utcnow()))
    async with db.transaction() as session:
        await _Writer(session, plan).run()
    return [(s.role.value, s.email, s.display_name) for s in data.STAFF]


def _chunks(values: Sequence[T]) -> Iterable[Sequence[T]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def yen(amount: int) -> str:
    return f"¥{amount:,}"


class _Writer:
    def __init__(self, session: AsyncSession, plan: Plan) -> None:
        self.session = session
        self.plan = plan
        self.team_ids: dict[str, uuid.UUID] = {}
        self.staff_ids: dict[str, uuid.UUID] = {}
        # Rows that reference a row added in the same stage wait for that stage's flush: the
        # unit of work orders inserts by relationships, and these models declare few.
        self.dependents: list[Any] = []

    async def run(self) -> None:
        await self.brand()
        await self.teams()
        await self.staff()
        shopper_ids = await self.shoppers()
        await self.orders(shopper_ids)
        await self.consultations(shopper_ids)
        await seed_catalogue(self.session)
        await seed_surveys(self.session)
        await seed_booking(self.session)
        await seed_history(self.session, self.plan)

    async def _flush_stage(self) -> None:
        await self.session.flush()
        self.session.add_all(self.dependents)
        self.dependents = []
        await self.session.flush()

    async def _existing(self, column: InstrumentedAttribute[Any], values: Sequence[Any]) -> set[Any]:
        found: set[Any] = set()
        for chunk in _chunks(values):
            found.update((await self.session.scalars(select(column).where(column.in_(chunk)))).all())
        return found

    def _event(
        self,
        key: str,
        shopper_id: uuid.UUID,
        kind: TimelineKind,
        at: datetime,
        summary: str,
        event_data: dict[str, Any],
        *,
        ref_id: uuid.UUID | None = None,
        consultation_id: uuid.UUID | None = None,
        actor_staff_id: uuid.UUID | None = None,
    ) -> None:
        self.dependents.append(
            TimelineEvent(
                id=demo_id("timeline", key),
                shopper_id=shopper_id,
                occurred_at=at,
                kind=kind,
                summary=summary[:500],
                data=event_data,
                ref_id=str(ref_id) if ref_id else None,
                consultation_id=consultation_id,
                actor_staff_id=actor_staff_id,
            )
        )

    async def brand(self) -> None:
        if await self.session.scalar(select(Brand.id).where(Brand.slug == data.BRAND_SLUG)) is None:
            self.session.add(
                Brand(
                    id=demo_id("brand", data.BRAND_SLUG),
                    slug=data.BRAND_SLUG,
                    name=data.BRAND_NAME,
                    currency=data.CURRENCY,
                    timezone="Asia/Tokyo",
                    default_locale="ja",
                )
            )

    async def teams(self) -> None:
        names = [t.name for t in data.TEAMS]
        rows = await self.session.execute(select(Team.name, Team.id).where(Team.name.in_(names)))
        self.team_ids = {name: team_id for name, team_id in rows}
        for team in data.TEAMS:
            if team.name not in self.team_ids:
                team_id = demo_id("team", team.name)
                self.session.add(Team(id=team_id, name=team.name, description=team.description))
                self.team_ids[team.name] = team_id
        await self.session.flush()

    async def staff(self) -> None:
        emails = [s.email for s in data.STAFF]
        rows = await self.session.execute(select(Staff.email, Staff.id).where(Staff.email.in_(emails)))
        by_email = {email: staff_id for email, staff_id in rows}
        password_hash: str | None = None
        for profile in data.STAFF:
            if profile.email in by_email:
                # An existing account (perhaps with a changed password) is left alone.
                self.staff_ids[profile.key] = by_email[profile.email]
                continue
            # argon2 is deliberately slow: hash once, and only when an account is missing.
            password_hash = password_hash or hash_password(DEMO_PASSWORD)
            staff_id = demo_id("staff", profile.email)
            self.session.add(
                Staff(
                    id=staff_id,
                    email=profile.email,
                    password_hash=password_hash,
                    role=profile.role,
                    team_id=self.team_ids[profile.team] if profile.team else None,
                    display_name=profile.display_name,
                    bio=profile.bio,
                    photo_url=profile.photo_url,
                    skills=list(profile.skills),
                    languages=list(profile.languages),
                    timezone=profile.timezone,
                    nominable=profile.role is Role.ADVISOR,
                    extra={"bio_en": profile.bio_en, "display_name_en": profile.display_name_en},
                )
            )
            self.staff_ids[profile.key] = staff_id
        await self.session.flush()

    async def shoppers(self) -> dict[str, uuid.UUID]:
        """Returns the profile each planned shopper's history belongs to, by shop customer id.
        A person the installation already knows (same id, or any same identity) keeps their
        profile and only gains what is missing."""
        planned = self.plan.shoppers
        existing = await self._existing(Shopper.id, [s.id for s in planned])
        values = [value for s in planned for _kind, value in s.identities]
        owners: dict[tuple[IdentityKind, str], uuid.UUID] = {}
        for chunk in _chunks(values):
            rows = await self.session.execute(
                select(ShopperIdentity.kind, ShopperIdentity.value, ShopperIdentity.shopper_id).where(
                    ShopperIdentity.value.in_(chunk)
                )
            )
            owners.update({(kind, value): owner for kind, value, owner in rows})

        targets: dict[str, uuid.UUID] = {}
        for shopper in planned:
            known = [owners[i] for i in shopper.identities if i in owners]
            if shopper.id in existing:
                target = shopper.id
            elif known:
                target = known[0]
            else:
                target = shopper.id
                self._add_shopper(shopper)
            targets[shopper.shop_customer_id] = target
        await self._flush_stage()
        for shopper in planned:
            for kind, value in shopper.identities:
                if (kind, value) not in owners:
                    self.session.add(
                        ShopperIdentity(
                            id=demo_id("identity", f"{kind.value}:{value}"),
                            shopper_id=targets[shopper.shop_customer_id],
                            kind=kind,
                            value=value,
                            created_at=shopper.created_at,
                        )
                    )
        await self.session.flush()
        return targets

    def _add_shopper(self, shopper: PlannedShopper) -> None:
        self.session.add(
            Shopper(
                id=shopper.id,
                display_name=shopper.display_name,
                email=shopper.email,
                phone=shopper.phone,
                locale=shopper.locale,
                timezone=shopper.timezone,
                attributes=shopper.attributes,
                created_at=shopper.created_at,
                updated_at=shopper.created_at,
            )
        )
        self._event(
            f"profile:{shopper.shop_customer_id}",
            shopper.id,
            TimelineKind.PROFILE_CREATED,
            shopper.created_at,
            f"Profile created from the web shop (customer {shopper.shop_customer_id})",
            {"source": "shop", "shop_customer_id": shopper.shop_customer_id, "name": shopper.display_name},
        )

    async def orders(self, targets: dict[str, uuid.UUID]) -> None:
        planned = [(s, o) for s in self.plan.shoppers for o in s.orders]
        existing = await self._existing(ShopOrder.external_id, [o.external_id for _s, o in planned])
        for shopper, order in planned:
            if order.external_id not in existing:
                self._add_order(targets[shopper.shop_customer_id], order)
        await self._flush_stage()

    def _add_order(self, shopper_id: uuid.UUID, order: PlannedOrder) -> None:
        self.session.add(
            ShopOrder(
                id=order.id,
                shopper_id=shopper_id,
                external_id=order.external_id,
                channel=order.channel,
                ordered_at=order.ordered_at,
                currency=data.CURRENCY,
                total_minor=order.total,
                store_name=order.store_name,
                created_at=order.ordered_at,
                updated_at=order.ordered_at,
            )
        )
        for position, line in enumerate(order.lines, start=1):
            self.dependents.append(
                ShopOrderLine(
                    id=demo_id("order-line", f"{order.external_id}:{position}"),
                    order_id=order.id,
                    position=position,
                    sku=line.product.sku,
                    name=line.product.name_en,
                    quantity=line.quantity,
                    unit_price_minor=line.product.price,
                )
            )
        items = sum(line.quantity for line in order.lines)
        where = "Web shop order" if order.channel is OrderChannel.WEB else f"Purchase at {order.store_name}"
        self._event(
            f"order:{order.external_id}",
            shopper_id,
            TimelineKind.SHOP_ORDER,
            order.ordered_at,
            f"{where} {order.external_id}: {items} item{'s' if items != 1 else ''}, {yen(order.total)}",
            {
                "order_id": str(order.id),
                "external_id": order.external_id,
                "channel": order.channel.value,
                "store_name": order.store_name,
                "total_minor": order.total,
                "currency": data.CURRENCY,
                "items": [
                    {"sku": line.product.sku, "name": line.product.name_en, "quantity": line.quantity}
                    for line in order.lines
                ],
            },
            ref_id=order.id,
        )

    async def consultations(self, targets: dict[str, uuid.UUID]) -> None:
        planned = [(s, c) for s in self.plan.shoppers for c in s.consultations]
        existing = await self._existing(Consultation.id, [c.id for _s, c in planned])
        for shopper, consultation in planned:
            if consultation.id not in existing:
                self._add_consultation(targets[shopper.shop_customer_id], consultation)
        await self._flush_stage()

    def _add_consultation(self, shopper_id: uuid.UUID, c: PlannedConsultation) -> None:
        advisor_id = self.staff_ids[c.advisor.key]
        self.session.add(
            Consultation(
                id=c.id,
                shopper_id=shopper_id,
                kind=c.kind,
                status=ConsultationStatus.CLOSED,
                advisor_id=advisor_id,
                nominated_advisor_id=advisor_id if c.nominated else None,
                skills=[c.topic],
                language=c.language,
                requested_at=c.requested_at,
                queued_at=c.requested_at,
                accepted_at=c.accepted_at,
                ended_at=c.ended_at,
                closed_at=c.closed_at,
                last_seq=len(c.messages),
                # The demo's history shows consultations, not each of their messages.
                timeline_seq=len(c.messages),
                notes=f"{data.NOTES[c.topic]} Recommended {c.product.sku}.",
                extra={"topic": c.topic, "recommended_sku": c.product.sku},
                created_at=c.requested_at,
                updated_at=c.closed_at,
            )
        )
        for message in c.messages:
            self.dependents.append(
                Message(
                    id=demo_id("message", f"{c.key}:{message.seq}"),
                    consultation_id=c.id,
                    seq=message.seq,
                    client_id=f"demo-{c.key}-{message.seq}",
                    sender_kind=message.sender,
                    sender_staff_id=advisor_id if message.sender is SenderKind.STAFF else None,
                    kind=message.kind,
                    body=message.body,
                    data=message.data,
                    created_at=message.at,
                )
            )
        minutes = round(c.duration_seconds / 60)
        self._event(
            f"consultation:{c.key}",
            shopper_id,
            TimelineKind.CONSULTATION,
            c.requested_at,
            f"{c.kind.value.capitalize()} consultation with {c.advisor.display_name_en} "
            f"({c.topic}), {minutes} min",
            {
                "kind": c.kind.value,
                "status": ConsultationStatus.CLOSED.value,
                "topic": c.topic,
                "advisor_id": str(advisor_id),
                "advisor_name": c.advisor.display_name,
                "nominated": c.nominated,
                "duration_seconds": c.duration_seconds,
                "message_count": len(c.messages),
                "recommended_sku": c.product.sku,
            },
            ref_id=c.id,
            consultation_id=c.id,
            actor_staff_id=advisor_id,
        )
