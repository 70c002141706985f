"""client_address: the peer, or the rightmost forwarded address not a trusted proxy (pure, no HTTP)."""

from __future__ import annotations

import pytest

from ccserver.web.client_address import client_address, parse_address, parse_networks

TRUSTED = parse_networks(["10.0.0.0/8", "127.0.0.1/32", "2001:db8:ffff::/48"])


@pytest.mark.parametrize("peer, forwarded, expected", [
    ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),  # untrusted peer: its header means nothing
    ("127.0.0.1", ["198.51.100.1"], "198.51.100.1"),
    ("127.0.0.1", ["198.51.100.1, 10.1.1.1"], "198.51.100.1"),
    ("127.0.0.1", ["6.6.6.6, 198.51.100.1", "10.1.1.1"], "198.51.100.1"),  # several headers, in order
    ("127.0.0.1", ["198.51.100.1:5678"], "198.51.100.1"),  # with a port
    ("127.0.0.1", ["[2001:db8::7]:443"], "2001:db8::7"),
    ("127.0.0.1", ["2001:db8::7"], "2001:db8::7"),
    ("2001:db8:ffff::1", ["2001:db8::7"], "2001:db8::7"),
    ("::ffff:127.0.0.1", ["198.51.100.1"], "198.51.100.1"),  # dual-stack socket, mapped IPv4
    ("127.0.0.1", ["unknown"], "127.0.0.1"),
    ("127.0.0.1", ["198.51.100.1, not-an-ip, 10.1.1.1"], "10.1.1.1"),
    ("127.0.0.1", ["10.2.2.2, 10.1.1.1"], "10.2.2.2"),
    ("127.0.0.1", [], "127.0.0.1"),
    ("unix-socket", ["198.51.100.1"], "unix-socket"),
])
def test_client_address(peer, forwarded, expected):
    assert client_address(peer, forwarded, TRUSTED) == expected


def test_no_trusted_proxies_means_the_peer():
    assert client_address("127.0.0.1", ["198.51.100.1"], ()) == "127.0.0.1"


@pytest.mark.parametrize("text", ["", "1.2.3", "1.2.3.4.5", "::g", "[]:80", "999.1.1.1", "a:b:c", "1.2.3.4:x:y"])
def test_bad_addresses_parse_to_none(text):
    assert parse_address(text) is None
