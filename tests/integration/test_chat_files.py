"""Files in the chat over real HTTP and real sockets: upload with content and size checks,
a chat message that refers to the file, and a download only the parties may make."""

from __future__ import annotations

import hashlib
import struct
import uuid
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from livedesk.kit.db import Database
from livedesk.models import AuditEntry, ChatFile, Role
from livedesk.settings import Settings
from tests.conftest import SocketClient, StaffAccount, login

LIMIT = 2048
CSP = "default-src 'none'; sandbox"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A small upload limit, so "too large" needs only a few kilobytes."""
    return settings.model_copy(update={"upload_max_bytes": LIMIT})


def png(pad: int = 0) -> bytes:
    """A valid 1×1 RGBA PNG; ``pad`` bytes of an ancillary chunk make it as big as needed."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    idat = zlib.compress(b"\x00\xff\x00\x00\xff")
    extra = chunk(b"tEXt", b"c\x00" + b"x" * pad) if pad else b""
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def png_of_size(size: int) -> bytes:
    image = png(pad=size - len(png()) - 14)  # a chunk costs 12 bytes, the text key 2
    assert len(image) == size
    return image


PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


@pytest.fixture
async def anon(live: Any) -> AsyncIterator[aiohttp.ClientSession]:
    """A browser without cookies: how a shopper's widget (visitor token only) talks to us."""
    async with aiohttp.ClientSession(base_url=live.url + "/", cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield session


@dataclass
class Chat:
    id: str
    token: str
    shopper: SocketClient


async def open_chat(live: Any, console: SocketClient) -> Chat:
    """A shopper asks for a chat and the (only) advisor takes it: an active consultation."""
    token = (await live.visitor())["token"]
    shopper = await live.shopper(token)
    joined = await shopper.ok("queue.join", {"kind": "chat"})
    await console.wait_for("offer.new", lambda o: o["id"] == joined["id"])
    accepted = await console.ok("offer.accept", {"consultation_id": joined["id"]})
    assert accepted["status"] == "active"
    return Chat(id=joined["id"], token=token, shopper=shopper)


async def advisor_console(live: Any, make_staff: Any) -> tuple[StaffAccount, SocketClient]:
    advisor = await make_staff(Role.ADVISOR)
    console = await live.staff(advisor)
    await console.wait_for("presence.changed", lambda p: p["status"] == "available")
    return advisor, console


def form(content: bytes, filename: str = "photo.png", content_type: str = "image/png") -> aiohttp.FormData:
    data = aiohttp.FormData()
    data.add_field("file", content, filename=filename, content_type=content_type)
    return data


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def files_url(consultation_id: str) -> str:
    return f"/api/v1/consultations/{consultation_id}/files"


def stored_files(settings: Settings) -> list[Path]:
    root = settings.data_dir / "files"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def count_rows(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(ChatFile)) or 0)


async def status_of(response: aiohttp.ClientResponse) -> int:
    """The status, once the body has been read (an unread body holds its connection)."""
    await response.read()
    return response.status


async def error_of(response: aiohttp.ClientResponse) -> dict[str, Any]:
    body: dict[str, Any] = await response.json()
    assert set(body) == {"error"}, body
    return body["error"]  # type: ignore[no-any-return]


# --- the whole path -------------------------------------------------------------------------


