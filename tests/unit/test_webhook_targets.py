"""Which addresses webhooks may reach, and how a checked address is pinned (no network)."""

from __future__ import annotations

import ipaddress

import httpx

from telehealth.notifications.targets import pinned, refusal_of


def test_internal_addresses_are_named_and_public_ones_pass() -> None:
    kinds = {
        "127.0.0.1": "loopback",
        "::1": "loopback",
        "10.1.2.3": "private",
        "192.168.0.9": "private",
        "fd00::1": "private",  # unique-local
        "169.254.169.254": "link-local",  # cloud metadata
        "fe80::1": "link-local",
        "0.0.0.0": "unspecified",  # noqa: S104
        "::": "unspecified",
        "224.0.0.1": "multicast",
        "ff02::1": "multicast",
        "::ffff:10.0.0.1": "private",  # IPv4-mapped
        "100.64.0.1": "reserved",  # carrier-grade NAT
    }
    for address, kind in kinds.items():
        assert refusal_of(ipaddress.ip_address(address)) == kind, address
    for public in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"):
        assert refusal_of(ipaddress.ip_address(public)) is None


def test_a_pinned_request_keeps_the_name_in_host_and_tls() -> None:
    target = pinned(
        httpx.URL("https://his.example.vn:8443/hook?a=1"), ipaddress.ip_address("93.184.216.34")
    )
    assert str(target.url) == "https://93.184.216.34:8443/hook?a=1"
    assert target.headers == {"Host": "his.example.vn:8443"}
    assert target.extensions == {"sni_hostname": "his.example.vn"}
    plain = pinned(httpx.URL("http://his.example.vn/hook"), ipaddress.ip_address("2606:2800::1"))
    assert str(plain.url) == "http://[2606:2800::1]/hook"
    assert plain.headers == {"Host": "his.example.vn"} and plain.extensions == {}
