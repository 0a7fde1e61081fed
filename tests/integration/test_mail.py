"""The mail adapter against a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

import pytest

from livedesk.kit.mail import Mail, MailAttachment, Mailer, MailError
from livedesk.settings import Settings
from tests.conftest import SmtpInbox


async def test_mail_with_text_html_and_calendar_attachment_arrives(smtp_inbox: SmtpInbox) -> None:
    handler, port = smtp_inbox, smtp_inbox.port
    mailer = Mailer(Settings(smtp_host="127.0.0.1", smtp_port=port, mail_from="Hanami <desk@hanami.example>"))
    ics = b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n"
    await mailer.send(
        Mail(
            to="aiko@example.jp",
            subject="ご予約ありがとうございます",
            text="本文",
            html="<p>本文</p>",
            attachments=[MailAttachment("invite.ics", ics, "text/calendar; method=REQUEST")],
        )
    )
    assert len(handler.messages) == 1
    (parsed,) = smtp_inbox.parsed()
    assert parsed["To"] == "aiko@example.jp"
    assert parsed["From"] == "Hanami <desk@hanami.example>"
    assert str(parsed["Subject"]) == "ご予約ありがとうございます"
    parts = {part.get_content_type(): part for part in parsed.walk()}
    assert parts["text/plain"].get_content().strip() == "本文"
    assert "<p>本文</p>" in parts["text/html"].get_content()
    calendar = parts["text/calendar"]
    assert calendar.get_param("method") == "REQUEST"
    assert calendar.get_filename() == "invite.ics"
    assert calendar.get_payload(decode=True) == ics


async def test_unconfigured_mailer_refuses_and_unreachable_server_raises() -> None:
    with pytest.raises(MailError, match="no SMTP server"):
        await Mailer(Settings()).send(Mail(to="a@example.jp", subject="s", text="t"))
    # A closed port: the caller gets MailError (to retry), not a raw OSError.
    mailer = Mailer(Settings(smtp_host="127.0.0.1", smtp_port=9, smtp_timeout_seconds=2))
    with pytest.raises(MailError, match="failed"):
        await mailer.send(Mail(to="a@example.jp", subject="s", text="t"))
