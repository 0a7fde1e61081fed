"""Sending the post-call survey mail of a booked consultation: claimed in the database before
it goes, marked sent after, so it leaves exactly once even with several processes; a failed
delivery is retried by a slow sweep."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from aiohttp import web

from livedesk.kit.background import BACKGROUND
from livedesk.kit.context import DB, SETTINGS
from livedesk.kit.logging import get_logger
from livedesk.kit.mail import MAILER, Mail, MailError
from livedesk.kit.periodic import Periodic
from livedesk.models import Consultation, Shopper, Staff
from livedesk.surveys import satisfaction

log = get_logger("livedesk.surveys.mail")

LINK_TOKENS = web.AppKey("satisfaction_link_tokens", satisfaction.LinkTokens)
RETRY_EVERY_SECONDS = 60.0
MAX_ATTEMPTS = 5

_TEXT = {
    "ja": (
        "ご相談ありがとうございました",
        "{name}様\n\n本日は{advisor}とのご相談をご利用いただき、ありがとうございました。\n"
        "よろしければ、下記のリンクから短いアンケート(1分ほど)にお答えください。\n\n{link}\n",
    ),
    "en": (
        "Thank you for your consultation",
        "Dear {name},\n\nThank you for your consultation with {advisor}.\n"
        "Would you tell us how it went? The short survey takes about a minute:\n\n{link}\n",
    ),
}


def survey_link(app: web.Application, consultation_id: uuid.UUID) -> str:
    # The token rides in the fragment: it never reaches server logs or a Referer header.
    token = app[LINK_TOKENS].issue(consultation_id)
    return f"{app[SETTINGS].effective_public_url}/surveys/csat#t={token}"


async def send_invitation(app: web.Application, consultation_id: uuid.UUID) -> bool:
    """Send the invitation of one consultation if it is still unsent; True when it went."""
    mailer = app[MAILER]
    if not mailer.enabled:
        return False
    async with app[DB].transaction() as session:
        invitation = await satisfaction.claim(session, consultation_id)
        if invitation is None:
            return False
        c = await session.get(Consultation, consultation_id)
        advisor = await session.get(Staff, c.advisor_id) if c and c.advisor_id else None
        shopper = await session.get(Shopper, c.shopper_id) if c else None
        to, locale = invitation.email, invitation.locale
    lang = "en" if locale.startswith("en") else "ja"
    subject, body = _TEXT[lang]
    name = (shopper.display_name if shopper else "") or ("お客" if lang == "ja" else "customer")
    text = body.format(
        name=name,
        advisor=(advisor.display_name if advisor else ("担当者" if lang == "ja" else "our advisor")),
        link=survey_link(app, consultation_id),
    )
    error: str | None = None
    try:
        await mailer.send(Mail(to=to, subject=subject, text=text))
    except MailError as exc:
        error = str(exc)
        log.warning("satisfaction mail failed", consultation_id=str(consultation_id), error=error)
    async with app[DB].transaction() as session:
        await satisfaction.mark(session, consultation_id, error)
    return error is None


def send_soon(app: web.Application, consultation_id: uuid.UUID) -> None:
    """Send the invitation in the background, after the close has committed."""

    async def send() -> None:
        await send_invitation(app, consultation_id)

    app[BACKGROUND].spawn(send(), name="satisfaction-mail")


async def retry_unsent(app: web.Application) -> int:
    async with app[DB].read() as session:
        waiting = await satisfaction.unsent(session, max_attempts=MAX_ATTEMPTS)
    sent = 0
    for consultation_id in waiting:
        sent += await send_invitation(app, consultation_id)
    return sent


async def surveys_ctx(app: web.Application) -> AsyncIterator[None]:
    app[LINK_TOKENS] = satisfaction.LinkTokens(app[SETTINGS].secret_key.get_secret_value())

    async def sweep() -> None:
        await retry_unsent(app)

    # A failed sweep is logged; the next one tries again.
    job = Periodic("livedesk-satisfaction-mail", sweep, every=RETRY_EVERY_SECONDS)
    job.start()
    yield
    await job.stop()