async def test_shopper_shares_an_image_the_advisor_sees_and_downloads(
    live: Any, make_staff: Any, client: Any, anon: aiohttp.ClientSession, settings: Settings
) -> None:
    advisor, console = await advisor_console(live, make_staff)
    chat = await open_chat(live, console)
    image = png()

    response = await anon.post(
        files_url(chat.id),
        data=form(image, "../../etc/<写真>\u202e 1.png", "text/html"),
        headers=bearer(chat.token),
    )
    assert response.status == 201, await response.text()
    out = await response.json()
    assert out["content_type"] == "image/png"  # from the bytes, not the client's text/html
    assert out["filename"] == "_写真_ 1.png"
    assert out["size"] == len(image)
    assert out["sha256"] == hashlib.sha256(image).hexdigest()
    assert out["url"] == f"/api/v1/files/{out['id']}"
    on_disk = settings.data_dir / "files" / out["id"][:2] / out["id"]
    assert on_disk.read_bytes() == image
    assert stored_files(settings) == [on_disk]  # no temporary file left over

    ack = await chat.shopper.ok(
        "chat.send",
        {
            "consultation_id": chat.id,
            "client_id": "img-0001-abcd",
            "kind": "image",
            "data": {"file_id": out["id"]},
        },
    )
    assert ack["seq"] == 1
    message = await console.wait_for("chat.message", lambda m: m["kind"] == "image")
    assert message["data"] == {
        "file_id": out["id"],
        "filename": "_写真_ 1.png",
        "content_type": "image/png",
        "size": len(image),
        "url": out["url"],
    }

    csrf = await login(client, advisor)
    assert csrf
    download = await client.get(message["data"]["url"])
    assert download.status == 200, await download.text()
    assert await download.read() == image
    assert download.headers["Content-Type"] == "image/png"
    assert download.headers["Content-Disposition"] == (
        "inline; filename*=UTF-8''_%E5%86%99%E7%9C%9F_%201.png"
    )
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert download.headers["Content-Security-Policy"] == CSP
    assert download.headers["Cache-Control"] == "private"
    assert download.headers["Content-Length"] == str(len(image))
    head = await client.head(message["data"]["url"])
    assert head.status == 200
    assert await head.read() == b""
    assert head.headers["Content-Length"] == str(len(image))

    # The shopper who sent it may fetch it too.
    mine = await anon.get(out["url"], headers=bearer(chat.token))
    assert mine.status == 200
    assert await mine.read() == image


async def test_advisor_shares_a_pdf_offered_as_a_download(
    live: Any, make_staff: Any, client: Any, anon: aiohttp.ClientSession
) -> None:
    advisor, console = await advisor_console(live, make_staff)
    chat = await open_chat(live, console)
    csrf = await login(client, advisor)

    response = await client.post(files_url(chat.id), data=form(PDF, "report.html", "text/html"), headers=csrf)
    assert response.status == 201, await response.text()
    out = await response.json()
    assert out["content_type"] == "application/pdf"
    assert out["filename"] == "report.html.pdf"  # the ending follows the content

    await console.ok(
        "chat.send",
        {
            "consultation_id": chat.id,
            "client_id": "pdf-0001-abcd",
            "kind": "file",
            "body": "Your receipt",
            "data": {"file_id": out["id"]},
        },
    )
    message = await chat.shopper.wait_for("chat.message", lambda m: m["kind"] == "file")
    assert message["data"]["url"] == out["url"]

    download = await anon.get(out["url"], headers=bearer(chat.token))
    assert download.status == 200
    assert await download.read() == PDF
    assert download.headers["Content-Type"] == "application/pdf"
    assert download.headers["Content-Disposition"] == "attachment; filename*=UTF-8''report.html.pdf"
    assert download.headers["Content-Security-Policy"] == CSP
    assert download.headers["X-Content-Type-Options"] == "nosniff"


# --- content and size -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "detected"),
    [
        (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\x00" * 200, "application/x-msdownload"),
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 200, "application/x-executable"),
        (b"<!DOCTYPE html><html><script>alert(document.cookie)</script></html>", "text/html"),
        (
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
            "image/svg+xml",
        ),
    ],
    ids=["exe", "elf", "html", "svg"],
)
async def test_content_disguised_as_png_is_refused(
    live: Any,
    make_staff: Any,
    anon: aiohttp.ClientSession,
    settings: Settings,
    db: Database,
    content: bytes,
    detected: str,
) -> None:
    _, console = await advisor_console(live, make_staff)
    chat = await open_chat(live, console)
    response = await anon.post(
        files_url(chat.id), data=form(content, "cute-cat.png", "image/png"), headers=bearer(chat.token)
    )
    assert response.status == 415
    error = await error_of(response)
    assert error["code"] == "unsupported_media_type"
    assert error["details"]["detected"] == detected
    assert detected in error["message"]
    assert await count_rows(db) == 0
    assert stored_files(settings) == []


