"""One-time websocket tickets: ``POST /api/ws-ticket`` issues one, the websocket handshake redeems it.

A ticket is 32 random bytes (URL-safe), valid ``TICKET_SECONDS``, bound to the user and the socket kind, and
usable once. With Redis it lives there (``ccserver:ws-ticket:<ticket>``, redeemed with GETDEL) so the socket may
land on any node; otherwise in this process. The expiry is checked against the injected clock as well as Redis'
own TTL, so tests move time with :class:`ccserver.clock.ManualClock`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

TICKET_SECONDS = 30.0
REDIS_PREFIX = "ccserver:ws-ticket:"
MAX_TICKET_LENGTH = 64


@dataclass(frozen=True, slots=True)
class Grant:
    """Who a ticket was issued to, for which socket kind, and until when (epoch seconds)."""

    user_id: int
    username: str
    role: str
    socket: str
    expires_at: float
    session_id: str = ""  # the login that asked for it: when that ends, its sockets close


class TicketRefused(Exception):
    """Why a ticket did not open a socket: ``reason`` is ``missing``, ``invalid`` (unknown, used or expired) or
    ``wrong_socket``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _check(grant: Grant | None, socket: str, now: float) -> Grant:
    if grant is None or grant.expires_at <= now:
        raise TicketRefused("invalid")
    if grant.socket != socket:
        raise TicketRefused("wrong_socket")
    return grant


def _well_formed(ticket: str | None) -> str:
    if not ticket:
        raise TicketRefused("missing")
    if len(ticket) > MAX_TICKET_LENGTH or not ticket.isascii():
        raise TicketRefused("invalid")
    return ticket


class MemoryTickets:
    def __init__(self, now: Callable[[], float], lifetime: float = TICKET_SECONDS) -> None:
        self._now = now
        self.lifetime = lifetime
        self._grants: dict[str, Grant] = {}

    async def issue(self, user_id: int, username: str, role: str, socket: str,
                    session_id: str = "") -> tuple[str, Grant]:
        now = self._now()
        # Drop the expired ones while we are here: the dict never outgrows the tickets of the last 30 s.
        for key in [k for k, g in self._grants.items() if g.expires_at <= now]:
            del self._grants[key]
        ticket = secrets.token_urlsafe(32)
        grant = Grant(user_id, username, role, socket, now + self.lifetime, session_id)
        self._grants[ticket] = grant
        return ticket, grant

    async def redeem(self, ticket: str | None, socket: str) -> Grant:
        key = _well_formed(ticket)
        return _check(self._grants.pop(key, None), socket, self._now())


class RedisTickets:
    def __init__(self, redis: Any, now: Callable[[], float], lifetime: float = TICKET_SECONDS) -> None:
        self.redis = redis
        self._now = now
        self.lifetime = lifetime

    async def issue(self, user_id: int, username: str, role: str, socket: str,
                    session_id: str = "") -> tuple[str, Grant]:
        ticket = secrets.token_urlsafe(32)
        grant = Grant(user_id, username, role, socket, self._now() + self.lifetime, session_id)
        await self.redis.set(REDIS_PREFIX + ticket, json.dumps(asdict(grant)), ex=int(self.lifetime) + 1, nx=True)
        return ticket, grant

    async def redeem(self, ticket: str | None, socket: str) -> Grant:
        key = _well_formed(ticket)
        raw = await self.redis.getdel(REDIS_PREFIX + key)  # single use across every node
        grant = None
        if raw is not None:
            try:
                grant = Grant(**json.loads(raw))
            except (ValueError, TypeError):
                grant = None
        return _check(grant, socket, self._now())
