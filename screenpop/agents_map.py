"""Whose phone is ringing: (Asterisk server, member interface) → the user, kept in memory for the hot path.

Hot-desking: an agent's sign-in (ccserver/agents, ``agent_sessions``) names the phone they sit at, and wins;
otherwise the phone on the user's own record (``users.interface``: static members in queues.conf). The map is
read from SQL at start, again whenever an agent's sign-in changes (``AgentStateChanged`` to or from
``logged_out``), when a ringing phone is not in it (at most once per ``miss_interval``), and every ``refresh``
seconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("ccserver.screenpop")


@dataclass(frozen=True, slots=True)
class AgentRef:
    user_id: int
    username: str
    extension: str | None
    role: str = "agent"


def load_agent_map(session_factory: Callable[[], Any]) -> dict[tuple[str | None, str], AgentRef]:
    """Blocking: ``(server, interface)`` of every active sign-in, and ``(None, interface)`` of every user's own
    phone."""
    from sqlalchemy import select

    from ccserver.db.models import AgentSession, User

    out: dict[tuple[str | None, str], AgentRef] = {}
    with session_factory() as s:
        for user in s.scalars(select(User).where(User.active.is_(True), User.interface.is_not(None))):
            out[(None, user.interface)] = AgentRef(user.id, user.username, user.extension, user.role)
        rows = s.execute(select(AgentSession.server, AgentSession.interface, User.id, User.username, User.extension,
                                User.role)
                         .join(User, User.id == AgentSession.user_id)
                         .where(AgentSession.ended_at.is_(None), User.active.is_(True))).all()
        for server, interface, user_id, username, extension, role in rows:
            out[(server, interface)] = AgentRef(user_id, username, extension, role)
    return out


class AgentDirectory:
    def __init__(self, load: Callable[[], Awaitable[dict[tuple[str | None, str], AgentRef]]], *,
                 now: Callable[[], float], miss_interval: float = 1.0, refresh: float = 30.0) -> None:
        self._load = load
        self._now = now
        self.miss_interval = miss_interval
        self.refresh_every = refresh
        self._map: dict[tuple[str | None, str], AgentRef] = {}
        self._loaded_at = float("-inf")
        self._loading: asyncio.Future[None] | None = None

    def lookup(self, server: str, interface: str) -> AgentRef | None:
        """No I/O: the sign-in on that server, else the user whose own phone it is."""
        return self._map.get((server, interface)) or self._map.get((None, interface))

    def interfaces_of(self, user_id: int) -> list[tuple[str | None, str]]:
        return [key for key, ref in self._map.items() if ref.user_id == user_id]

    async def refresh(self) -> None:
        if self._loading is not None:
            return await self._loading
        self._loading = asyncio.ensure_future(self._reload())
        try:
            await self._loading
        finally:
            self._loading = None

    async def _reload(self) -> None:
        try:
            self._map = await self._load()
            self._loaded_at = self._now()
        except Exception as exc:  # noqa: BLE001 - keep the old map; the next trigger tries again
            log.warning("screen pop: could not read the agents' phones (%s)", exc)

    async def resolve(self, server: str, interface: str) -> AgentRef | None:
        """The hot path's lookup, reading SQL again only on a miss (rate-limited) or a stale map."""
        ref = self.lookup(server, interface)
        now = self._now()
        if ref is None and now - self._loaded_at >= self.miss_interval:
            await self.refresh()
            ref = self.lookup(server, interface)
        elif now - self._loaded_at >= self.refresh_every:
            asyncio.ensure_future(self.refresh())
        return ref

    def set_map(self, mapping: dict[tuple[str | None, str], AgentRef]) -> None:
        self._map = dict(mapping)
        self._loaded_at = self._now()
