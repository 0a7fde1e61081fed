"""Browser pages: ``web/`` served as static files, plus the security headers every page gets.

Pages are plain files (ES modules, no build step). Each top-level folder of ``web/`` is served
under its own name (``/shared/…``, ``/demo/…``, ``/staff/…``); the page addresses people type
(``/``, ``/demo/shop``, ``/staff/``, ``/supervisor/``, ``/admin/``) map to their HTML file. Every
HTML page is served inside the one page shell (``pages/shell.py``, ``web/shared/shell.html``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractResource

from livedesk.demo import data
from livedesk.kit.context import SETTINGS
from livedesk.kit.csp import CSP_SOURCES, CspSources
from livedesk.kit.logging import get_logger
from livedesk.kit.mail import OUTBOX_KEEP, outbox_of
from livedesk.kit.paths import WEB_DIR
from livedesk.models import Role
from livedesk.pages.shell import ShellCache, page_files

log = get_logger("livedesk.pages")


# Address → HTML file under web/.
PAGES: dict[str, str] = {
    "/": "index.html",
    "/demo/shop": "demo/shop.html",
    # The shopper's side, opened by the widget (in an iframe or a tab) or a link in a mail.
    "/widget/": "widget/index.html",
    "/call/": "call/index.html",
    # Booking a time, and what a booking's mailed link opens (manage, join).
    "/booking/": "booking/index.html",
    # The advisor console (sign-in, offers, calls, chats, customer panel).
    "/staff/": "staff/index.html",
    # The supervisor board (sign-in, then the live board for supervisors and admins).
    "/supervisor/": "supervisor/index.html",
    "/admin/": "admin/index.html",
    # Customer history for staff: search, profile, timeline, privacy requests.
    "/history/": "history/index.html",
    # The post-call survey a booked consultation's shopper opens from their mail.
    "/surveys/csat": "surveys/csat.html",
}
# /widget.js is the one file a shop's page includes with a <script> tag.
ROOT_FILES = ("favicon.svg", "widget.js")

_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; media-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors {ancestors}"
)
# Staff pages must never be framed (clickjacking); the demo shop may be framed by itself; the
# shopper's pages are framed by the brand's shop (LIVEDESK_WIDGET_FRAME_ANCESTORS).
_FRAMEABLE_BY_SELF = ("/demo/",)
_FRAMEABLE_BY_SHOP = ("/widget/", "/call/", "/booking/")

PAGE_RESOURCES = web.AppKey("page_resources", set)
PAGE_SHELL = web.AppKey("page_shell", ShellCache)


def content_security_policy(
    path: str, shop_ancestors: str = "'self'", sources: CspSources | None = None
) -> str:
    """The strict policy, plus what capabilities admitted for this path at setup (``sources``)."""
    if path.startswith(_FRAMEABLE_BY_SHOP):
        ancestors = shop_ancestors
    elif path.startswith(_FRAMEABLE_BY_SELF):
        ancestors = "'self'"
    else:
        ancestors = "'none'"
    policy = _CSP.format(ancestors=ancestors)
    return sources.compose(path, policy) if sources is not None else policy


def security_headers(
    path: str, shop_ancestors: str = "'self'", sources: CspSources | None = None
) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": content_security_policy(path, shop_ancestors, sources),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        # No build step means no hashed file names: let browsers revalidate (ETag) every time.
        "Cache-Control": "no-cache",
    }
    if not path.startswith(_FRAMEABLE_BY_SELF + _FRAMEABLE_BY_SHOP):
        headers["X-Frame-Options"] = "DENY"
    return headers


async def _add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare hook, limited to responses from the routes registered here."""
    resource = request.match_info.route.resource
    if resource is not None and resource in request.app[PAGE_RESOURCES]:
        app = request.app
        ancestors = app[SETTINGS].widget_frame_ancestors
        for name, value in security_headers(request.path, ancestors, app.get(CSP_SOURCES)).items():
            response.headers.setdefault(name, value)


