"""Booking mails: what is queued when (the outbox ``booking_mails``), what each mail says
(Japanese or English, with an ICS file), and sending them exactly once.

Mails are queued in the same transaction as the change they announce, and sent by the
booking jobs of every process. A process claims one row with a conditional UPDATE
(``claimed_until`` empty or past) before it sends; only the process whose UPDATE changed the
row sends it, so two processes never send the same mail. A failed delivery releases the
claim with a back-off and is tried again; a process that dies mid-send leaves a claim that
expires after ``CLAIM_SECONDS`` (then, and only then, the mail may go out twice).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.utils import parseaddr
from html import escape

from aiohttp import web
from icalendar import Calendar, Event, vCalAddress
from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.booking.slots import zone
from livedesk.booking.tokens import BookingTokens
from livedesk.kit.clock import utcnow
from livedesk.kit.db import Database
from livedesk.kit.logging import get_logger
from livedesk.kit.mail import Mail, MailAttachment, Mailer, MailError
from livedesk.models import (
    Booking,
    BookingMail,
    BookingMailKind,
    BookingStatus,
    ConsultationType,
    EmailVerification,
    Staff,
)
from livedesk.settings import Settings

log = get_logger("livedesk.booking.mails")

CLAIM_SECONDS = 300
MAX_ATTEMPTS = 8
__all__ = [
    "MAIL_COMPOSERS",
    "BookingMailKind",
    "ComposeMail",
    "queue_for_change",
    "queue_receipt",
    "send_due",
]

# Mails another capability writes but this queue sends (a payment's receipt, by payments):
# the composer of each such kind is registered by the composition root, so booking imports
# no capability that builds on it. None when the mail is no longer to be sent.
ComposeMail = Callable[[AsyncSession, uuid.UUID, Booking], Awaitable[Mail | None]]
MAIL_COMPOSERS = web.AppKey("booking_mail_composers", Mapping[BookingMailKind, ComposeMail])


async def queue_for_change(
    session: AsyncSession, settings: Settings, booking: Booking, kind: BookingMailKind, now: datetime
) -> None:
    """Queue the mail announcing a change (confirmation, moved, cancelled) and re-plan the
    reminders: reminders of an earlier time that have not gone out are dropped; the new
    ones are queued unless their moment has already passed."""
    await session.execute(
        delete(BookingMail).where(
            BookingMail.booking_id == booking.id,
            BookingMail.kind == BookingMailKind.REMINDER,
            BookingMail.sent_at.is_(None),
        )
    )
    session.add(
        BookingMail(id=uuid.uuid4(), booking_id=booking.id, kind=kind, sequence=booking.sequence, due_at=now)
    )
    if booking.status != BookingStatus.CONFIRMED:
        return
    for lead in sorted(set(settings.booking_reminder_minutes)):
        due = booking.starts_at - timedelta(minutes=lead)
        if due > now:
            session.add(
                BookingMail(
                    id=uuid.uuid4(),
                    booking_id=booking.id,
                    kind=BookingMailKind.REMINDER,
                    sequence=booking.sequence,
                    lead_minutes=lead,
                    due_at=due,
                )
            )


async def queue_receipt(
    session: AsyncSession, consultation_id: uuid.UUID, mail_id: uuid.UUID, sequence: int
) -> bool:
    """Queue the receipt of a payment made in a booked consultation, in the payment's own
    transaction (so it goes out once, like every booking mail). False when the consultation
    was not booked or its booking has no address to mail."""
    booking = await session.scalar(select(Booking).where(Booking.consultation_id == consultation_id))
    if booking is None or not booking.contact_email:
        return False
    session.add(
        BookingMail(
            id=mail_id,
            booking_id=booking.id,
            kind=BookingMailKind.RECEIPT,
            sequence=sequence,
            due_at=utcnow(),
        )
    )
    return True


def confirm_link(settings: Settings, verify_token: str) -> str:
    return f"{settings.effective_public_url}/booking/?confirm={verify_token}"


def links(settings: Settings, token: str) -> dict[str, str]:
    base = settings.effective_public_url
    return {
        "manage": f"{base}/booking/?manage={token}",
        "join": f"{base}/booking/?join={token}",
        "calendar": f"{base}/api/v1/bookings/{token}/calendar.ics",
    }


# ---------------------------------------------------------------- content


@dataclass(frozen=True)
class MailFacts:
    booking: Booking
    ctype: ConsultationType
    advisor: Staff


_SUBJECTS = {
    "ja": {
        BookingMailKind.VERIFY: "ご予約の確認をお願いします：{type}（{when}）",
        BookingMailKind.CONFIRMATION: "ご予約を承りました：{type}（{when}）",
        BookingMailKind.REMINDER: "ご予約のお知らせ：{type}（{when}）",
        BookingMailKind.RESCHEDULED: "ご予約の日時を変更しました：{type}（{when}）",
        BookingMailKind.CANCELLED: "ご予約をキャンセルしました：{type}（{when}）",
    },
    "en": {
        BookingMailKind.VERIFY: "Please confirm your booking: {type}, {when}",
        BookingMailKind.CONFIRMATION: "Booking confirmed: {type}, {when}",
        BookingMailKind.REMINDER: "Reminder: {type}, {when}",
        BookingMailKind.RESCHEDULED: "Booking moved: {type}, {when}",
        BookingMailKind.CANCELLED: "Booking cancelled: {type}, {when}",
    },
}
_INTRO = {
    "ja": {
        BookingMailKind.VERIFY: (
            "{name}様、このメールアドレスでオンライン相談のご予約がありました。"
            "{minutes}分以内に下のリンクを開いてご予約を確定してください。"
            "お心当たりがない場合はこのメールを破棄してください。ご予約は自動的に取り消されます。"
        ),
        BookingMailKind.CONFIRMATION: "{name}様、オンライン相談のご予約ありがとうございます。",
        BookingMailKind.REMINDER: "{name}様、ご予約のお時間が近づいています。",
        BookingMailKind.RESCHEDULED: "{name}様、ご予約の日時を変更しました。新しい日時は以下のとおりです。",
        BookingMailKind.CANCELLED: "{name}様、以下のご予約をキャンセルしました。",
    },
    "en": {
        BookingMailKind.VERIFY: (
            "Dear {name}, an online consultation was booked with this e-mail address. Open the link "
            "below within {minutes} minutes to confirm it. If this was not you, ignore this mail: "
            "the booking is released by itself and nothing more is sent."
        ),
        BookingMailKind.CONFIRMATION: "Dear {name}, thank you for booking an online consultation.",
        BookingMailKind.REMINDER: "Dear {name}, your consultation is coming up.",
        BookingMailKind.RESCHEDULED: "Dear {name}, your booking has been moved. The new time is below.",
        BookingMailKind.CANCELLED: "Dear {name}, the booking below has been cancelled.",
    },
}
_LABELS = {
    "ja": {
        "what": "内容",
        "with": "担当",
        "when": "日時",
        "join": "当日はこちらから参加してください",
        "manage": "日時の変更・キャンセル",
        "book": "改めてご予約いただけます",
        "guest": "お客",
        "confirm": "ご予約を確定する",
    },
    "en": {
        "what": "Consultation",
        "with": "Advisor",
        "when": "When",
        "join": "Join at the booked time here",
        "manage": "Reschedule or cancel",
        "book": "You are welcome to book again",
        "guest": "customer",
        "confirm": "Confirm the booking",
    },
}


def local_when(booking: Booking, lang: str) -> str:
    tz = zone(booking.shopper_timezone)
    start = booking.starts_at.astimezone(tz)
    end = booking.ends_at.astimezone(tz)
    if lang == "ja":
        weekday = "月火水木金土日"[start.weekday()]
        return f"{start:%Y年%m月%d日}（{weekday}）{start:%H:%M}〜{end:%H:%M}（{booking.shopper_timezone}）"
    return f"{start:%a %d %b %Y, %H:%M}–{end:%H:%M} ({booking.shopper_timezone}, {start:%Z})"


def ics(facts: MailFacts, settings: Settings, link: dict[str, str], *, cancel: bool) -> bytes:
    """An iTIP calendar object: stable UID per booking, SEQUENCE from the booking, times in
    the shopper's zone with its VTIMEZONE, METHOD:CANCEL when cancelled."""
    booking, ctype, advisor = facts.booking, facts.ctype, facts.advisor
    lang = booking.locale if booking.locale in _LABELS else "en"
    tz = zone(booking.shopper_timezone)
    calendar = Calendar()
    calendar.add("prodid", "-//livedesk//booking//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if cancel else "REQUEST")
    event = Event()
    event.add("uid", f"booking-{booking.id}@livedesk")
    event.add("sequence", booking.sequence)
    event.add("dtstamp", utcnow())
    event.add("dtstart", booking.starts_at.astimezone(tz))
    event.add("dtend", booking.ends_at.astimezone(tz))
    name = ctype.name_en if lang == "en" and ctype.name_en else ctype.name
    event.add("summary", name)
    event.add(
        "description", f"{_LABELS[lang]['join']}: {link['join']}\n{_LABELS[lang]['manage']}: {link['manage']}"
    )
    event.add("url", link["join"])
    event.add("location", link["join"])
    event.add("status", "CANCELLED" if cancel else "CONFIRMED")
    # The advisor (or the desk's mailbox, LIVEDESK_BOOKING_REPLY_TO) organises: a reply a
    # calendar sends anyway reaches a person, never the no-reply sender.
    organizer = vCalAddress("mailto:" + organizer_address(settings, advisor))
    organizer.params["cn"] = advisor_name(advisor, lang)
    event.add("organizer", organizer)
    attendee = vCalAddress("mailto:" + booking.contact_email)
    attendee.params["cn"] = booking.contact_name or booking.contact_email
    attendee.params["role"] = "REQ-PARTICIPANT"
    # No RSVP is asked: the shopper booked (and confirmed) the time, so the answer is known.
    # Changes go through the manage link, which a calendar's Accept/Decline cannot reach.
    attendee.params["partstat"] = "ACCEPTED"
    attendee.params["rsvp"] = "FALSE"
    event.add("attendee", attendee)
    calendar.add_component(event)
    # The zone's rules around the booking only (a year before to a year after): the default
    # span (1970–2038) lists every transition as RDATEs and starts with a 1970 rule, which
    # calendar readers that do not apply RDATEs take as the zone's offset (vobject put a
    # December time in London at +01:00). The short form is read alike by every reader.
    start, end = booking.starts_at.astimezone(tz), booking.ends_at.astimezone(tz)
    calendar.add_missing_timezones(first_date=date(start.year - 1, 1, 1), last_date=date(end.year + 2, 1, 1))
    return bytes(calendar.to_ical())


def organizer_address(settings: Settings, advisor: Staff) -> str:
    """Where replies about a booking go: the desk's mailbox when one is set, else the advisor."""
    return parseaddr(settings.booking_reply_to)[1] if settings.booking_reply_to else advisor.email


def advisor_name(advisor: Staff, lang: str) -> str:
    if lang == "en":
        return str(advisor.extra.get("display_name_en", "")) or advisor.display_name
    return advisor.display_name


def _html(lines: list[str | tuple[str, str]], lang: str) -> str:
    """The HTML alternative of the text: every value escaped; a (label, url) pair becomes a
    link. Plain markup, inline styles only (mail clients drop style sheets)."""
    body: list[str] = []
    for line in lines:
        if isinstance(line, tuple):
            label, url = line
            body.append(f'<p><a href="{escape(url, quote=True)}">{escape(label)}</a></p>')
        elif line:
            body.append(f"<p>{escape(line)}</p>")
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8"></head>\n'
        '<body style="font-family: sans-serif; line-height: 1.6">\n' + "\n".join(body) + "\n</body></html>\n"
    )