async def test_too_large_is_refused_and_nothing_is_kept(
    live: Any, make_staff: Any, anon: aiohttp.ClientSession, settings: Settings, db: Database
) -> None:
    _, console = await advisor_console(live, make_staff)
    chat = await open_chat(live, console)
    # Counted as it streams: the body's declared length is within reach of the limit.
    response = await anon.post(
        files_url(chat.id), data=form(png_of_size(LIMIT + 1)), headers=bearer(chat.token)
    )
    assert response.status == 413
    error = await error_of(response)
    assert error["code"] == "payload_too_large"
    assert error["details"] == {"limit": LIMIT}

    # Refused on its declared length alone, before any of it is read.
    response = await anon.post(files_url(chat.id), data=form(png(pad=200_000)), headers=bearer(chat.token))
    assert response.status == 413
    assert (await error_of(response))["code"] == "payload_too_large"

    assert await count_rows(db) == 0
    assert stored_files(settings) == []

    # Exactly at the limit is fine.
    response = await anon.post(files_url(chat.id), data=form(png_of_size(LIMIT)), headers=bearer(chat.token))
    assert response.status == 201, await response.text()
    assert (await response.json())["size"] == LIMIT


async def test_malformed_uploads(live: Any, make_staff: Any, anon: aiohttp.ClientSession) -> None:
    _, console = await advisor_console(live, make_staff)
    chat = await open_chat(live, console)
    auth = bearer(chat.token)

    response = await anon.post(files_url(chat.id), json={"file": "x"}, headers=auth)
    assert response.status == 415
    assert (await error_of(response))["code"] == "unsupported_media_type"

    wrong_name = aiohttp.FormData()
    wrong_name.add_field("upload", png(), filename="a.png", content_type="image/png")
    response = await anon.post(files_url(chat.id), data=wrong_name, headers=auth)
    assert response.status == 422
    assert (await error_of(response))["code"] == "validation_failed"

    two = aiohttp.FormData()
    two.add_field("file", png(), filename="a.png", content_type="image/png")
    two.add_field("file", png(), filename="b.png", content_type="image/png")
    response = await anon.post(files_url(chat.id), data=two, headers=auth)
    assert response.status == 422
    assert (await error_of(response))["code"] == "unexpected_part"

    response = await anon.post(files_url(chat.id), data=form(b""), headers=auth)
    assert response.status == 422
    assert (await error_of(response))["code"] == "empty_file"

    response = await anon.post(
        files_url(chat.id),
        data=b'--xyz\r\nContent-Disposition: form-data; name="file"\r\n\r\nabc',
        headers={**auth, "Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert response.status == 400
    assert (await error_of(response))["code"] == "bad_multipart"


# --- who may ----------------------------------------------------------------------------------


async def test_only_the_parties_upload_and_download(
    live: Any,
    make_staff: Any,
    client: Any,
    anon: aiohttp.ClientSession,
    db: Database,
    settings: Settings,
) -> None:
    advisor, console = await advisor_console(live, make_staff)
    chat = await open_chat(live, console)
    uploaded = await anon.post(files_url(chat.id), data=form(png()), headers=bearer(chat.token))
    assert uploaded.status == 201
    url = (await uploaded.json())["url"]

    # Another shopper: neither uploads here nor downloads from here.
    stranger = (await live.visitor())["token"]
    response = await anon.post(files_url(chat.id), data=form(png()), headers=bearer(stranger))
    assert response.status == 403
    assert (await error_of(response))["code"] == "not_a_party"
    response = await anon.get(url, headers=bearer(stranger))
    assert response.status == 403
    assert (await error_of(response))["code"] == "not_a_party"

    # Nobody at all, or a forged token.
    response = await anon.post(files_url(chat.id), data=form(png()))
    assert response.status == 401
    assert (await error_of(response))["code"] == "unauthenticated"
    response = await anon.get(url)
    assert await status_of(response) == 401
    response = await anon.get(url, headers=bearer(chat.token + "x"))
    assert response.status == 401
    assert (await error_of(response))["code"] == "token_invalid"

    # The advisor's cookie without the CSRF header does not write.
    csrf = await login(client, advisor)
    response = await client.post(files_url(chat.id), data=form(png()))
    assert response.status == 403
    assert (await error_of(response))["code"] == "csrf_failed"
    response = await client.post(files_url(chat.id), data=form(png()), headers=csrf)
    assert await status_of(response) == 201

    # Another advisor is no party; a supervisor may read (and the read is audited).
    other = await make_staff(Role.ADVISOR)
    await login(client, other)
    response = await client.get(url)
    assert response.status == 403
    assert (await error_of(response))["code"] == "not_a_party"
    supervisor = await make_staff(Role.SUPERVISOR)
    supervisor_csrf = await login(client, supervisor)
    response = await client.get(url)
    assert response.status == 200
    assert await response.read() == png()
    # ... but a supervisor is not in the chat, so shares nothing in it.
    response = await client.post(files_url(chat.id), data=form(png()), headers=supervisor_csrf)
    assert await status_of(response) == 403
    async with db.read() as session:
        audited = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "chat_file.read"))
        ).all()
    assert [(a.actor_staff_id, a.target_id) for a in audited] == [(supervisor.id, url.rsplit("/", 1)[1])]

    assert await count_rows(db) == 2
    assert len(stored_files(settings)) == 2


