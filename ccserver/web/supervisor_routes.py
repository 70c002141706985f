"""Supervisor actions over the API (roles supervisor and admin; an agent gets 403), each audited:

- ``POST /api/supervisor/spy`` ``{"agent": ext, "mode": "listen"|"whisper"|"barge", "phone"?}`` — ring the
  supervisor's phone into ChanSpy on the agent's call;
- ``POST /api/supervisor/agents/{ext}/pause`` ``{"reason"?}`` and ``…/logout`` — force pause / sign out;
- ``POST /api/supervisor/calls/{uniqueid}/priority`` ``{"priority": n}`` — move a waiting caller;
- ``GET /supervisor`` — the console page for all of these, and recorded calls to play.
"""

from __future__ import annotations

from typing import Any

from ccserver.texts import T
from ccserver.web.agent_routes import actor_of, agent_answer
from ccserver.web.context import WebContext
from ccserver.web.http import HTTPError, Req, Response, Router, html_response

ROLES = ("supervisor",)
SPY_FIELDS = {"agent", "mode", "phone"}


class SupervisorRoutes:
    def __init__(self, ctx: WebContext):
        self.ctx = ctx

    def register(self, router: Router) -> None:
        router.add("POST", "/api/supervisor/spy", self.spy, access="api", roles=ROLES)
        router.add("POST", "/api/supervisor/agents/{ext}/pause", self.pause, access="api", roles=ROLES)
        router.add("POST", "/api/supervisor/agents/{ext}/logout", self.logout, access="api", roles=ROLES)
        router.add("POST", "/api/supervisor/calls/{uniqueid}/priority", self.priority, access="api", roles=ROLES)
        router.add("GET", "/supervisor", self.page, access="page", roles=ROLES)

    def _service(self) -> Any:
        if self.ctx.supervisor is None:
            raise HTTPError(503, T("supervisor actions need an Asterisk (ami.host or ami.servers)"))
        return self.ctx.supervisor


    async def spy(self, req: Req) -> Response:
        body = req.json()
        unknown = set(body) - SPY_FIELDS
        if unknown:
            raise HTTPError(400, T("unknown field(s): {unknown}", unknown=', '.join(sorted(unknown))),
                            field=sorted(unknown)[0])
        return await agent_answer(self._service().spy(actor_of(req), body.get("agent"), body.get("mode"),
                                                      body.get("phone")))

    async def pause(self, req: Req) -> Response:
        body = req.json() if req.body else {}
        unknown = set(body) - {"reason"}
        if unknown:
            raise HTTPError(400, T("unknown field(s): {unknown}", unknown=', '.join(sorted(unknown))),
                            field=sorted(unknown)[0])
        return await agent_answer(self._service().force_pause(actor_of(req), req.path_params["ext"],
                                                              body.get("reason")))

    async def logout(self, req: Req) -> Response:
        return await agent_answer(self._service().force_logout(actor_of(req), req.path_params["ext"]))

    async def priority(self, req: Req) -> Response:
        body = req.json()
        if "priority" not in body:
            raise HTTPError(400, T("priority is required"), field="priority")
        return await agent_answer(self._service().change_priority(actor_of(req), req.path_params["uniqueid"],
                                                                  body["priority"]))

    async def page(self, req: Req) -> Response:
        """The supervisor console: the agents signed in (with their extension, which the actions take), live
        state and the callers waiting (filled by supervisor.js from /api/agents and /api/queues), recent recorded
        calls with a player (/api/calls, /api/recordings)."""
        p = req.principal
        assert p is not None
        signed_in = await self.ctx.agents.signed_in() if self.ctx.agents is not None else []
        page = self.ctx.templates.render(
            "supervisor.html", req.lang, principal=p, csrf_token=self.ctx.signer.csrf_token(p.session_id),
            agents=signed_in, actions=self.ctx.supervisor is not None)
        return html_response(page)
