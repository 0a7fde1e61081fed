"""Fixtures of the production-topology test: the whole shape (tests/topology/stack.py), started
once inside the private network namespace, and Debian's Chromium with a fake camera and
microphone. Outside the namespace the run is refused, not skipped (scripts/topology enters it).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from tests.topology.stack import PG_SOCKET_DIR, DatabaseProxy, Stack, add_addresses, make_certificate, psql

CHROMIUM = os.environ.get("LIVEDESK_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    # nginx and coturn (turns:) use a throw-away self-signed certificate.
    "--ignore-certificate-errors",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if (
        any("tests/topology" in str(item.fspath) for item in items)
        and os.environ.get("LIVEDESK_IN_NETNS") != "1"
    ):
        pytest.exit(
            "tests/topology runs inside the private network namespace: use scripts/topology", returncode=4
        )
    missing = [tool for tool in ("nginx", "turnserver", "redis-server", "psql") if not shutil.which(tool)]
    if missing or not Path(CHROMIUM).exists():
        pytest.exit(
            f"missing for tests/topology: {missing or CHROMIUM} (scripts/test installs them)", returncode=4
        )


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    add_addresses()
    home = tmp_path / "stack"
    home.mkdir()
    make_certificate(home)
    database = f"livedesk_topology_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    psql(f'CREATE DATABASE "{database}"')
    proxy = DatabaseProxy(f"{PG_SOCKET_DIR}/.s.PGSQL.5432")
    await proxy.start()
    shape = Stack(home, database, proxy)
    try:
        await asyncio.gather(shape.start_redis(), shape.start_s3(), shape.start_coturn(), shape.seed())
        shape.start_replica("app1")
        shape.start_replica("app2")
        await asyncio.gather(shape.ready("app1"), shape.ready("app2"))
        await shape.start_nginx()
        yield shape
    finally:
        await shape.stop()
        for name, proc in shape.procs.items():
            print(f"--- {name} ({proc.log}) ---\n{proc.tail(15)}")
        psql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield launched
        finally:
            await launched.close()