def _text(lines: list[str | tuple[str, str]]) -> str:
    out: list[str] = []
    for line in lines:
        out += [f"{line[0]}:", line[1]] if isinstance(line, tuple) else [line]
    return "\n".join(out) + "\n"


def compose(
    facts: MailFacts,
    kind: BookingMailKind,
    settings: Settings,
    tokens: BookingTokens,
    *,
    verification_id: uuid.UUID | None = None,
) -> Mail:
    booking, ctype, advisor = facts.booking, facts.ctype, facts.advisor
    lang = booking.locale if booking.locale in _LABELS else "en"
    labels = _LABELS[lang]
    link = links(settings, tokens.issue(booking.id, booking.link_nonce))
    when = local_when(booking, lang)
    type_name = ctype.name_en if lang == "en" and ctype.name_en else ctype.name
    name = booking.contact_name or labels["guest"]
    # One list for both bodies: a line of text, or (label, url) — a link in the HTML.
    lines: list[str | tuple[str, str]] = [
        _INTRO[lang][kind].format(name=name, minutes=settings.booking_pending_minutes),
        "",
        f"{labels['what']}: {type_name}",
        f"{labels['with']}: {advisor_name(advisor, lang)}",
        f"{labels['when']}: {when}",
        "",
    ]
    # Names and times come from data: no run of spaces (a type name typed with two) may
    # reach a subject, where clients show it as is.
    subject = re.sub(r" {2,}", " ", _SUBJECTS[lang][kind].format(type=type_name, when=when)).strip()
    reply_to = organizer_address(settings, advisor)
    if kind == BookingMailKind.VERIFY:
        # No calendar file and no join or manage links until the address is proven.
        assert verification_id is not None
        lines.append((labels["confirm"], confirm_link(settings, tokens.verification.issue(verification_id))))
        return Mail(
            to=booking.contact_email,
            subject=subject,
            text=_text(lines),
            html=_html(lines, lang),
            reply_to=reply_to,
        )
    if kind == BookingMailKind.CANCELLED:
        lines.append(labels["book"])
    else:
        lines += [(labels["join"], link["join"]), "", (labels["manage"], link["manage"])]
    cancel = kind == BookingMailKind.CANCELLED
    method = "CANCEL" if cancel else "REQUEST"
    return Mail(
        to=booking.contact_email,
        subject=subject,
        text=_text(lines),
        html=_html(lines, lang),
        reply_to=reply_to,
        attachments=[
            MailAttachment(
                "cancel.ics" if cancel else "invite.ics",
                ics(facts, settings, link, cancel=cancel),
                # SUMMARY and CN are often Japanese: say how the bytes are to be read.
                f"text/calendar; method={method}; charset=UTF-8",
            )
        ],
    )


