"""Screen pop as one component of ``ccserver run``: the bus, the lifecycle on the hub, the websocket listener with
the ``agent`` socket (and the ``wallboard`` path reserved for the wallboard module to claim with ``add_kind``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from websockets.asyncio.server import ServerConnection

from screenpop.bus import Socket
from screenpop.frames import seq_of
from screenpop.lifecycle import ScreenPop
from screenpop.ws_server import WsServer, sender
from screenpop.ws_tickets import Grant

log = logging.getLogger("ccserver.screenpop")

AGENT_PATH = "/ws/agent"
WALLBOARD_PATH = "/ws/wallboard"


class ScreenPopService:
    """``ws``: the listener (tickets, kinds); ``pop``: the lifecycle (None without an Asterisk: no pops, the
    listener still serves the other kinds)."""

    def __init__(self, ws: WsServer, bus: Any, pop: ScreenPop | None, hub: Any = None,
                 directory_refresh: Any = None) -> None:
        self.ws = ws
        self.bus = bus
        self.pop = pop
        self.hub = hub
        self._subscription: Any = None
        self.closers: list[Any] = []  # async callables run at stop (the card lookup's connections)
        ws.add_kind("agent", AGENT_PATH, self.agent_socket)
        if ws.kind("wallboard") is None:
            ws.add_kind("wallboard", WALLBOARD_PATH, None, roles=("supervisor", "admin"))  # claimed by the wallboard

    @property
    def tickets(self) -> Any:
        return self.ws.tickets

    def socket_kinds(self) -> Iterable[str]:
        return [name for name, kind in self.ws.kinds.items() if kind.handler is not None]

    async def start(self) -> None:
        await self.bus.start()
        if self.pop is not None:
            await self.pop.agents.refresh()
            if self.hub is not None:
                self._subscription = self.pop.subscribe(self.hub)
        await self.ws.start()

    async def stop(self) -> None:
        await self.ws.stop()
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
        await self.bus.stop()
        for close in self.closers:
            await close()

    async def agent_socket(self, ws: ServerConnection, grant: Grant, params: dict[str, str]) -> None:
        sock = Socket(grant.user_id, sender(ws))
        self.bus.local.add(sock)  # before the replay is read: frames published meanwhile are held, not lost
        try:
            last = params.get("last_seq")
            frames = await self.bus.replay(grant.user_id, int(last)) if last is not None else None
            if frames is None:
                if self.pop is not None:
                    seq, hello = await self.pop.hello(grant.user_id, grant.username)
                else:
                    seq, hello = 0, json.dumps({"type": "hello", "seq": 0, "state": None, "call": None,
                                                "agent": {"id": grant.user_id, "username": grant.username}})
                await ws.send(hello)
                sock.release(seq)
            else:
                for text in frames:
                    await ws.send(text)
                sock.release(seq_of(frames[-1]) if frames else int(last or 0))
            async for _message in ws:  # nothing to read from agents; discard (bounded by max_size)
                pass
        finally:
            self.bus.local.remove(sock)
