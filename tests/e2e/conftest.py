"""End-to-end fixtures: the real app on a real port, driven by Debian's Chromium through
Playwright with a fake camera and microphone.

These tests make real WebRTC calls, so they run inside ../shared/tools/netns-run (a private
network namespace: Chromium gathers ICE candidates on its one test address, and no packet
leaves the machine). scripts/test does that; running them elsewhere is refused, not skipped.
Inside the namespace only SQLite is used (host TCP services are out of reach).
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from pydantic import SecretStr

from livedesk.app import create_app
from livedesk.demo.seed import DEMO_PASSWORD, seed_demo
from livedesk.kit.db import Database
from livedesk.kit.migrate import upgrade
from livedesk.kit.paths import WEB_DIR
from livedesk.settings import Settings
from tests.conftest import wait_until

__all__ = ["axe_violations", "screenshot", "wait_until"]

CHROMIUM = os.environ.get("LIVEDESK_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
VENDOR = Path(__file__).resolve().parents[2] / "web" / "vendor"
_BASE_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]


_WEB_FILE = re.escape(str(WEB_DIR))
UNCLOSED_WEB_FILE = f"ignore:unclosed file <_io.BufferedReader name='{_WEB_FILE}/:ResourceWarning"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if any("tests/e2e" in str(item.fspath) for item in items) and os.environ.get("LIVEDESK_IN_NETNS") != "1":
        pytest.exit(
            "tests/e2e make real WebRTC calls: run them inside ../shared/tools/netns-run (scripts/test does)",
            returncode=4,
        )
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM}: apt-get install chromium (scripts/test does)"
        pytest.exit(message, returncode=4)
    for item in items:
        # aiohttp's static file responses leave the file to the garbage collector when the
        # browser abandons a download (a page navigating away mid-image): a ResourceWarning in
        # aiohttp, not ours, that under filterwarnings=error failed about one run in five. Only
        # files of web/ are let through; any other unclosed file still fails the test.
        item.add_marker(pytest.mark.filterwarnings(UNCLOSED_WEB_FILE))


@pytest.fixture
def demo_password() -> str:
    return DEMO_PASSWORD


@pytest.fixture
async def e2e_settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'e2e.sqlite3'}",
        secret_key=SecretStr("e2e-" + uuid.uuid4().hex),
        log_level="warning",
        presence_grace_seconds=2.0,
        # Every browser here comes from 127.0.0.1: the per-address budgets (proved in
        # tests/integration/test_abuse_budgets.py) would count all the tests' shoppers as one.
        queue_waiting_per_address=0,
        queue_waiting_per_network=0,
        queue_address_rate_limit="1000/minute",
        queue_network_rate_limit="1000/minute",
        shopper_sockets_per_address=0,
        shopper_connect_rate_limit="1000/minute",
    )


@pytest.fixture
async def server(e2e_settings: Settings) -> AsyncIterator[str]:
    """The real app with the demo data, on 127.0.0.1 (a secure context for getUserMedia)."""
    await upgrade(e2e_settings.effective_database_url)
    db = Database(e2e_settings.effective_database_url)
    try:
        await seed_demo(db)
    finally:
        await db.dispose()
    app: web.Application = create_app(e2e_settings)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    try:
        yield str(test_server.make_url("")).rstrip("/")
    finally:
        await test_server.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=_BASE_FLAGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def new_page(browser: Browser) -> AsyncIterator[Any]:
    """Open a page in its own browser context (its own cookies and storage), camera and
    microphone allowed unless ``media=False`` (then the browser denies them, as a person who
    clicked "block" would)."""
    contexts: list[BrowserContext] = []

    async def open_page(
        url: str, *, media: bool = True, width: int = 1280, height: int = 800, locale: str = "en-US"
    ) -> Page:
        context = await browser.new_context(
            viewport={"width": width, "height": height},
            locale=locale,
            permissions=["camera", "microphone"] if media else [],
            # Lets the tests inject axe-core; the pages' own CSP is tested elsewhere.
            bypass_csp=True,
        )
        contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda error: print(f"[pageerror] {error}"))
        await page.goto(url)
        return page

    yield open_page
    for context in contexts:
        await context.close()


SERIOUS = ("serious", "critical")


async def axe_violations(page: Page, impacts: tuple[str, ...] = SERIOUS) -> list[dict[str, Any]]:
    """Run axe-core on the page once its text is in place; the violations of these impacts."""
    await page.wait_for_function("document.documentElement.classList.contains('i18n-ready')")
    await page.add_script_tag(path=str(VENDOR / "axe.min.js"))
    result = await page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [v for v in result["violations"] if v.get("impact") in impacts]


async def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=False)
    return path
