"""Outgoing mail through aiosmtplib: one small adapter every capability sends through.

Callers build a ``Mail`` (text, optional HTML, attachments such as an ICS file) and hand it to
``Mailer.send``. Delivery failures raise ``MailError`` so the caller's job can retry later; a
mailer with no SMTP host configured reports ``enabled = False`` and refuses to send, so a job
never marks a mail as sent when nothing left the building.

The one exception is the demo outbox (``LIVEDESK_MAIL_OUTBOX``, which ``livedesk demo`` turns
on when no SMTP host is set): mails are then kept as ``.eml`` files in ``<data dir>/outbox/``
(the newest ``OUTBOX_KEEP``) and listed at ``/demo/mail``, so a demo's shopper can still open
the link a mail carries. It is for demos only: whoever reaches that page reads every mail.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import formatdate, make_msgid, parseaddr, parsedate_to_datetime
from pathlib import Path

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

    def to_message(self, sender: str, domain: str = "livedesk.invalid") -> EmailMessage:
        """The MIME message: text, then HTML as its alternative, then the attachments;
        the Message-ID in ``domain`` (the public URL's host: ``Settings.mail_domain``)."""
        message = EmailMessage()
        message["From"] = sender
        message["To"] = self.to
        message["Subject"] = self.subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=domain)
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


# Headers are folded only past RFC 5322's hard limit: the standard library's folding at 78
# columns mangles a header that mixes encoded words and plain text (a subject with an en
# dash came back with a double space, a long ASCII one with a leading space).
WIRE_POLICY = policy.SMTP.clone(max_line_length=998)


def to_bytes(message: EmailMessage) -> bytes:
    """The message as sent (CRLF line ends)."""
    return message.as_bytes(policy=WIRE_POLICY)


def envelope_address(sender: str) -> str:
    """The bare address of a From value (``Shop <desk@shop.example>`` → ``desk@shop.example``)."""
    return parseaddr(sender)[1]


# How many mails the demo outbox keeps (the oldest go first).
OUTBOX_KEEP = 200
# A text body longer than this is cut in the outbox listing (booking mails are ~1 kB).
_OUTBOX_TEXT_CHARS = 20_000


@dataclass(frozen=True)
class OutboxMail:
    id: str
    to: str
    subject: str
    sent_at: datetime
    text: str
    attachments: tuple[str, ...]


class Outbox:
    """The demo outbox: one ``.eml`` file per mail in ``folder``, named by the time it was
    kept (so names sort oldest first), the newest ``keep`` kept. Several processes may write
    to it: each file is written under a temporary name and renamed, so a reader never sees
    half a mail, and a file another process pruned first is simply gone."""

    def __init__(self, folder: Path, keep: int = OUTBOX_KEEP) -> None:
        self.folder = folder
        self.keep = keep

    def put(self, message: EmailMessage) -> Path:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{secrets.token_hex(4)}"
        partial = self.folder / f".{name}.part"
        final = self.folder / f"{name}.eml"
        # 0600: the mails hold booking links, which act for their booking.
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(message.as_bytes(policy=WIRE_POLICY.clone(linesep="\n")))
        os.replace(partial, final)
        self._prune()
        return final

    def _files(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(self.folder.glob("*.eml"), key=lambda p: p.name)

    def _prune(self) -> None:
        files = self._files()
        for old in files[: max(0, len(files) - self.keep)]:
            old.unlink(missing_ok=True)

    def count(self) -> int:
        return len(self._files())

    def newest(self, limit: int = OUTBOX_KEEP) -> list[OutboxMail]:
        """The newest ``limit`` mails, newest first, as plain text: a mail's HTML part is never
        read, so nothing a mail carries can run in the page that lists them."""
        mails = []
        for path in reversed(self._files()[-limit:] if limit > 0 else []):
            try:
                mails.append(_read_outbox_mail(path))
            except FileNotFoundError:
                continue  # pruned by another process meanwhile
        return mails


def _read_outbox_mail(path: Path) -> OutboxMail:
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert isinstance(message, EmailMessage)
    body = message.get_body(preferencelist=("plain",))
    text = body.get_content() if isinstance(body, EmailMessage) else ""
    try:
        sent_at = parsedate_to_datetime(str(message["Date"]))
    except (TypeError, ValueError):
        sent_at = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    return OutboxMail(
        id=path.stem,
        to=str(message["To"] or ""),
        subject=str(message["Subject"] or ""),
        sent_at=sent_at,
        text=str(text)[:_OUTBOX_TEXT_CHARS],
        attachments=tuple(str(p.get_filename() or "") for p in message.iter_attachments()),
    )


def outbox_of(settings: Settings) -> Outbox | None:
    """The demo outbox, when mails go there: it is on and no SMTP server is configured."""
    if settings.mail_outbox and not settings.smtp_host:
        return Outbox(settings.data_dir / "outbox")
    return None


class Mailer:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.outbox = outbox_of(settings)

    @property
    def enabled(self) -> bool:
        return bool(self._settings.smtp_host) or self.outbox is not None

    async def send(self, mail: Mail) -> None:
        settings = self._settings
        if not settings.smtp_host and self.outbox is not None:
            message = mail.to_message(settings.mail_from, settings.mail_domain)
            try:
                await asyncio.to_thread(self.outbox.put, message)
            except OSError as exc:
                raise MailError(f"the demo outbox could not keep the mail: {exc}") from exc
            return
        if not self.enabled:
            raise MailError("no SMTP server is configured (LIVEDESK_SMTP_HOST)")
        password = settings.smtp_password.get_secret_value()
        try:
            await aiosmtplib.send(
                # Flattened here, not by aiosmtplib (whose policy folds at 78: see WIRE_POLICY).
                to_bytes(mail.to_message(settings.mail_from, settings.mail_domain)),
                sender=envelope_address(settings.mail_from),
                recipients=[mail.to],
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
