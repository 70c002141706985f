"""``agi.allow``: which peer addresses may talk FastAGI (it answers with customer ids, tiers and agent interfaces)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

LOOPBACK = ("127.0.0.0/8", "::1/128")  # agi.allow's default: Asterisk on the same host
_ALLOW_CACHE_SIZE = 4096  # peer addresses remembered with their verdict (a handful of Asterisk servers in practice)


class PeerFilter:
    """``agi.allow``: whether a peer address may talk FastAGI. Verdicts are remembered per address text, so the
    per-connection cost is one dict look-up (parsing an address is ~2 us); the memory stays bounded under a
    scan from many addresses. An IPv4 peer seen on a dual-stack socket (``::ffff:10.0.0.5``) is matched as IPv4."""

    def __init__(self, networks: Iterable[str]) -> None:
        self.networks = [ipaddress.ip_network(n, strict=False) for n in networks]
        self.verdicts: dict[str, bool] = {}

    def allows(self, host: str) -> bool:
        verdict = self.verdicts.get(host)
        if verdict is None:
            verdict = self._decide(host)
            if len(self.verdicts) < _ALLOW_CACHE_SIZE:
                self.verdicts[host] = verdict
        return verdict

    def _decide(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.partition("%")[0])  # drop an IPv6 scope id
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)
