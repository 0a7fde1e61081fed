"""Demo booking data: three consultation types, every advisor's weekly hours (in their own
time zone: Tokyo or London), a day off, and a few upcoming bookings — written once
(idempotent: fixed ids, skipped when present)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.booking.slots import zone
from livedesk.demo.plan import demo_id
from livedesk.kit.clock import utcnow
from livedesk.models import (
    AvailabilityException,
    Booking,
    BookingStatus,
    ConsultationType,
    ExceptionKind,
    Role,
    Shopper,
    Staff,
    WeeklyHours,
)

TYPES = (
    # key, ja, en, minutes, buffer after, skills, price (JPY), deposit, ja text, en text
    (
        "skin-check",
        "肌診断カウンセリング",
        "Skin check",
        30,
        10,
        ["skincare"],
        None,
        None,
        "肌の悩みをうかがい、合うスキンケアをご提案します（無料）。",
        "Tell us about your skin; we suggest a routine that suits it (free).",
    ),
    (
        "makeup-lesson",
        "メイクレッスン",
        "Make-up lesson",
        45,
        15,
        ["makeup"],
        3300,
        1000,
        "カメラ越しに一緒にメイクします。予約金1,000円。",
        "We do your make-up together over video. ¥1,000 deposit.",
    ),
    (
        "styling",
        "スタイリング相談",
        "Styling session",
        60,
        15,
        ["styling"],
        None,
        None,
        "サイズやコーディネートのご相談に。",
        "Sizing and outfit advice.",
    ),
)


def _hours() -> list[tuple[int, int, int]]:
    """Weekdays 10:00–18:00 local with lunch 13:00–14:00; Saturday mornings too."""
    week = [(day, 600, 780) for day in range(5)] + [(day, 840, 1080) for day in range(5)]
    return [*week, (5, 600, 780)]


async def seed_booking(session: AsyncSession) -> None:
    """Consultation types, advisors' hours and three bookings, if not there yet."""
    now = utcnow()
    for position, (key, ja, en, minutes, after, skills, price, deposit, text_ja, text_en) in enumerate(TYPES):
        type_id = demo_id("consultation_type", key)
        if await session.get(ConsultationType, type_id) is not None:
            continue
        session.add(
            ConsultationType(
                id=type_id,
                name=ja,
                name_en=en,
                description=text_ja,
                description_en=text_en,
                kind="video",
                duration_minutes=minutes,
                buffer_before_minutes=0,
                buffer_after_minutes=after,
                required_skills=skills,
                languages=[],
                min_notice_minutes=60,
                horizon_days=60,
                price_amount=price,
                deposit_amount=deposit,
                currency="JPY" if price is not None else None,
                active=True,
                position=position,
                created_at=now,
                updated_at=now,
            )
        )
    advisors = (
        await session.scalars(select(Staff).where(Staff.role == Role.ADVISOR).order_by(Staff.email))
    ).all()
    for index, advisor in enumerate(advisors):
        has_hours = await session.scalar(
            select(WeeklyHours.id).where(WeeklyHours.staff_id == advisor.id).limit(1)
        )
        if has_hours is not None:
            continue
        for weekday, start, end in _hours():
            session.add(
                WeeklyHours(
                    id=uuid.uuid4(), staff_id=advisor.id, weekday=weekday, start_minute=start, end_minute=end
                )
            )
        # One day off in the coming fortnight, different for each advisor.
        session.add(
            AvailabilityException(
                id=uuid.uuid4(),
                staff_id=advisor.id,
                day=(now + timedelta(days=5 + index)).astimezone(zone(advisor.timezone)).date(),
                kind=ExceptionKind.OFF,
            )
        )
    await session.flush()
    await _bookings(session, now)


async def _bookings(session: AsyncSession, now: datetime) -> None:
    sakura = await session.scalar(select(Staff).where(Staff.email == "sakura.tanaka@hanami.example"))
    shoppers = (
        await session.scalars(
            select(Shopper).where(Shopper.email.is_not(None)).order_by(Shopper.email).limit(3)
        )
    ).all()
    if sakura is None or not shoppers:
        return
    tz = zone(sakura.timezone)
    skin = demo_id("consultation_type", "skin-check")
    for i, shopper in enumerate(shoppers):
        booking_id = demo_id("booking", f"sakura-{i}")
        if await session.get(Booking, booking_id) is not None:
            continue
        # Two and three weekdays from now, at 11:00 and 15:00 Tokyo time.
        day = (now + timedelta(days=2 + i)).astimezone(tz).date()
        while day.weekday() >= 5:
            day += timedelta(days=1)
        start = datetime(day.year, day.month, day.day, 11 if i % 2 == 0 else 15, tzinfo=tz).astimezone(UTC)
        session.add(
            Booking(
                id=booking_id,
                consultation_type_id=skin,
                advisor_id=sakura.id,
                shopper_id=shopper.id,
                status=BookingStatus.CONFIRMED,
                starts_at=start,
                ends_at=start + timedelta(minutes=30),
                block_start=start,
                block_end=start + timedelta(minutes=40),
                nominated=True,
                shopper_timezone=shopper.timezone or "Asia/Tokyo",
                locale=shopper.locale or "ja",
                contact_name=shopper.display_name,
                contact_email=shopper.email or "",
                sequence=0,
                cancel_reason="",
                extra={"demo": True},
                created_at=now,
                updated_at=now,
            )
        )
