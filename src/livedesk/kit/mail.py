"""Outgoing mail through aiosmtplib: one small adapter every capability sends through.

Callers build a ``Mail`` (text, optional HTML, attachments such as an ICS file) and hand it to
``Mailer.send``. Delivery failures raise ``MailError`` so the caller's job can retry later; a
mailer with no SMTP host configured reports ``enabled = False`` and refuses to send, so a job
never marks a mail as sent when nothing left the building.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib
from aiohttp import web

from livedesk.settings import Settings


class MailError(Exception):
    """The mail could not be handed to the SMTP server (retry later)."""


@dataclass(frozen=True)
class MailAttachment:
    filename: str
    content: bytes
    # e.g. "text/calendar; method=REQUEST"; parameters after ";" are kept.
    content_type: str


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str
    html: str | None = None
    attachments: Sequence[MailAttachment] = field(default_factory=tuple)
    reply_to: str | None = None

    def to_message(self, sender: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = sender
        message["To"] = self.to
        message["Subject"] = self.subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain="livedesk")
        if self.reply_to:
            message["Reply-To"] = self.reply_to
        message.set_content(self.text)
        if self.html is not None:
            message.add_alternative(self.html, subtype="html")
        for attachment in self.attachments:
            main, _, rest = attachment.content_type.partition(";")
            maintype, _, subtype = main.strip().partition("/")
            params = {}
            for part in rest.split(";"):
                key, sep, value = part.strip().partition("=")
                if sep:
                    params[key] = value
            message.add_attachment(
                attachment.content,
                maintype=maintype,
                subtype=subtype,
                filename=attachment.filename,
                params=params,
            )
        return message


class Mailer:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @property
    def enabled(self) -> bool:
        return bool(self._settings.smtp_host)

    async def send(self, mail: Mail) -> None:
        settings = self._settings
        if not self.enabled:
            raise MailError("no SMTP server is configured (LIVEDESK_SMTP_HOST)")
        password = settings.smtp_password.get_secret_value()
        try:
            await aiosmtplib.send(
                mail.to_message(settings.mail_from),
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username or None,
                password=password or None,
                start_tls=settings.smtp_starttls,
                timeout=settings.smtp_timeout_seconds,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise MailError(f"SMTP delivery to {mail.to} failed: {exc}") from exc


MAILER = web.AppKey("mailer", Mailer)
