"""What failed logins are counted against: an address, or an IPv6 client's /64."""

from __future__ import annotations

from telehealth.auth.throttle import UNKNOWN_SOURCE, source_of


def test_an_ipv4_address_is_its_own_source() -> None:
    assert source_of("203.0.113.7") == "203.0.113.7"
    assert source_of("::ffff:203.0.113.7") == "203.0.113.7"


def test_ipv6_addresses_of_one_subscriber_count_together() -> None:
    assert source_of("2001:db8:1:2::1") == source_of("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert source_of("2001:db8:1:3::1") != source_of("2001:db8:1:2::1")


def test_no_address_is_one_source_and_a_name_is_kept_short() -> None:
    assert source_of(None) == source_of("") == UNKNOWN_SOURCE
    assert source_of("testclient") == "testclient"
    assert len(source_of("x" * 100)) == 64
