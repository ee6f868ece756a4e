"""Where webhooks may go: never into the service's own network, unless allowed by name.

A receiver's URL is refused when its host is, or resolves to, an address that is not public:
loopback, private, unique-local (IPv6), link-local (the cloud metadata service at
169.254.169.254 among them), unspecified, multicast or reserved. ``webhook_allow_hosts``
names the hosts allowed anyway (a receiver inside the hospital's network), by the name written
in the URL. The check is made when a receiver is registered and again at every delivery,
since DNS can change: the name is resolved, every address checked, and the connection made to
the checked address (a second lookup could answer differently: DNS rebinding), with the name
kept in the Host header and in TLS (SNI and the certificate check).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_KINDS = (
    ("is_loopback", "loopback"),
    ("is_link_local", "link-local"),
    ("is_unspecified", "unspecified"),
    ("is_multicast", "multicast"),
    ("is_private", "private"),
)


class TargetRefused(ValueError):
    """The URL may not be a webhook's target; the message says why and what to do."""


def refusal_of(address: IPAddress) -> str | None:
    """What kind of internal address ``address`` is (None: a public one)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for test, kind in _KINDS:
        if getattr(address, test):
            return kind
    return None if address.is_global else "reserved"


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


# A resolver that does not answer must not hold a registration (or a delivery) for long.
RESOLVE_TIMEOUT_S = 10


async def _resolve(host: str, port: int) -> list[IPAddress]:
    literal = _literal(host)
    if literal is not None:
        return [literal]
    lookup = asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    try:
        found = await asyncio.wait_for(lookup, RESOLVE_TIMEOUT_S)
    except (OSError, ValueError, TimeoutError) as exc:  # gaierror, an over-long IDNA label
        raise TargetRefused(f"the host {host} does not resolve") from exc
    # An IPv6 answer may carry a zone (fe80::1%eth0); the address alone is what is judged.
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in found]
    return list(dict.fromkeys(addresses))


@dataclass(frozen=True)
class Target:
    """Where one request goes: the URL to ask for, and what keeps the name in it."""

    url: httpx.URL
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


def pinned(url: httpx.URL, address: IPAddress) -> Target:
    """``url`` sent to ``address``: the name stays in the Host header and, over TLS, in the
    SNI and the certificate check (httpcore's ``sni_hostname``)."""
    extensions: dict[str, Any] = {"sni_hostname": url.host} if url.scheme == "https" else {}
    host = url.netloc.decode("ascii")
    return Target(url.copy_with(host=str(address)), {"Host": host}, extensions)


def _allowed(host: str, allow_hosts: Iterable[str]) -> bool:
    return host.lower() in {name.lower() for name in allow_hosts}


async def checked_target(url: str, allow_hosts: Iterable[str]) -> Target:
    """The request to make for ``url``, its host resolved and checked now; raises
    ``TargetRefused`` for a URL that may not be a webhook's target."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise TargetRefused("give the receiver's http(s) URL") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise TargetRefused("give the receiver's http(s) URL")
    if _allowed(parsed.host, allow_hosts):
        return Target(parsed)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    addresses = await _resolve(parsed.host, port)
    verb = "is" if _literal(parsed.host) is not None else "resolves to"
    for address in addresses:
        kind = refusal_of(address)
        if kind is not None:
            raise TargetRefused(
                f"{parsed.host} {verb} {address}, a {kind} address: webhooks go to public "
                "addresses only, unless an operator names the host in webhook_allow_hosts"
            )
    return pinned(parsed, addresses[0])
