"""The CSRF rule's real cases in a real browser (issue 18, item 3), with no WebRTC: an advisor
signed in on the same browser opens the demo shop's widget in another tab and chats with
themself as the shopper, and every page reaches the server through a proxy that refuses
websocket upgrades, so the advisor console and the widget work over long polling only.

The proxy is the real way a network blocks websockets: it forwards plain HTTP and answers an
``Upgrade: websocket`` request with 403. It records what it forwarded, so the test can show
that the staff cookie rode on the shopper's requests and on the staff socket's polls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict
from playwright.async_api import Browser, Page, expect

from livedesk.demo import data
from livedesk.demo.seed import DEMO_PASSWORD
from livedesk.identity import SESSION_COOKIE

ADVISOR = next(s for s in data.STAFF if s.key == "sakura-tanaka")
# Hop-by-hop headers end at the proxy; lengths are recomputed for the forwarded body.
_HOP = {"connection", "keep-alive", "upgrade", "transfer-encoding", "content-length", "te", "trailer"}


@dataclass
class Forwarded:
    method: str
    path: str
    status: int
    with_staff_cookie: bool


@dataclass
class NoWebsocketProxy:
    upstream: str
    url: str = ""
    refused_upgrades: int = 0
    forwarded: list[Forwarded] = field(default_factory=list)

    def saw(self, method: str, path: str, status: int) -> list[Forwarded]:
        return [f for f in self.forwarded if (f.method, f.path, f.status) == (method, path, status)]


@pytest.fixture
async def proxy(server: str) -> AsyncIterator[NoWebsocketProxy]:
    state = NoWebsocketProxy(upstream=server)
    # The browser's cookies pass through as headers; the proxy keeps none of its own.
    http = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False)

    async def forward(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            state.refused_upgrades += 1
            return web.Response(status=403, text="websockets are blocked on this network")
        # The Host header goes through unchanged: the app compares Origin with it.
        headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in _HOP)
        async with http.request(
            request.method,
            state.upstream + request.path_qs,
            headers=headers,
            data=await request.read(),
            allow_redirects=False,
        ) as answer:
            body = await answer.read()
            back = CIMultiDict((k, v) for k, v in answer.headers.items() if k.lower() not in _HOP)
        cookie = f"{SESSION_COOKIE}=" in request.headers.get("Cookie", "")
        state.forwarded.append(Forwarded(request.method, request.path, answer.status, cookie))
        return web.Response(status=answer.status, headers=back, body=body)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    front = TestServer(app, host="127.0.0.1")
    await front.start_server()
    state.url = str(front.make_url("")).rstrip("/")
    try:
        yield state
    finally:
        await front.close()
        await http.close()


async def sign_in(page: Page) -> None:
    # A locator, not wait_for_function: this context keeps the page's CSP (no 'unsafe-eval'),
    # and Playwright's in-page polling of a string predicate needs eval when the first check fails.
    await expect(page.locator("html.i18n-ready")).to_have_count(1)
    await page.fill("#email", ADVISOR.email)
    await page.fill("#password", DEMO_PASSWORD)
    await page.click("#signin-form button[type=submit]")
    await expect(page.locator("#console")).to_be_visible()
    # The presence shown comes from the server over the staff socket: it is connected.
    await expect(page.locator("#presence-state")).to_have_attribute(
        "data-status", "available", timeout=20_000
    )


async def test_signed_in_advisor_opens_the_shop_widget_and_chats_with_websockets_blocked(
    proxy: NoWebsocketProxy, browser: Browser
) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    try:
        console = await context.new_page()
        await console.goto(proxy.url + "/staff/")
        await sign_in(console)

        # Another tab of the same browser (the staff cookie included): the shop and its widget.
        shop = await context.new_page()
        await shop.goto(proxy.url + "/demo/shop")
        await shop.locator(".ld-launcher").click()
        widget = shop.frame_locator(".ld-frame")
        await expect(widget.locator("#view-start")).to_be_visible(timeout=15_000)
        await widget.locator("#talk-chat").click()
        await expect(widget.locator("#view-queue")).to_be_visible(timeout=15_000)

        offer = console.locator(".offer")
        await expect(offer).to_be_visible(timeout=20_000)
        await offer.get_by_role("button", name="Accept").click()
        workspace = console.locator(".workspace")
        await expect(workspace).to_be_visible()
        await expect(widget.locator("#chat-panel")).to_be_visible(timeout=20_000)
        await expect(widget.locator("#chat-only-text")).to_contain_text("You are chatting with Sakura Tanaka")

        box = workspace.get_by_label("Message to the shopper")
        await box.fill("Welcome to Hanami, how can I help?")
        await box.press("Enter")
        await expect(widget.locator(".msg-theirs", has_text="how can I help")).to_be_visible(timeout=15_000)
        await widget.locator("#chat-input").fill("Which serum suits dry skin?")
        await widget.locator(".send-button").click()
        await expect(workspace.locator(".msg-shopper .msg-body")).to_have_text(
            "Which serum suits dry skin?", timeout=15_000
        )
    finally:
        await context.close()

    # Both sockets tried websockets first and were refused; everything went over polling.
    assert proxy.refused_upgrades >= 2
    # The shopper's visit started with the advisor's cookie riding along, and was not blocked.
    assert [f.with_staff_cookie for f in proxy.saw("POST", "/api/v1/visitors", 201)] == [True]
    # The staff socket's packets were POSTed with the cookie and accepted.
    assert any(f.with_staff_cookie for f in proxy.saw("POST", "/socket.io/", 200))
    assert not [f for f in proxy.forwarded if f.status == 403]
