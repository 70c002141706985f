"""``/ws/wallboard``: the wallboard's snapshots (ccserver/wallboard) pushed over the screen-pop listener.

A socket gets the current snapshot at once, then every update the publisher makes (coalesced, encoded once,
written with the wallboard's shared-frame fan-out). Supervisors and admins only; same tickets as the agent socket
(``POST /api/ws-ticket {"socket": "wallboard"}``).
"""

from __future__ import annotations

from typing import Any

from websockets.asyncio.server import ServerConnection

from screenpop.ws_tickets import Grant

ROLES = ("supervisor",)  # and admin, who may do everything


class WallboardSockets:
    def __init__(self, publisher: Any) -> None:
        from ccserver.wallboard.fanout import SharedFrameFanout

        self.publisher = publisher
        self.connections: set[ServerConnection] = set()
        self.fanout = SharedFrameFanout()
        self._unsubscribe: Any = None  # subscribed while a wallboard is open: no updates built for nobody

    def _send(self, frame: Any) -> None:
        if self.connections:
            self.fanout.send(self.connections, frame)

    def register(self, ws_server: Any) -> None:
        ws_server.add_kind("wallboard", "/ws/wallboard", self.handler, roles=ROLES)

    async def handler(self, ws: ServerConnection, _grant: Grant, _params: dict[str, str]) -> None:
        frame = await self.publisher.frame()
        await ws.send(frame.text)
        self.connections.add(ws)
        if self._unsubscribe is None:
            self._unsubscribe = self.publisher.subscribe(self._send)
        try:
            async for _message in ws:  # nothing to read from a wallboard
                pass
        finally:
            self.connections.discard(ws)
            if not self.connections and self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None
