"""Profile photos over real HTTP: an admin uploads one (checked by content and size), the
account's photo_url points at it, and it is served only as an image."""

from __future__ import annotations

import io
import struct
import uuid
import zlib
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from openapi_spec_validator import validate
from sqlalchemy import select

from livedesk.app import create_app
from livedesk.kit.db import Database
from livedesk.models import AuditEntry, Role, Staff
from livedesk.settings import Settings
from livedesk.staff import photos
from livedesk.staff.photos import PHOTO_MAX_BYTES
from tests.conftest import login

CSP = "default-src 'none'; sandbox"
PHOTO_ROUTE = "/api/v1/staff/{staff_id}/photo"


@pytest.fixture
async def app(settings: Settings) -> web.Application:
    """The app with the photo routes, whether or not app.py registers them yet."""
    application = create_app(settings)
    if not any(r.canonical == PHOTO_ROUTE for r in application.router.resources()):
        photos.setup_routes(application)
    return application


def png(pad: int = 0) -> bytes:
    """A valid 1×1 PNG; ``pad`` bytes of an ancillary chunk make it as big as needed."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    idat = zlib.compress(b"\x00\xff\x00\x00\xff")
    extra = chunk(b"tEXt", b"c\x00" + b"x" * pad) if pad else b""
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# The smallest files filetype recognises as these types.
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64 + b"\xff\xd9"
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00" + b"\x00" * 24
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def form(content: bytes, filename: str = "me.png", content_type: str = "image/png") -> aiohttp.FormData:
    data = aiohttp.FormData()
    # BytesIO: aiohttp warns about large raw bytes bodies.
    data.add_field("file", io.BytesIO(content), filename=filename, content_type=content_type)
    return data


def named(part: str, content: bytes) -> aiohttp.FormData:
    data = aiohttp.FormData()
    data.add_field(part, io.BytesIO(content), filename="me.png", content_type="image/png")
    return data


def url(staff_id: uuid.UUID | str) -> str:
    return f"/api/v1/staff/{staff_id}/photo"


def stored(settings: Settings) -> list[Path]:
    root = settings.data_dir / "photos"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def error_of(response: aiohttp.ClientResponse) -> dict[str, Any]:
    body: dict[str, Any] = await response.json()
    assert set(body) == {"error"}, body
    return body["error"]  # type: ignore[no-any-return]


@pytest.fixture
def anon(client: Any) -> Any:
    """A second browser without cookies, talking to the same server."""

    def open_session() -> aiohttp.ClientSession:
        return aiohttp.ClientSession(base_url=client.make_url("/"), cookie_jar=aiohttp.DummyCookieJar())

    return open_session


async def test_admin_uploads_a_photo_that_becomes_the_profile_photo(
    client: Any, make_staff: Any, db: Database, settings: Settings, anon: Any
) -> None:
    admin = await make_staff(Role.ADMIN)
    advisor = await make_staff(Role.ADVISOR)
    headers = await login(client, admin)
    image = png()

    response = await client.post(
        url(advisor.id), data=form(image, "../../<me>.html", "text/html"), headers=headers
    )
    assert response.status == 200, await response.text()
    out = await response.json()
    assert out["id"] == str(advisor.id)
    assert out["photo_url"].startswith(url(advisor.id) + "?v=")
    assert "password_hash" not in out
    # The list the admin page reads shows it too.
    listed = await (await client.get("/api/v1/staff")).json()
    assert {s["id"]: s["photo_url"] for s in listed}[str(advisor.id)] == out["photo_url"]
    [on_disk] = stored(settings)
    assert on_disk.read_bytes() == image

    served = await client.get(out["photo_url"])
    assert served.status == 200
    assert await served.read() == image
    assert served.headers["Content-Type"] == "image/png"  # from the bytes, not the client's text/html
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert served.headers["Content-Security-Policy"] == CSP
    assert served.headers["Content-Disposition"] == 'inline; filename="photo.png"'
    assert served.headers["Content-Length"] == str(len(image))
    etag = served.headers["ETag"]
    again = await client.get(out["photo_url"], headers={"If-None-Match": etag})
    assert again.status == 304
    assert await again.read() == b""

    # Shoppers see the photos of advisors they may nominate, without signing in.
    async with anon() as shopper:
        public = await shopper.get(out["photo_url"])
        assert public.status == 200
        assert await public.read() == image
    advisors = await (await client.get("/api/v1/advisors")).json()
    assert {a["id"]: a["photo_url"] for a in advisors["advisors"]}[str(advisor.id)] == out["photo_url"]

    async with db.read() as session:
        entries = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == photos.STAFF_PHOTO_CHANGED))
        ).all()
    assert [(e.actor_staff_id, e.target_type, e.target_id) for e in entries] == [
        (admin.id, "staff", str(advisor.id))
    ]
    assert entries[0].details["content_type"] == "image/png"
    assert entries[0].details["size"] == len(image)


async def test_a_new_photo_replaces_the_old_one_and_its_file(
    client: Any, make_staff: Any, settings: Settings
) -> None:
    admin = await make_staff(Role.ADMIN)
    advisor = await make_staff(Role.ADVISOR)
    headers = await login(client, admin)
    first = await (await client.post(url(advisor.id), data=form(png()), headers=headers)).json()
    response = await client.post(url(advisor.id), data=form(JPEG, "me.jpg", "image/jpeg"), headers=headers)
    assert response.status == 200, await response.text()
    second = await response.json()
    assert second["photo_url"] != first["photo_url"]
    [on_disk] = stored(settings)  # the first file is gone
    assert on_disk.read_bytes() == JPEG
    served = await client.get(second["photo_url"])
    assert served.headers["Content-Type"] == "image/jpeg"
    assert served.headers["Content-Disposition"] == 'inline; filename="photo.jpg"'


async def test_webp_is_accepted(client: Any, make_staff: Any) -> None:
    admin = await make_staff(Role.ADMIN)
    headers = await login(client, admin)
    response = await client.post(url(admin.id), data=form(WEBP, "me.webp", "image/webp"), headers=headers)
    assert response.status == 200, await response.text()
    served = await client.get((await response.json())["photo_url"])
    assert served.headers["Content-Type"] == "image/webp"
    assert await served.read() == WEBP


@pytest.mark.parametrize("role", [Role.ADVISOR, Role.SUPERVISOR])
async def test_only_admins_upload(client: Any, make_staff: Any, settings: Settings, role: Role) -> None:
    other = await make_staff(Role.ADVISOR)
    headers = await login(client, await make_staff(role))
    response = await client.post(url(other.id), data=form(png()), headers=headers)
    assert response.status == 403
    assert (await error_of(response))["code"] == "forbidden"
    assert stored(settings) == []


async def test_anonymous_upload_is_refused(
    client: Any, make_staff: Any, anon: Any, settings: Settings
) -> None:
    advisor = await make_staff(Role.ADVISOR)
    async with anon() as stranger:
        response = await stranger.post(url(advisor.id), data=form(png()))
        assert response.status == 401
        assert (await error_of(response))["code"] == "unauthenticated"
    assert stored(settings) == []


async def test_write_without_csrf_token_is_refused(client: Any, make_staff: Any) -> None:
    admin = await make_staff(Role.ADMIN)
    await login(client, admin)
    response = await client.post(url(admin.id), data=form(png()))
    assert response.status == 403
    assert (await error_of(response))["code"] == "csrf_failed"


@pytest.mark.parametrize(
    ("content", "detected"),
    [
        (GIF, "image/gif"),
        (SVG, "an unrecognised type"),
        (b"%PDF-1.4\n%%EOF\n", "application/pdf"),
        (b"hello, world", "an unrecognised type"),
    ],
)
async def test_other_types_are_refused_by_content(
    client: Any, make_staff: Any, settings: Settings, content: bytes, detected: str
) -> None:
    admin = await make_staff(Role.ADMIN)
    headers = await login(client, admin)
    # The client claims PNG; the bytes decide.
    response = await client.post(url(admin.id), data=form(content, "me.png", "image/png"), headers=headers)
    assert response.status == 415
    error = await error_of(response)
    assert error["code"] == "unsupported_media_type"
    assert error["details"]["detected"] == detected
    assert error["details"]["field"] == "file"
    assert "PNG, JPEG or WebP" in error["message"]
    assert stored(settings) == []
    me = await (await client.get(f"/api/v1/staff/{admin.id}")).json()
    assert me["photo_url"] == ""


async def test_too_large_is_refused(client: Any, make_staff: Any, settings: Settings) -> None:
    admin = await make_staff(Role.ADMIN)
    headers = await login(client, admin)
    big = png(pad=PHOTO_MAX_BYTES)
    response = await client.post(url(admin.id), data=form(big), headers=headers)
    assert response.status == 413
    error = await error_of(response)
    assert error["code"] == "payload_too_large"
    assert error["details"] == {"field": "file", "limit": PHOTO_MAX_BYTES}
    assert "2 MB" in error["message"]
    assert stored(settings) == []


async def test_too_large_without_a_declared_length_is_cut_off(
    client: Any, make_staff: Any, settings: Settings
) -> None:
    """A chunked body has no Content-Length; the count as it arrives is what stops it."""
    admin = await make_staff(Role.ADMIN)
    headers = await login(client, admin)
    boundary = "photo-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + png(pad=PHOTO_MAX_BYTES)
        + f"\r\n--{boundary}--\r\n".encode()
    )

    async def chunked() -> Any:
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    response = await client.post(
        url(admin.id),
        data=chunked(),
        headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status == 413
    assert stored(settings) == []


async def test_a_photo_of_exactly_the_limit_is_accepted(client: Any, make_staff: Any) -> None:
    admin = await make_staff(Role.ADMIN)
    headers = await login(client, admin)
    image = png()
    image = png(pad=PHOTO_MAX_BYTES - len(image) - 14)
    assert len(image) == PHOTO_MAX_BYTES
    response = await client.post(url(admin.id), data=form(image), headers=headers)
    assert response.status == 200, await response.text()


@pytest.mark.parametrize(
    ("make_body", "status", "code"),
    [
        (lambda: {"json": {"file": "x"}}, 415, "unsupported_media_type"),
        (lambda: {"data": form(b"")}, 422, "empty_file"),
        (lambda: {"data": named("photo", png())}, 422, "validation_failed"),
    ],
)
async def test_malformed_uploads(
    client: Any, make_staff: Any, make_body: Any, status: int, code: str
) -> None:
    admin = await make_staff(Role.ADMIN)
    headers = await login(client, admin)
    response = await client.post(url(admin.id), headers=headers, **make_body())
    assert response.status == status, await response.text()
    assert (await error_of(response))["code"] == code


async def test_unknown_staff(client: Any, make_staff: Any) -> None:
    headers = await login(client, await make_staff(Role.ADMIN))
    response = await client.post(url(uuid.uuid4()), data=form(png()), headers=headers)
    assert response.status == 404
    missing = await client.get(url(uuid.uuid4()))
    assert missing.status == 404
    assert (await error_of(missing))["code"] == "photo_not_found"


async def test_photos_of_hidden_accounts_are_for_staff_only(
    client: Any, make_staff: Any, anon: Any, db: Database
) -> None:
    admin = await make_staff(Role.ADMIN)
    hidden = await make_staff(Role.ADVISOR, nominable=False)
    headers = await login(client, admin)
    photo = (await (await client.post(url(hidden.id), data=form(png()), headers=headers)).json())["photo_url"]
    assert (await client.get(photo)).status == 200  # the signed-in admin
    async with anon() as shopper:
        assert (await shopper.get(photo)).status == 404


async def test_a_photo_url_set_by_hand_serves_nothing(client: Any, make_staff: Any, db: Database) -> None:
    admin = await make_staff(Role.ADMIN)
    first = await make_staff(Role.ADVISOR)
    second = await make_staff(Role.ADVISOR)
    headers = await login(client, admin)
    photo = (await (await client.post(url(first.id), data=form(png()), headers=headers)).json())["photo_url"]
    version = photo.split("?v=")[1]
    # Pointing the second account at the first one's file does not make it serve that file.
    response = await client.patch(
        f"/api/v1/staff/{second.id}", json={"photo_url": f"{url(second.id)}?v={version}"}, headers=headers
    )
    assert response.status == 200
    assert (await client.get(url(second.id))).status == 404
    # Clearing photo_url hides the uploaded photo.
    await client.patch(f"/api/v1/staff/{first.id}", json={"photo_url": ""}, headers=headers)
    assert (await client.get(photo)).status == 404
    async with db.read() as session:
        row = await session.get(Staff, first.id)
        assert row is not None
        assert row.photo_url == ""


async def test_both_routes_are_in_the_openapi_document(client: Any) -> None:
    spec = await (await client.get("/api/openapi.json")).json()
    validate(spec)
    item = spec["paths"]["/api/v1/staff/{staff_id}/photo"]
    assert {"get", "post"} <= set(item)
    assert {"200", "401", "403", "413", "415"} <= set(item["post"]["responses"])