# ---------------------------------------------------------------- sending


async def _claim(db: Database, mail_id: uuid.UUID, now: datetime) -> bool:
    async with db.transaction() as session:
        result = await session.execute(
            update(BookingMail)
            .where(
                BookingMail.id == mail_id,
                BookingMail.sent_at.is_(None),
                or_(BookingMail.claimed_until.is_(None), BookingMail.claimed_until < now),
            )
            .values(claimed_until=now + timedelta(seconds=CLAIM_SECONDS), attempts=BookingMail.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)


async def _finish(db: Database, mail_id: uuid.UUID, *, error: str | None, attempts: int) -> None:
    now = utcnow()
    values: dict[str, object]
    if error is None:
        values = {"sent_at": now, "claimed_until": None, "last_error": ""}
    elif attempts >= MAX_ATTEMPTS:
        # Give up; kept with its error for the record.
        values = {"sent_at": now, "last_error": f"gave up: {error}"[:500]}
    else:
        values = {
            "claimed_until": now + timedelta(seconds=min(3600, 15 * 2**attempts)),
            "last_error": error[:500],
        }
    async with db.transaction() as session:
        await session.execute(
            update(BookingMail)
            .where(BookingMail.id == mail_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )


async def _facts(session: AsyncSession, booking_id: uuid.UUID) -> MailFacts | None:
    booking = await session.get(Booking, booking_id)
    if booking is None:
        return None
    ctype = await session.get(ConsultationType, booking.consultation_type_id)
    advisor = await session.get(Staff, booking.advisor_id)
    if ctype is None or advisor is None:
        return None
    return MailFacts(booking, ctype, advisor)


def _stale(row: BookingMail, booking: Booking, now: datetime) -> bool:
    """A mail that no longer says the truth: a reminder of an older time or of a booking
    that is no longer on, or one whose moment has passed."""
    if row.kind == BookingMailKind.VERIFY:
        return booking.status != BookingStatus.PENDING or (
            booking.pending_until is not None and booking.pending_until <= now
        )
    if row.kind == BookingMailKind.REMINDER:
        return (
            booking.status != BookingStatus.CONFIRMED
            or row.sequence != booking.sequence
            or booking.starts_at <= now
        )
    return False


async def send_due(
    db: Database,
    mailer: Mailer,
    settings: Settings,
    tokens: BookingTokens,
    limit: int = 50,
    *,
    composers: Mapping[BookingMailKind, ComposeMail] | None = None,
) -> int:
    """Send the mails that are due and not claimed by another process; a kind in
    ``composers`` is written by its composer (``MAIL_COMPOSERS``). Returns how many this call
    sent."""
    if not mailer.enabled:
        return 0
    now = utcnow()
    async with db.read() as session:
        due = (
            await session.scalars(
                select(BookingMail.id)
                .where(
                    BookingMail.sent_at.is_(None),
                    BookingMail.due_at <= now,
                    or_(BookingMail.claimed_until.is_(None), BookingMail.claimed_until < now),
                )
                .order_by(BookingMail.due_at)
                .limit(limit)
            )
        ).all()
    sent = 0
    for mail_id in due:
        if not await _claim(db, mail_id, now):
            continue  # another process has it
        async with db.read() as session:
            row = await session.get(BookingMail, mail_id)
            assert row is not None
            facts = await _facts(session, row.booking_id)
            attempts = row.attempts
            stale = facts is None or _stale(row, facts.booking, utcnow())
            verification_id = None
            if row.kind == BookingMailKind.VERIFY and not stale:
                verification_id = await session.scalar(
                    select(EmailVerification.id)
                    .where(
                        EmailVerification.booking_id == row.booking_id, EmailVerification.used_at.is_(None)
                    )
                    .order_by(EmailVerification.created_at.desc())
                    .limit(1)
                )
                stale = verification_id is None
            if facts is None or stale:
                mail = None
            elif composers and row.kind in composers:
                mail = await composers[row.kind](session, row.id, facts.booking)
            else:
                mail = compose(facts, row.kind, settings, tokens, verification_id=verification_id)
        if mail is None:
            await _finish(db, mail_id, error=None, attempts=attempts)
            continue
        try:
            await mailer.send(mail)
        except MailError as exc:
            log.warning("booking mail not delivered", mail_id=str(mail_id), error=str(exc))
            await _finish(db, mail_id, error=str(exc), attempts=attempts)
            continue
        await _finish(db, mail_id, error=None, attempts=attempts)
        sent += 1
    return sent
