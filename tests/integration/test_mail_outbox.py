"""The demo mail outbox (LIVEDESK_MAIL_OUTBOX): without an SMTP server, mails are kept as .eml
files in <data dir>/outbox/ (the newest 200) and listed at /demo/mail, so a demo's shopper can
open the link that confirms a booking. Off by default and whenever an SMTP host is set: then
the page and its JSON are 404 and nothing is written."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from livedesk.app import create_app
from livedesk.kit.mail import MAILER, Mail, MailAttachment
from livedesk.models import Role
from livedesk.settings import Settings
from tests.conftest import SmtpInbox, login, wait_until
from tests.integration.test_booking_api import booking_body, make_type, next_slot, set_hours

Client = TestClient[web.Request, web.Application]
PUBLIC = "https://demo.hanami.example"
CONFIRM_LINK = re.compile(re.escape(PUBLIC) + r"/booking/\?confirm=(\S+)")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "mail_outbox": True,
            "public_url": PUBLIC,
            "booking_job_seconds": 0.05,
            "booking_rate_limit": "1000/minute",
        }
    )


async def outbox(client: Client, limit: int | None = None) -> list[dict[str, Any]]:
    query = "" if limit is None else f"?limit={limit}"
    response = await client.get(f"/demo/mail.json{query}")
    assert response.status == 200, await response.text()
    assert response.headers["Cache-Control"] == "no-store"
    document: dict[str, Any] = await response.json()
    assert document["outbox"] is True
    mails: list[dict[str, Any]] = document["mails"]
    return mails


async def test_a_booking_mail_waits_in_the_outbox_and_its_link_confirms(
    client: Client, make_staff: Any, settings: Settings
) -> None:
    admin = await make_staff(Role.ADMIN)
    advisor = await make_staff(Role.ADVISOR, timezone="Asia/Tokyo")
    ctype = await make_type(client, admin)
    await set_hours(client, advisor)
    body = booking_body(ctype["id"], next_slot(3 * 24 * 60), advisor.id)
    body["contact"] = {"name": "Emily Brown", "email": "emily@example.co.uk"}
    created = await client.post("/api/v1/bookings", json=body)
    assert created.status == 201, await created.text()
    assert (await created.json())["booking"]["status"] == "pending"

    async def mails(n: int) -> list[dict[str, Any]] | None:
        listed = await outbox(client)
        return listed if len(listed) >= n else None

    (verify,) = await wait_until(lambda: mails(1))
    assert verify["to"] == "emily@example.co.uk"
    assert verify["subject"].startswith("Please confirm your booking: Skin check")
    assert verify["attachments"] == []
    match = CONFIRM_LINK.search(verify["text"])
    assert match, verify["text"]
    # The file on disk: a real mail, readable by the server's user only (it holds a link).
    files = sorted((settings.data_dir / "outbox").glob("*.eml"))
    assert [f.stem for f in files] == [verify["id"]]
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert b"Subject: Please confirm your booking" in files[0].read_bytes()

    confirmed = await client.post("/api/v1/bookings/confirm", json={"token": match.group(1)})
    assert confirmed.status == 200, await confirmed.text()
    assert (await confirmed.json())["booking"]["status"] == "confirmed"
    # The confirmation follows, newest first, with its calendar file named.
    newest, older = await wait_until(lambda: mails(2))
    assert older["id"] == verify["id"]
    assert newest["subject"].startswith("Booking confirmed: Skin check")
    assert newest["attachments"] == ["invite.ics"]
    assert f"{PUBLIC}/booking/?manage=" in newest["text"]
    assert newest["sent_at"] >= older["sent_at"]
    # ?limit=0 only says the outbox is on (the booking page asks that).
    assert await outbox(client, limit=0) == []
    assert [m["id"] for m in await outbox(client, limit=1)] == [newest["id"]]

    page = await client.get("/demo/mail")
    assert page.status == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert 'src="/demo/mail.js"' in await page.text()


async def test_the_outbox_keeps_the_newest_200(client: Client, settings: Settings) -> None:
    mailer = client.app[MAILER]
    assert mailer.enabled
    for n in range(205):
        attachments = [MailAttachment("x.ics", b"BEGIN:VCALENDAR", "text/calendar")] if n == 204 else []
        await mailer.send(
            Mail(to=f"shopper{n}@example.jp", subject=f"mail {n}", text=f"body {n}", attachments=attachments)
        )
    assert len(list((settings.data_dir / "outbox").glob("*.eml"))) == 200
    # Nothing half-written is left behind beside them.
    assert [p.name for p in (settings.data_dir / "outbox").iterdir() if p.suffix != ".eml"] == []
    listed = await outbox(client)
    assert [m["subject"] for m in listed] == [f"mail {n}" for n in range(204, 4, -1)]
    assert listed[0]["attachments"] == ["x.ics"]
    assert listed[0]["text"] == "body 204\n"


async def test_a_mail_html_part_is_never_listed(client: Client) -> None:
    await client.app[MAILER].send(
        Mail(
            to="shopper@example.jp",
            subject="<img src=x onerror=alert(1)>",
            text="see https://demo.hanami.example/booking/?manage=abc",
            html="<script>alert('html part')</script>",
        )
    )
    (mail,) = await outbox(client)
    # Subject and text come back as data (the page renders them as text, never as markup).
    assert mail["subject"] == "<img src=x onerror=alert(1)>"
    assert mail["text"] == "see https://demo.hanami.example/booking/?manage=abc\n"
    assert "alert('html part')" not in str(mail)


async def test_a_bad_limit_is_a_clear_error(client: Client) -> None:
    response = await client.get("/demo/mail.json?limit=-1")
    assert response.status == 422
    assert (await response.json())["error"]["code"] == "validation_failed"


@pytest.mark.parametrize("outbox_setting", [False, True])
async def test_no_outbox_when_it_is_off_or_smtp_is_set(
    client: Client, settings: Settings, smtp_inbox: SmtpInbox, outbox_setting: bool
) -> None:
    """Off: the addresses are 404 and the mailer still refuses. With an SMTP host the
    outbox setting is ignored: the page is 404 and mails go to the server."""
    smtp = {"smtp_host": "127.0.0.1", "smtp_port": smtp_inbox.port} if outbox_setting else {}
    changed = settings.model_copy(update={"mail_outbox": outbox_setting, **smtp})
    async with TestClient(TestServer(create_app(changed))) as other:
        for path in ("/demo/mail", "/demo/mail.json", "/demo/mail.json?limit=0"):
            response = await other.get(path)
            assert response.status == 404, path
        mailer = other.app[MAILER]
        assert mailer.enabled is outbox_setting
        if outbox_setting:
            await mailer.send(Mail(to="shopper@example.jp", subject="via smtp", text="hello"))
            # aiosmtpd keeps the message before it answers, so it is there once send returns.
            assert [str(m["Subject"]) for m in smtp_inbox.messages] == ["via smtp"]
        assert not (changed.data_dir / "outbox").exists()


def test_livedesk_demo_turns_the_outbox_on_without_smtp(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEDESK_")}
    env.update(LIVEDESK_DATA_DIR=str(tmp_path / "demo"), LIVEDESK_LOG_LEVEL="warning", LIVEDESK_PORT="8765")
    result = subprocess.run(
        [sys.executable, "-m", "livedesk", "demo", "--no-serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "demo mail outbox            http://127.0.0.1:8765/demo/mail" in result.stdout


@pytest.mark.parametrize(
    ("update", "delivery"),
    [
        ({"mail_outbox": False}, "off"),
        ({"mail_outbox": True}, "outbox"),
        ({"smtp_host": "mail.example"}, "smtp"),
    ],
)
async def test_admins_are_told_where_mails_go(
    settings: Settings, make_staff: Any, update: dict[str, Any], delivery: str
) -> None:
    admin = await make_staff(Role.ADMIN)
    advisor = await make_staff(Role.ADVISOR)
    async with TestClient(TestServer(create_app(settings.model_copy(update=update)))) as client:
        headers = await login(client, admin)
        answer = await client.get("/api/v1/system/mail", headers=headers)
        assert answer.status == 200
        assert (await answer.json())["delivery"] == delivery
        await client.post("/api/v1/auth/logout", headers=headers)
        headers = await login(client, advisor)
        assert (await client.get("/api/v1/system/mail", headers=headers)).status == 403
