"""The address rule of outgoing webhooks: public addresses only, unless a network is allowed,
with the disguises an IPv6 address can give an IPv4 one seen through."""

from __future__ import annotations

import ipaddress

import pytest

from livedesk.integrations.egress import parse_networks, refusal, refusal_for_url

REFUSED = {
    "127.0.0.1": "loopback",
    "127.255.0.9": "loopback",
    "::1": "loopback",
    "0.0.0.0": "unspecified",  # noqa: S104 (the address refused, not one bound to)
    "::": "unspecified",
    "10.1.2.3": "private",
    "172.16.0.1": "private",
    "192.168.1.1": "private",
    "fd00::1": "private",
    "169.254.169.254": "link-local",
    "fe80::1": "link-local",
    "fe80::1%eth0": "link-local",
    "fec0::1": "site-local",
    "100.64.0.1": "CGNAT",
    "100.127.255.254": "CGNAT",
    "224.0.0.1": "multicast",
    "ff02::1": "multicast",
    "240.0.0.1": "address",
    "255.255.255.255": "address",
    "192.0.2.1": "address",
    "198.18.0.1": "address",
    # An IPv4 address in IPv6 clothing is judged as the IPv4 address.
    "::ffff:127.0.0.1": "127.0.0.1 is a loopback",
    "::ffff:169.254.169.254": "169.254.169.254 is a link-local",
    "64:ff9b::a00:1": "leads to 10.0.0.1",
    "2002:7f00:1::": "leads to 127.0.0.1",
    "2002:a9fe:a9fe::1": "leads to 169.254.169.254",
    "::7f00:1": "reserved",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2": "address",
}

PUBLIC = ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"]


@pytest.mark.parametrize(("address", "why"), REFUSED.items(), ids=list(REFUSED))
def test_non_public_addresses_are_refused(address: str, why: str) -> None:
    reason = refusal(ipaddress.ip_address(address))
    assert reason is not None
    assert why in reason


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


def test_an_allowed_network_opens_only_itself() -> None:
    allow = parse_networks(" 127.0.0.0/8 , 10.5.0.0/16,")
    assert refusal(ipaddress.ip_address("127.0.0.1"), allow) is None
    assert refusal(ipaddress.ip_address("::ffff:127.0.0.1"), allow) is None
    assert refusal(ipaddress.ip_address("10.5.9.9"), allow) is None
    assert refusal(ipaddress.ip_address("10.6.0.1"), allow) is not None
    assert refusal(ipaddress.ip_address("::1"), allow) is not None
    assert refusal(ipaddress.ip_address("169.254.169.254"), allow) is not None


def test_setting_parse() -> None:
    assert parse_networks("") == ()
    assert parse_networks("10.0.0.1/8") == (ipaddress.ip_network("10.0.0.0/8"),)
    with pytest.raises(ValueError, match="LIVEDESK_WEBHOOK_ALLOW_NETWORKS: 'nonsense'"):
        parse_networks("10.0.0.0/8,nonsense")


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("http://127.0.0.1:8080/x", True),
        ("http://[::ffff:10.0.0.1]/x", True),
        ("https://169.254.169.254/latest/meta-data", True),
        ("http://user:pw@100.64.0.1/x", True),
        ("https://8.8.8.8/hook", False),
        # Names are judged by what they resolve to, when a delivery connects.
        ("http://localhost/x", False),
        ("https://hooks.example.com/x", False),
    ],
)
def test_url_with_a_literal_address(url: str, refused: bool) -> None:
    assert (refusal_for_url(url) is not None) is refused