def _file(relative: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    if relative.endswith(".html"):
        return _page(relative)
    path = WEB_DIR / relative

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(path)

    return handler


def _page(relative: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """An HTML page in the shell, revalidated by ETag like the static files (no-cache)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        rendered = request.app[PAGE_SHELL].get(relative)
        headers = {"ETag": rendered.etag}
        if rendered.etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        # Say the charset rather than leave browsers to find the <meta> tag.
        return web.Response(body=rendered.body, content_type="text/html", charset="utf-8", headers=headers)

    return handler


def _redirect(target: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        raise web.HTTPPermanentRedirect(target)

    return handler


async def catalogue(request: web.Request) -> web.Response:
    """The demo brand's catalogue and advisors, for the demo shop page."""
    return web.json_response(catalogue_document())


def catalogue_document() -> dict[str, Any]:
    return {
        "brand": {"slug": data.BRAND_SLUG, "name": data.BRAND_NAME, "name_ja": data.BRAND_NAME_JA},
        "featured_sku": data.FEATURED_SKU,
        "products": [
            {
                "sku": p.sku,
                "category": p.category,
                "name": {"ja": p.name_ja, "en": p.name_en},
                "description": {"ja": p.description_ja, "en": p.description_en},
                "size": p.size,
                "price_minor": p.price,
                "currency": data.CURRENCY,
                "image_url": p.image_url,
                "topics": list(p.topics),
            }
            for p in data.CATALOGUE
        ],
        "advisors": [
            {
                "key": s.key,
                "display_name": s.display_name,
                "display_name_en": s.display_name_en,
                "team": s.team,
                "skills": list(s.skills),
                "languages": list(s.languages),
                "photo_url": s.photo_url,
                "bio": {"ja": s.bio, "en": s.bio_en},
            }
            for s in data.STAFF
            if s.role is Role.ADVISOR
        ],
    }


async def demo_outbox(request: web.Request) -> web.Response:
    """The demo outbox's mails, newest first (``?limit=0`` just says it is on): what each was
    sent to, its subject and time, and its text body; never a mail's HTML."""
    outbox = outbox_of(request.app[SETTINGS])
    if outbox is None:  # registered only when on; the settings cannot change meanwhile
        raise web.HTTPNotFound()
    raw = request.query.get("limit", str(OUTBOX_KEEP))
    if not raw.isdigit():
        return web.json_response(
            {"error": {"code": "validation_failed", "message": "limit is a whole number", "details": None}},
            status=422,
        )
    mails = await asyncio.to_thread(outbox.newest, min(int(raw), OUTBOX_KEEP))
    document = {
        "outbox": True,
        "keeps": outbox.keep,
        "mails": [
            {
                "id": m.id,
                "to": m.to,
                "subject": m.subject,
                "sent_at": m.sent_at.isoformat(),
                "text": m.text,
                "attachments": list(m.attachments),
            }
            for m in mails
        ],
    }
    # The mails hold booking links: no shared cache may keep them.
    return web.json_response(document, headers={"Cache-Control": "no-store"})


def setup_routes(app: web.Application) -> None:
    resources: set[AbstractResource] = set()
    app[PAGE_RESOURCES] = resources
    app[PAGE_SHELL] = ShellCache(WEB_DIR)
    app.on_response_prepare.append(_add_security_headers)
    if not WEB_DIR.is_dir():
        # An installed wheel has no web/ folder: the API still works, pages do not.
        log.warning("no web/ folder, so no pages are served", web_dir=str(WEB_DIR))
        return

    def get(path: str, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> None:
        resource = app.router.add_get(path, handler).resource
        assert resource is not None
        resources.add(resource)

    # Exact pages first: a static folder with the same prefix would otherwise answer them.
    for path, relative in PAGES.items():
        get(path, _file(relative))
        if path.endswith("/") and path != "/":
            get(path.rstrip("/"), _redirect(path))
    for name in ROOT_FILES:
        get(f"/{name}", _file(name))
    # Every page file at its own address too (links such as /admin/catalogue.html), in the
    # shell: the static folders below would otherwise send the bare file. (/demo/mail.html is
    # harmless without the outbox: its data address is the one that is 404 then.)
    # web/index.html is only "/": the static folders never served web/'s own root either.
    for relative in page_files(WEB_DIR):
        if "/" in relative:
            get(f"/{relative}", _page(relative))
    get("/demo/catalogue.json", catalogue)
    if outbox_of(app[SETTINGS]) is not None:
        # Demos without SMTP keep their mails here; without the outbox the addresses are 404.
        log.warning("the demo mail outbox is on: every mail is readable at /demo/mail")
        get("/demo/mail", _file("demo/mail.html"))
        get("/demo/mail.json", demo_outbox)
    for folder in sorted(p for p in WEB_DIR.iterdir() if p.is_dir()):
        resources.add(app.router.add_static(f"/{folder.name}/", folder, follow_symlinks=False))
