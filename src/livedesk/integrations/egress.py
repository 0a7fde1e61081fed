"""Where outgoing webhooks may connect: the public internet only, unless an operator allows
a network (``LIVEDESK_WEBHOOK_ALLOW_NETWORKS``).

An admin chooses the URL, and the delivery log shows what happened; without this rule a
webhook is a probe of the server's own network (loopback services, the cloud metadata
address, private hosts) with the answer shown to whoever set it up.

The rule is applied to the address actually connected to: ``GuardedResolver`` checks every
address a host name resolves to at delivery time, and aiohttp connects to the checked
addresses it returns, so a name that resolves to a public address when checked and to
127.0.0.1 a moment later (DNS rebinding) never reaches 127.0.0.1. Literal IP addresses never
reach a resolver in aiohttp, so ``refusal_for_url`` checks them before the request.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SETTING = "LIVEDESK_WEBHOOK_ALLOW_NETWORKS"
# Shared address space (carrier-grade NAT, RFC 6598): not public, and Python's is_private
# does not include it.
CGNAT = ipaddress.ip_network("100.64.0.0/10")
# The well-known NAT64 prefix (RFC 6052): the last 32 bits are the IPv4 address a translator
# connects to. (The local-use prefix 64:ff9b:1::/48 is not public, so it is refused as such.)
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class EgressRefused(OSError):
    """A webhook address outside the allowed networks. An OSError so aiohttp reports it as a
    failed connection (``ClientConnectorError.os_error``), like any unreachable host."""


def parse_networks(text: str) -> tuple[Network, ...]:
    """The comma-separated CIDRs of the setting; a bad entry stops the app at start."""
    networks: list[Network] = []
    for value in filter(None, (part.strip() for part in text.split(","))):
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ValueError(f"{SETTING}: '{value}' is not an address or CIDR network") from None
    return tuple(networks)


def _embedded(addr: ipaddress.IPv6Address) -> Iterable[ipaddress.IPv4Address]:
    """IPv4 addresses a public IPv6 address tunnels to (6to4, Teredo)."""
    if addr.sixtofour is not None:
        yield addr.sixtofour
    if addr.teredo is not None:
        yield from addr.teredo


def _kind(addr: Address) -> str | None:
    """Why ``addr`` is not a public address, or None when it is."""
    if addr.is_loopback:
        return "loopback"
    if addr.is_unspecified:
        return "unspecified"
    if addr.is_link_local:
        return "link-local"
    if isinstance(addr, ipaddress.IPv6Address) and addr.is_site_local:
        return "site-local"
    if addr.is_multicast:
        return "multicast"
    if addr in CGNAT:
        return "shared (CGNAT)"
    if addr.is_private:
        return "private"
    if addr.is_reserved or not addr.is_global:
        return "reserved"
    return None


def refusal(addr: Address, allow: Sequence[Network] = ()) -> str | None:
    """Why a webhook may not connect to ``addr`` (a short reason), or None when it may."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.scope_id:
        # fe80::1%eth0: the zone is no part of the network test.
        addr = ipaddress.IPv6Address(addr.compressed.split("%", 1)[0])
    if any(addr.version == net.version and addr in net for net in allow):
        return None
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            # ::ffff:a.b.c.d is a.b.c.d on a dual-stack socket: judge it as that address.
            return refusal(addr.ipv4_mapped, allow)
        if addr in NAT64:
            # Through a NAT64 translator this reaches its last 32 bits: judge that address.
            inner = ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
            reason = refusal(inner, allow)
            return None if reason is None else f"{addr} leads to {inner}: {reason}"
    kind = _kind(addr)
    if kind is not None:
        article = "an" if kind[0] in "aeiou" else "a"
        return f"{addr} is {article} {kind} address"
    if isinstance(addr, ipaddress.IPv6Address):
        for inner in _embedded(addr):
            reason = refusal(inner, allow)
            if reason is not None:
                return f"{addr} leads to {inner}: {reason}"
    return None


def literal_address(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def refusal_for_url(url: str, allow: Sequence[Network] = ()) -> str | None:
    """Why ``url`` is refused when its host is a literal IP address (or it has no valid host);
    None for host names (they are checked when resolved, at delivery) and allowed addresses."""
    try:
        host = URL(url).host
    except ValueError as exc:
        # Stored before this check existed, or never through the API: a reason, not a crash
        # of the delivery pass.
        return f"the URL is not valid ({exc})"
    if not host:
        return "the URL has no host"
    addr = literal_address(host)
    return None if addr is None else refusal(addr, allow)


class GuardedResolver(AbstractResolver):
    """The system resolver, keeping only the addresses the rule allows; EgressRefused when
    none is left. aiohttp connects to exactly the addresses returned here."""

    def __init__(self, allow: Sequence[Network], inner: AbstractResolver | None = None) -> None:
        self.allow = tuple(allow)
        self._inner = inner if inner is not None else DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        kept: list[ResolveResult] = []
        refused: list[str] = []
        for result in results:
            addr = literal_address(result["host"])
            reason = "not an IP address" if addr is None else refusal(addr, self.allow)
            if reason is None:
                kept.append(result)
            else:
                refused.append(reason)
        if not kept:
            reasons = "; ".join(dict.fromkeys(refused))
            raise EgressRefused(f"{host} resolves only to refused addresses ({reasons})")
        return kept

    async def close(self) -> None:
        await self._inner.close()


def guarded_session(allow: Sequence[Network]) -> aiohttp.ClientSession:
    """An HTTP client that connects only where the rule allows. No proxy from the
    environment (trust_env off): a proxy would connect on our behalf, unchecked."""
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(allow))
    return aiohttp.ClientSession(connector=connector, trust_env=False)
