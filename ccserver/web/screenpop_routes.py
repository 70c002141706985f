"""``POST /api/ws-ticket`` ``{"socket": "agent" | "wallboard" | …}`` → ``{"ticket", "url", "expires_in"}``: a
one-time ticket to open a websocket (screenpop/ws_tickets.py), for the signed-in user (session cookie + CSRF, or
a bearer token). 400 unknown socket, 403 role not allowed on it, 503 when the websocket listener is not running.
"""

from __future__ import annotations

from typing import Any

from ccserver.texts import T
from ccserver.web.context import WebContext
from ccserver.web.http import HTTPError, Req, Response, Router, json_response


class ScreenPopRoutes:
    def __init__(self, ctx: WebContext):
        self.ctx = ctx

    def register(self, router: Router) -> None:
        router.add("POST", "/api/ws-ticket", self.ticket, access="api")

    async def ticket(self, req: Req) -> Response:
        service: Any = self.ctx.screenpop
        if service is None:
            raise HTTPError(503, T("websockets are not running"))
        body = req.json()
        name = body.get("socket") if isinstance(body, dict) else None
        if not isinstance(name, str):
            raise HTTPError(400, "socket is required: one of " + ", ".join(sorted(service.socket_kinds())),
                            field="socket")
        kind = service.ws.kind(name)
        if kind is None or kind.handler is None:
            raise HTTPError(400, "unknown socket: one of " + ", ".join(sorted(service.socket_kinds())),
                            field="socket")
        p = req.principal
        assert p is not None
        if kind.roles is not None:
            p.require(*kind.roles)
        ticket, grant = await service.tickets.issue(p.user_id, p.username, p.role, name, p.session_id)
        await self.ctx.run_blocking(self.ctx.users.audit, "ws.ticket", p.user_id, p.username, req.client_ip,
                                    {"socket": name})
        return json_response({"ticket": ticket, "url": service.ws.url_for(kind, ticket),
                              "expires_in": int(service.tickets.lifetime)})
