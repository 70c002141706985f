"""Who is the client: the TCP peer, or — behind a trusted reverse proxy — the address it forwarded.

``X-Forwarded-For`` is whatever the client wrote plus what each proxy appended, so it is believed only as far
as it was written by proxies in ``http.trusted_proxies``: walking from the right (the hop nearest to us), the
first address that is not itself a trusted proxy is the client. A malformed entry stops the walk at the last
trusted hop (what a client writes to the left of our proxies can be anything). The address is what the login
budgets count and the audit log records.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(items: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def parse_address(text: str) -> Address | None:
    """``10.0.0.1``, ``10.0.0.1:5678``, ``2001:db8::1``, ``[2001:db8::1]:443`` -> the address; else None."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]  # IPv4 with a port
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:10.0.0.1 from a dual-stack socket is 10.0.0.1
    return address


def _trusted(address: Address, networks: Sequence[Network]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def client_address(peer: str, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str:
    """The client's address. ``forwarded_for``: every X-Forwarded-For header value, in order received."""
    hop = parse_address(peer)
    if hop is None:
        return peer
    if not trusted or not _trusted(hop, trusted):
        return str(hop)
    entries = [entry for value in forwarded_for for entry in value.split(",")]
    for entry in reversed(entries):
        address = parse_address(entry)
        if address is None:
            break
        if not _trusted(address, trusted):
            return str(address)
        hop = address
    return str(hop)