async def test_unknown_ids_and_closed_consultations(
    live: Any, make_staff: Any, anon: aiohttp.ClientSession
) -> None:
    _, console = await advisor_console(live, make_staff)
    chat = await open_chat(live, console)
    auth = bearer(chat.token)

    response = await anon.get(f"/api/v1/files/{uuid.uuid4()}", headers=auth)
    assert response.status == 404
    assert (await error_of(response))["code"] == "file_not_found"
    response = await anon.get("/api/v1/files/not-a-uuid", headers=auth)
    assert await status_of(response) == 422
    response = await anon.post(files_url(str(uuid.uuid4())), data=form(png()), headers=auth)
    assert response.status == 404
    assert (await error_of(response))["code"] == "consultation_not_found"

    kept = await anon.post(files_url(chat.id), data=form(png()), headers=auth)
    assert kept.status == 201
    await console.ok("consultation.close", {"consultation_id": chat.id})
    await chat.shopper.wait_for("consultation.updated", lambda c: c["status"] == "closed")
    response = await anon.post(files_url(chat.id), data=form(png()), headers=auth)
    assert response.status == 409
    assert (await error_of(response))["code"] == "chat_closed"
    # What was shared stays readable by the parties.
    response = await anon.get((await kept.json())["url"], headers=auth)
    assert await status_of(response) == 200


async def test_chat_refuses_a_file_from_another_consultation(
    live: Any, make_staff: Any, anon: aiohttp.ClientSession
) -> None:
    _, console = await advisor_console(live, make_staff)
    first = await open_chat(live, console)
    second = await open_chat(live, console)
    response = await anon.post(files_url(second.id), data=form(png()), headers=bearer(second.token))
    assert response.status == 201
    theirs = (await response.json())["id"]

    for file_id in (theirs, str(uuid.uuid4())):
        ack = await first.shopper.call(
            "chat.send",
            {
                "consultation_id": first.id,
                "client_id": f"img-{file_id[:8]}",
                "kind": "image",
                "data": {"file_id": file_id},
            },
        )
        assert ack["ok"] is False, ack
        assert ack["error"]["code"] == "file_not_found"
    assert not console.received("chat.message")


async def test_routes_are_in_the_openapi_document(client: Any) -> None:
    spec = await (await client.get("/api/openapi.json")).json()
    upload = spec["paths"]["/api/v1/consultations/{consultation_id}/files"]["post"]
    assert {"201", "401", "403", "409", "413", "415"} <= set(upload["responses"])
    assert "get" in spec["paths"]["/api/v1/files/{file_id}"]
