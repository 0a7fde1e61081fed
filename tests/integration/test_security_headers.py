"""Security headers on every page and answer, cookie attributes, and uploads judged by content.

Pages are found from the app's router, not listed here: every GET route without path
parameters that answers HTML (and one file of every static folder) must carry a strict CSP
whose ``frame-ancestors`` fits the page — ``'none'`` (and X-Frame-Options DENY) for staff
pages, the configured shop origins for the shopper's pages the widget frames, ``'self'`` for
the demo — plus ``nosniff`` and a referrer policy. A page added later without them fails.
"""

from __future__ import annotations

import struct
import zlib
from http.cookies import SimpleCookie
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from livedesk.models import Role
from livedesk.pages.routes import _FRAMEABLE_BY_SELF, _FRAMEABLE_BY_SHOP, WEB_DIR
from livedesk.settings import Settings
from tests.conftest import login

SHOP = "https://shop.example"
# Pages a brand's shop frames (the widget's panel and what it opens) and the demo shop (framed
# by itself), as pages/routes.py declares them; every other HTML page must refuse framing.
SHOP_FRAMED: tuple[str, ...] = _FRAMEABLE_BY_SHOP
SELF_FRAMED: tuple[str, ...] = _FRAMEABLE_BY_SELF


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"widget_frame_ancestors": SHOP, "presence_grace_seconds": 0.0})


def _directives(csp: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in csp.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def _html_candidates(app: web.Application) -> list[str]:
    """Every GET path without parameters, and one file of each static folder of web/."""
    paths: list[str] = []
    for resource in app.router.resources():
        info = resource.get_info()
        if "prefix" in info:
            folder = WEB_DIR / info["prefix"].strip("/")
            html = sorted(folder.rglob("*.html")) or sorted(p for p in folder.rglob("*") if p.is_file())
            if html:
                paths.append("/" + str(html[0].relative_to(WEB_DIR)))
            continue
        path = info.get("path")
        if path and path != "/socket.io/" and any(r.method == "GET" for r in resource):
            paths.append(path)
    return sorted(set(paths))


def _expected_ancestors(path: str) -> list[str]:
    if path.startswith(SHOP_FRAMED):
        return [SHOP]
    if path.startswith(SELF_FRAMED):
        return ["'self'"]
    return ["'none'"]


async def test_every_html_page_has_a_strict_csp_and_fitting_frame_rules(
    app: web.Application, client: Any
) -> None:
    pages = 0
    for path in _html_candidates(app):
        response = await client.get(path, allow_redirects=False)
        await response.read()
        headers = response.headers
        # Whatever it is: no sniffing, no full URLs leaking in Referer.
        assert headers.get("X-Content-Type-Options") == "nosniff", path
        assert headers.get("Referrer-Policy") in {"same-origin", "no-referrer", "strict-origin"}, path
        if response.content_type != "text/html":
            continue
        pages += 1
        csp = _directives(headers.get("Content-Security-Policy", ""))
        assert csp, f"{path}: no Content-Security-Policy"
        assert csp.get("default-src") == ["'self'"], (path, csp)
        script = csp.get("script-src", csp["default-src"])
        assert "'unsafe-inline'" not in script, (path, csp)
        assert "'unsafe-eval'" not in script, (path, csp)
        assert csp.get("object-src") == ["'none'"], (path, csp)
        assert csp.get("base-uri") == ["'none'"], (path, csp)
        # Nothing from outside this server (no CDN).
        for name, sources in csp.items():
            if name != "frame-ancestors":
                assert all(s.startswith("'") or s in {"data:", "blob:"} for s in sources), (
                    path,
                    name,
                    sources,
                )
        assert csp.get("frame-ancestors") == _expected_ancestors(path), (path, csp)
        if path.startswith(SHOP_FRAMED + SELF_FRAMED):
            assert "X-Frame-Options" not in headers, path  # it would stop the widget's iframe
        else:
            assert headers.get("X-Frame-Options") == "DENY", path
        if not path.endswith(".html"):  # the addresses people open say their charset
            assert "charset=utf-8" in headers["Content-Type"].lower(), path
    assert pages >= 8, pages
    # Staff pages are never framed, whatever a page list says.
    assert not any(p.startswith(("/staff/", "/admin/", "/supervisor/")) for p in SHOP_FRAMED + SELF_FRAMED)


async def test_api_answers_are_not_sniffed_or_cached(client: Any, make_staff: Any) -> None:
    admin = await make_staff(Role.ADMIN)
    headers = await login(client, admin)
    for method, path, body in (
        ("GET", "/api/v1/staff", None),
        ("GET", "/api/v1/auth/me", None),
        ("POST", "/api/v1/visitors", {}),
        ("GET", "/api/v1/nothing-here", None),
        ("POST", "/api/v1/staff", {"email": "not an address"}),
    ):
        response = await client.request(method, path, json=body, headers=headers)
        await response.read()
        assert response.headers.get("X-Content-Type-Options") == "nosniff", (path, response.status)
        assert response.headers.get("Cache-Control") == "no-store", (path, response.status)
        assert "Strict-Transport-Security" not in response.headers  # plain HTTP by default


def _set_cookies(response: aiohttp.ClientResponse) -> dict[str, Any]:
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.getall("Set-Cookie"):
        jar.load(header)
    return dict(jar)


async def test_session_cookies_are_httponly_samesite_and_secure_when_told(
    settings: Settings, make_staff: Any
) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from livedesk.app import create_app

    advisor = await make_staff(Role.ADVISOR)
    for secure in (False, True):
        app = create_app(settings.model_copy(update={"cookie_secure": secure}))
        async with TestClient(TestServer(app)) as client:
            response = await client.post(
                "/api/v1/auth/login", json={"email": advisor.email, "password": advisor.password}
            )
            assert response.status == 200
            cookies = _set_cookies(response)
            session, csrf = cookies["livedesk_session"], cookies["livedesk_csrf"]
            # The session cookie: never readable by scripts, not sent on cross-site requests.
            assert session["httponly"] is True
            assert session["samesite"] == "Lax"
            assert session["path"] == "/"
            # The CSRF cookie is read by the page's script (double submit), so not HttpOnly,
            # and never sent cross-site at all.
            assert not csrf["httponly"]
            assert csrf["samesite"] == "Strict"
            assert bool(session["secure"]) is secure
            assert bool(csrf["secure"]) is secure
            hsts = response.headers.get("Strict-Transport-Security")
            assert (hsts == "max-age=31536000") if secure else hsts is None


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0\xff\0\0\xff"))
        + chunk(b"IEND", b"")
    )


