"""Agent sign-in over the API: the service the agent desktop calls (and scripts, with a bearer token).

- ``POST /api/agents/{ext}/login`` ``{"queues": [...], "interface": optional, "state_interface": optional,
  "server": optional, "force": optional}`` — sign in to the queues (and the personal queue) from a phone;
- ``POST /api/agents/{ext}/logout``, ``POST /api/agents/{ext}/pause`` ``{"reason"}``, ``POST …/unpause``;
- ``GET /api/agents/{ext}`` — the current sign-in.

Any user with an extension for themselves; a supervisor or admin for anyone (checked by the service). A sign-in
made from a web login ends with it (logout, expiry). Errors are JSON ``{"error", "field"?}`` with 400 / 403 /
404 / 409 / 422 / 503.
"""

from __future__ import annotations

from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

from ccserver.agents import Actor, AgentError, AgentService
from ccserver.texts import T
from ccserver.web.context import WebContext
from ccserver.web.http import HTTPError, Req, Response, Router, json_response

LOGIN_FIELDS = {"queues", "interface", "state_interface", "server", "force"}


def end_sign_ins_with_web_sessions(sessions: Any, agents: AgentService) -> None:
    """A web login that ends (logout, deactivation, expiry) signs its agent out of every queue at once."""
    sessions.on_session_ended.append(
        lambda principal, reason: agents.end_auth_session(principal.session_id, f"web {reason}"))


async def agent_answer(coro: Coroutine[Any, Any, dict[str, Any]]) -> Response:
    """The JSON answer of an agents-service call; its AgentError as the HTTP error it names."""
    try:
        result = await coro
    except AgentError as exc:
        raise HTTPError(exc.status, exc.message, **exc.extra) from None
    return json_response(result)


def actor_of(req: Req) -> Actor:
    p = req.principal
    assert p is not None
    return Actor(p.user_id, p.username, p.role, ip=req.client_ip, auth_session_id=p.session_id,
                 expires_at=datetime.fromtimestamp(p.expires_at, UTC))


class AgentRoutes:
    def __init__(self, ctx: WebContext):
        self.ctx = ctx

    def register(self, router: Router) -> None:
        router.add("POST", "/api/agents/{ext}/login", self.login, access="api")
        router.add("POST", "/api/agents/{ext}/logout", self.logout, access="api")
        router.add("POST", "/api/agents/{ext}/pause", self.pause, access="api")
        router.add("POST", "/api/agents/{ext}/unpause", self.unpause, access="api")
        router.add("GET", "/api/agents/{ext}", self.status, access="api")

    def _service(self) -> AgentService:
        if self.ctx.agents is None:
            raise HTTPError(503, T("agent sign-in needs an Asterisk (ami.host or ami.servers)"))
        return self.ctx.agents


    async def login(self, req: Req) -> Response:
        body = req.json()
        unknown = set(body) - LOGIN_FIELDS
        if unknown:
            raise HTTPError(400, T("unknown field(s): {unknown}", unknown=', '.join(sorted(unknown))),
                            field=sorted(unknown)[0])
        if "queues" not in body:
            raise HTTPError(400, T("queues is required (a list of queue names; may be empty)"), field="queues")
        for name in ("interface", "state_interface", "server"):
            if body.get(name) is not None and not isinstance(body[name], str):
                raise HTTPError(400, T("{name} must be a string", name=name), field=name)
        force = body.get("force", False)
        if not isinstance(force, bool):
            raise HTTPError(400, T("force must be true or false"), field="force")
        return await agent_answer(self._service().login(
            actor_of(req), req.path_params["ext"], body["queues"], interface=body.get("interface"),
            state_interface=body.get("state_interface"), server=body.get("server"), force=force))

    async def logout(self, req: Req) -> Response:
        return await agent_answer(self._service().logout(actor_of(req), req.path_params["ext"]))

    async def pause(self, req: Req) -> Response:
        body = req.json()
        unknown = set(body) - {"reason"}
        if unknown:
            raise HTTPError(400, T("unknown field(s): {unknown}", unknown=', '.join(sorted(unknown))),
                            field=sorted(unknown)[0])
        return await agent_answer(self._service().pause(actor_of(req), req.path_params["ext"], body.get("reason")))

    async def unpause(self, req: Req) -> Response:
        return await agent_answer(self._service().unpause(actor_of(req), req.path_params["ext"]))

    async def status(self, req: Req) -> Response:
        return await agent_answer(self._service().status(actor_of(req), req.path_params["ext"]))
