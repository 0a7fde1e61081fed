"""Client addresses behind the shipped nginx, attacked from outside.

The real Debian nginx runs ``deploy/nginx.conf`` (only its ports, file paths and upstream
address are templated; every other line is as shipped) in front of the real app, over TLS with
a throw-away certificate. Clients connect from two loopback addresses (127.0.0.2 and
127.0.0.3), so nginx sees two different clients; the app trusts only nginx (127.0.0.1).

Proven here: per-address budgets (visits, Socket.IO connections) count per real client through
both proxied locations; a forged X-Forwarded-For from a client is never believed, neither for a
budget nor for the /metrics allow-list; Host, X-Forwarded-Proto, X-Real-IP and X-Forwarded-For
arrive at the app in both locations. scripts/test installs nginx; without it these tests skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from livedesk.app import create_app
from livedesk.settings import Settings
from tests.conftest import wait_until

NGINX_CONF = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
SHOPPER_A = "127.0.0.2"
SHOPPER_B = "127.0.0.3"
PROXY = "127.0.0.1"
# The headers nginx is to pass on every proxied request, as the app received them.
SEEN = ("Host", "X-Forwarded-For", "X-Real-IP", "X-Forwarded-Proto")

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (scripts/test installs it)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((PROXY, 0))
        port: int = sock.getsockname()[1]
        return port


def templated(conf: str, *, app_port: int, http_port: int, https_port: int, home: Path) -> str:
    """The shipped config with only what this machine needs changed. Each replaced line must
    be there exactly once, so a config that drifts fails here instead of being tested in a
    shape nobody ships."""
    swaps = [
        ("worker_processes auto;", "worker_processes 1;"),
        ("listen 80;", f"listen {PROXY}:{http_port};"),
        ("listen 443 ssl;", f"listen {PROXY}:{https_port} ssl;"),
        ("/etc/nginx/certs/fullchain.pem", f"{home}/fullchain.pem"),
        ("/etc/nginx/certs/privkey.pem", f"{home}/privkey.pem"),
        ("root /var/www/acme;", f"root {home}/acme;"),
        ("access_log /dev/stdout main;", f"access_log {home}/access.log main;"),
        ("error_log /dev/stderr warn;", f"error_log {home}/error.log warn;"),
        # Scratch files in the test's directory, not the system's /var/lib/nginx.
        (
            "http {",
            "http {\n"
            + "".join(f"    {kind}_temp_path {home}/{kind};\n" for kind in ("client_body", "proxy"))
            + "".join(f"    {kind}_temp_path {home}/{kind};\n" for kind in ("fastcgi", "uwsgi", "scgi")),
        ),
    ]
    for old, new in swaps:
        assert conf.count(old) == 1, f"deploy/nginx.conf no longer has exactly one {old!r}"
        conf = conf.replace(old, new)
    # The two app processes become the one app under test.
    servers = re.findall(r"^\s*server \d+\.\d+\.\d+\.\d+:8080 [^;]*;\n", conf, flags=re.MULTILINE)
    assert len(servers) == 2, servers
    conf = conf.replace(servers[0], f"        server {PROXY}:{app_port} max_fails=3 fail_timeout=10s;\n")
    return conf.replace(servers[1], "")


@dataclass
class Proxied:
    """nginx in front of the app; ``seen`` holds the headers of each request the app got."""

    url: str
    http_url: str
    seen: list[dict[str, str]] = field(default_factory=list)

    def session(self, address: str, headers: dict[str, str] | None = None) -> aiohttp.ClientSession:
        # Bound to one loopback address: that is the client address nginx sees.
        connector = aiohttp.TCPConnector(local_addr=(address, 0), ssl=False)
        return aiohttp.ClientSession(connector=connector, headers=headers)

    async def shopper_socket(
        self, address: str, token: str, headers: dict[str, str] | None = None
    ) -> tuple[socketio.AsyncClient, aiohttp.ClientSession, list[Any]]:
        """A real Socket.IO client from ``address``; the third item collects connect errors."""
        http = self.session(address)
        sio = socketio.AsyncClient(reconnection=False, http_session=http, ssl_verify=False)
        errors: list[Any] = []

        async def connect_error(data: Any = None) -> None:
            errors.append(data)

        sio.on("connect_error", connect_error, namespace="/shopper")
        with contextlib.suppress(socketio.exceptions.ConnectionError):
            await sio.connect(
                self.url,
                namespaces=["/shopper"],
                auth={"token": token},
                headers=headers or {},
                transports=["websocket"],
                wait_timeout=5,
            )
        return sio, http, errors


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_key=SecretStr("test-secret-" + uuid.uuid4().hex),
        log_level="warning",
        trusted_proxies=[PROXY],
        # Only shopper B may read /metrics without the token; nginx itself may not.
        metrics_allow=[f"{SHOPPER_B}/32"],
        shopper_connect_rate_limit="3/minute",
    )


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throw-away self-signed certificate (nginx's TLS server block needs one)."""
    home = tmp_path_factory.mktemp("certificate")
    key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1")
    files = ("-keyout", str(home / "privkey.pem"), "-out", str(home / "fullchain.pem"))
    openssl = shutil.which("openssl") or "/usr/bin/openssl"
    subprocess.run(  # noqa: S603 - fixed arguments
        [openssl, "req", "-x509", *key, "-subj", "/CN=localhost", *files],
        check=True,
        capture_output=True,
    )
    return home


