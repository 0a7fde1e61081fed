"""The client address: the right-most X-Forwarded-For hop that is not one of our proxies, and
only when the peer is one of them. Whatever a client writes itself is never believed."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict
from pydantic import ValidationError

from livedesk.kit.context import SETTINGS
from livedesk.kit.http import client_ip
from livedesk.settings import Settings


def _request(peer: str, forwarded: str | list[str] | None, trusted: list[str]) -> web.Request:
    app = web.Application()
    app[SETTINGS] = Settings(trusted_proxies=trusted)
    lines = [forwarded] if isinstance(forwarded, str) else forwarded or []
    headers = CIMultiDict(("X-Forwarded-For", line) for line in lines)
    request = make_mocked_request("GET", "/", headers=headers, app=app)
    return request.clone(remote=peer)


def test_untrusted_peer_cannot_claim_another_address() -> None:
    assert client_ip(_request("203.0.113.9", "198.51.100.1", trusted=[])) == "203.0.113.9"
    assert client_ip(_request("203.0.113.9", "198.51.100.1", trusted=["10.0.0.5"])) == "203.0.113.9"
    # A client inside the proxies' network is a proxy only by its own address, not by a header.
    assert client_ip(_request("203.0.113.9", "10.0.0.5", trusted=["10.0.0.0/24"])) == "203.0.113.9"


def test_trusted_proxy_names_the_client() -> None:
    # The client forged the first entry; nginx appended the real peer.
    request = _request("10.0.0.5", "1.2.3.4, 198.51.100.7", trusted=["10.0.0.5"])
    assert client_ip(request) == "198.51.100.7"


def test_chain_of_trusted_proxies() -> None:
    request = _request("10.0.0.5", "198.51.100.7, 10.0.0.6", trusted=["10.0.0.5", "10.0.0.6"])
    assert client_ip(request) == "198.51.100.7"


def test_trusted_proxies_as_networks() -> None:
    # Containers get new addresses when they are recreated: a network is what stays.
    trusted = ["172.28.80.0/24", "fd00:28::/64"]
    assert client_ip(_request("172.28.80.2", "9.9.9.9, 198.51.100.7", trusted)) == "198.51.100.7"
    assert client_ip(_request("172.28.80.2", "198.51.100.7, 172.28.80.3", trusted)) == "198.51.100.7"
    assert client_ip(_request("fd00:28::2", "2001:db8::7", trusted)) == "2001:db8::7"
    assert client_ip(_request("172.28.81.2", "198.51.100.7", trusted)) == "172.28.81.2"


def test_a_forged_header_line_before_the_proxys_is_not_believed() -> None:
    """A client's own X-Forwarded-For line plus one appended as a second line by a proxy is
    one list, in order: the client's line is the left part, never the answer."""
    request = _request("10.0.0.5", ["127.0.0.1", "198.51.100.7"], trusted=["10.0.0.5"])
    assert client_ip(request) == "198.51.100.7"


def test_only_trusted_hops_name_the_leftmost() -> None:
    # Every hop is one of ours (a proxy's own health check): the left-most is as far as we know.
    request = _request("10.0.0.5", "10.0.0.6", trusted=["10.0.0.0/24"])
    assert client_ip(request) == "10.0.0.6"
    assert client_ip(_request("10.0.0.5", None, trusted=["10.0.0.5"])) == "10.0.0.5"


def test_a_hop_that_is_not_an_address_stops_at_the_last_trusted_one() -> None:
    # Never a string of the client's choosing as a rate-limit key or in an audit row.
    for junk in ("unknown", "", "<script>", "1.2.3.4.5", "::ffff::1::"):
        request = _request("10.0.0.5", f"198.51.100.7, {junk}", trusted=["10.0.0.5"])
        assert client_ip(request) == "10.0.0.5", junk
    request = _request("10.0.0.5", "198.51.100.7, junk, 10.0.0.6", trusted=["10.0.0.0/24"])
    assert client_ip(request) == "10.0.0.6"


def test_hops_with_ports_and_brackets() -> None:
    trusted = ["10.0.0.5"]
    assert client_ip(_request("10.0.0.5", "198.51.100.7:4711", trusted)) == "198.51.100.7"
    assert client_ip(_request("10.0.0.5", "[2001:db8::7]:4711", trusted)) == "2001:db8::7"
    assert client_ip(_request("10.0.0.5", " 2001:db8::7 ", trusted)) == "2001:db8::7"


def test_ipv4_mapped_addresses_are_one_client() -> None:
    # A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d: the same client, the same key,
    # and a proxy listed by its IPv4 address is still recognised.
    assert client_ip(_request("::ffff:10.0.0.5", "198.51.100.7", trusted=["10.0.0.5"])) == "198.51.100.7"
    assert client_ip(_request("10.0.0.5", "::ffff:198.51.100.7", trusted=["10.0.0.5"])) == "198.51.100.7"
    assert client_ip(_request("::ffff:203.0.113.9", None, trusted=[])) == "203.0.113.9"


def test_a_bad_trusted_proxy_entry_stops_the_start() -> None:
    with pytest.raises(ValidationError, match="not an address or CIDR"):
        Settings(trusted_proxies=["nginx"])
    assert Settings(trusted_proxies=[" 10.0.0.0/8 "]).trusted_proxies == ["10.0.0.0/8"]
