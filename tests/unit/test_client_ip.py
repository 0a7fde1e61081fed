"""The client address behind a trusted proxy, and not otherwise."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from livedesk.kit.context import SETTINGS
from livedesk.kit.http import client_ip
from livedesk.settings import Settings


def _request(peer: str, forwarded: str | None, trusted: list[str]) -> web.Request:
    app = web.Application()
    app[SETTINGS] = Settings(trusted_proxies=trusted)
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    request = make_mocked_request("GET", "/", headers=headers, app=app)
    return request.clone(remote=peer)


def test_untrusted_peer_cannot_claim_another_address() -> None:
    assert client_ip(_request("203.0.113.9", "198.51.100.1", trusted=[])) == "203.0.113.9"
    assert client_ip(_request("203.0.113.9", "198.51.100.1", trusted=["10.0.0.5"])) == "203.0.113.9"


def test_trusted_proxy_names_the_client() -> None:
    # The client forged the first entry; nginx appended the real peer.
    request = _request("10.0.0.5", "1.2.3.4, 198.51.100.7", trusted=["10.0.0.5"])
    assert client_ip(request) == "198.51.100.7"


def test_chain_of_trusted_proxies() -> None:
    request = _request("10.0.0.5", "198.51.100.7, 10.0.0.6", trusted=["10.0.0.5", "10.0.0.6"])
    assert client_ip(request) == "198.51.100.7"