# Things a browser would run if it were served as a page, dressed up as images.
DISGUISED = [
    (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "x.png", "image/png"),
    (b"<!doctype html><script>alert(1)</script>", "x.jpg", "image/jpeg"),
]
# Starts like a GIF, goes on as a script: the first bytes say image, so it is kept — and served
# as image/gif with nosniff and a sandboxing CSP, so no browser runs it (see docs/security.md).
# Starts like a GIF (with a sane 1×1 screen size, so the pixel cap lets it through) and goes on
# as script: it must be stored as image/gif and served so that no browser runs it.
POLYGLOT = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;alert(1)//<script>alert(1)</script>"
# The classic form declares its "size" with script bytes (0x313D × 0x6C61): refused outright.
POLYGLOT_HUGE = b"GIF89a=1;alert(1)//<script>alert(1)</script>"


def _form(content: bytes, filename: str, content_type: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", content, filename=filename, content_type=content_type)
    return form


async def test_uploads_are_judged_by_content_and_served_inert(live: Any, make_staff: Any) -> None:
    advisor = await make_staff(Role.ADVISOR)
    admin = await make_staff(Role.ADMIN)
    console = await live.staff(advisor)
    await console.wait_for("presence.changed", lambda p: p["status"] == "available")
    visit = await live.visitor()
    shopper = await live.shopper(visit["token"])
    cid = (await shopper.ok("queue.join", {"kind": "chat"}))["id"]
    await console.wait_for("offer.new", lambda o: o["id"] == cid)
    await console.ok("offer.accept", {"consultation_id": cid})
    bearer = {"Authorization": f"Bearer {visit['token']}"}
    admin_headers = await login(live.http, admin)
    # The shopper's requests carry no staff cookie (live.http now has the admin's).
    async with aiohttp.ClientSession(live.url, cookie_jar=aiohttp.DummyCookieJar()) as anon:
        await _check_uploads(live, anon, cid, bearer, advisor.id, admin_headers)


async def _check_uploads(
    live: Any,
    anon: aiohttp.ClientSession,
    cid: str,
    bearer: dict[str, str],
    staff_id: Any,
    admin: dict[str, str],
) -> None:

    for content, filename, declared in DISGUISED:
        chat = await anon.post(
            f"/api/v1/consultations/{cid}/files", data=_form(content, filename, declared), headers=bearer
        )
        assert chat.status == 415, (filename, await chat.text())
        photo = await live.http.post(
            f"/api/v1/staff/{staff_id}/photo",
            data=_form(content, filename, declared),
            headers=admin,
        )
        assert photo.status == 415, (filename, await photo.text())

    huge = await anon.post(
        f"/api/v1/consultations/{cid}/files", data=_form(POLYGLOT_HUGE, "x.gif", "image/gif"), headers=bearer
    )
    assert huge.status == 422
    assert (await huge.json())["error"]["code"] == "image_too_large"
    polyglot = await anon.post(
        f"/api/v1/consultations/{cid}/files", data=_form(POLYGLOT, "x.gif", "image/gif"), headers=bearer
    )
    assert polyglot.status == 201, await polyglot.text()
    served = await anon.get((await polyglot.json())["url"], headers=bearer)
    await served.read()
    assert served.headers["Content-Type"] == "image/gif"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in _directives(served.headers["Content-Security-Policy"])

    # A real image is accepted whatever it is called, and served so that it cannot run.
    stored = await anon.post(
        f"/api/v1/consultations/{cid}/files", data=_form(_png(), "page.html", "text/html"), headers=bearer
    )
    assert stored.status == 201, await stored.text()
    body = await stored.json()
    assert body["content_type"] == "image/png"
    served = await anon.get(body["url"], headers=bearer)
    await served.read()
    assert served.status == 200
    assert served.headers["Content-Type"] == "image/png"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert _directives(served.headers["Content-Security-Policy"]) == {
        "default-src": ["'none'"],
        "sandbox": [],
    }
    assert served.headers["Content-Disposition"].startswith("inline")