@pytest.fixture
async def proxied(settings: Settings, certificate: Path, tmp_path: Path) -> AsyncIterator[Proxied]:
    assert NGINX is not None
    home = tmp_path / "nginx"
    (home / "acme").mkdir(parents=True)
    for name in ("fullchain.pem", "privkey.pem"):
        shutil.copyfile(certificate / name, home / name)
    app = create_app(settings)
    http_port, https_port = _free_port(), _free_port()
    proxied = Proxied(url=f"https://{PROXY}:{https_port}", http_url=f"http://{PROXY}:{http_port}")

    async def record(request: web.Request, response: web.StreamResponse) -> None:
        proxied.seen.append({"path": request.path} | {name: request.headers.get(name, "") for name in SEEN})

    app.on_response_prepare.append(record)
    async with TestServer(app, host=PROXY) as server:
        assert server.port is not None
        conf = templated(
            NGINX_CONF.read_text(),
            app_port=server.port,
            http_port=http_port,
            https_port=https_port,
            home=home,
        )
        (home / "nginx.conf").write_text(conf)
        # As root, nginx's workers would otherwise run as nobody and not reach the test's files.
        user = "user root; " if os.geteuid() == 0 else ""
        process = await asyncio.create_subprocess_exec(
            NGINX,
            *("-p", str(home), "-c", str(home / "nginx.conf"), "-e", str(home / "error.log")),
            *("-g", f"{user}daemon off; master_process on; pid {home}/nginx.pid;"),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )

        async def listening() -> bool:
            if process.returncode is not None:
                log = (home / "error.log").read_text() if (home / "error.log").exists() else ""
                raise AssertionError(f"nginx refused deploy/nginx.conf:\n{log}")
            try:
                _, writer = await asyncio.open_connection(PROXY, https_port)
            except OSError:
                return False
            writer.close()
            return True

        try:
            await wait_until(listening, within=10)
            yield proxied
        finally:
            process.terminate()
            await process.wait()


async def _visit(http: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None) -> int:
    async with http.post(url + "/api/v1/visitors", json={}, headers=headers) as response:
        if response.status == 429:
            body = await response.json()
            assert body["error"]["code"] == "rate_limited", body
        return response.status


async def test_each_client_address_has_its_own_budget_and_a_forged_header_is_not_believed(
    proxied: Proxied,
) -> None:
    """Visits are 30 a minute per address. Through nginx, shopper A spends its own 30, then
    cannot get more by naming other addresses in X-Forwarded-For; shopper B, behind the same
    nginx, still has all of its budget."""
    async with proxied.session(SHOPPER_A) as a, proxied.session(SHOPPER_B) as b:
        assert [await _visit(a, proxied.url) for _ in range(30)] == [201] * 30
        assert await _visit(a, proxied.url) == 429
        for forged in ("198.51.100.7", "127.0.0.3", "10.0.0.1, 198.51.100.8", "unknown"):
            assert await _visit(a, proxied.url, {"X-Forwarded-For": forged}) == 429, forged
        assert await _visit(b, proxied.url) == 201
    addresses = {seen["X-Real-IP"] for seen in proxied.seen if seen["path"] == "/api/v1/visitors"}
    assert addresses == {SHOPPER_A, SHOPPER_B}


async def test_socket_connections_are_counted_per_client_through_the_socket_location(
    proxied: Proxied,
) -> None:
    """Shopper socket connections are 3 a minute per address here (the /socket.io/ location of
    the config): A's fourth is refused, with or without a forged header; B still connects."""
    async with proxied.session(SHOPPER_B) as b, b.post(proxied.url + "/api/v1/visitors", json={}) as response:
        assert response.status == 201, await response.text()
        token = (await response.json())["token"]
    opened: list[tuple[socketio.AsyncClient, aiohttp.ClientSession, list[Any]]] = []
    try:
        for _ in range(3):
            opened.append(await proxied.shopper_socket(SHOPPER_A, token))
            assert opened[-1][0].connected, opened[-1][2]
        for headers in ({}, {"X-Forwarded-For": "198.51.100.7"}):
            opened.append(await proxied.shopper_socket(SHOPPER_A, token, headers))
            sio, _, errors = opened[-1]
            assert not sio.connected
            assert errors, "refused without a reason"
            assert "Too many connections" in str(errors[0]), errors
        opened.append(await proxied.shopper_socket(SHOPPER_B, token))
        assert opened[-1][0].connected, opened[-1][2]
    finally:
        for sio, http, _ in opened:
            await sio.disconnect()
            await http.close()
    sockets = [seen for seen in proxied.seen if seen["path"].startswith("/socket.io/")]
    assert {seen["X-Real-IP"] for seen in sockets} == {SHOPPER_A, SHOPPER_B}


async def test_metrics_allow_list_holds_through_the_proxy(proxied: Proxied) -> None:
    """Only 127.0.0.3 may read /metrics without the token. nginx's own address (what the app
    sees as its peer) opens nothing, and A naming B's address in X-Forwarded-For is refused."""
    async with proxied.session(SHOPPER_A) as a, proxied.session(SHOPPER_B) as b:
        for forged in (None, SHOPPER_B, f"{SHOPPER_B}, {SHOPPER_B}", PROXY, "::ffff:127.0.0.3"):
            headers = {"X-Forwarded-For": forged} if forged else None
            async with a.get(proxied.url + "/metrics", headers=headers) as response:
                assert response.status == 403, forged
                assert (await response.json())["error"]["code"] == "metrics_forbidden"
        async with b.get(proxied.url + "/metrics") as response:
            assert response.status == 200
            assert "livedesk_queue_length" in await response.text()


async def test_host_proto_and_addresses_arrive_in_every_location(proxied: Proxied) -> None:
    """What the app receives from nginx: the Host the browser asked for (with its port, as the
    Origin check compares it), X-Forwarded-Proto https, X-Real-IP the client, and
    X-Forwarded-For ending with the client, after whatever the client wrote itself."""
    host = proxied.url.removeprefix("https://")
    forged = {"X-Forwarded-For": "203.0.113.66", "X-Real-IP": "203.0.113.66", "X-Forwarded-Proto": "http"}
    async with proxied.session(SHOPPER_A, headers=forged) as a:
        async with a.get(proxied.url + "/healthz") as response:
            assert response.status == 200
        async with a.get(proxied.url + "/socket.io/?EIO=4&transport=polling") as response:
            assert response.status == 200
        async with a.get(proxied.url + "/readyz") as response:
            assert response.status == 404  # for the orchestrator only, never proxied
        # Plain HTTP: nginx's own health check answers, everything else goes to HTTPS.
        async with a.get(proxied.http_url + "/nginx-health") as response:
            assert response.status == 200
        async with a.get(proxied.http_url + "/widget/", allow_redirects=False) as response:
            assert response.status == 301
            assert response.headers["Location"].startswith("https://")
    for path in ("/healthz", "/socket.io/"):
        seen = next(seen for seen in proxied.seen if seen["path"] == path)
        assert seen["Host"] == host, seen
        assert seen["X-Forwarded-Proto"] == "https", seen
        assert seen["X-Real-IP"] == SHOPPER_A, seen
        assert seen["X-Forwarded-For"] == f"203.0.113.66, {SHOPPER_A}", seen
    assert not [seen for seen in proxied.seen if seen["path"] == "/readyz"]
