"""This node's live state of one Asterisk server, as its tracker holds it (roles supervisor and admin):

- ``GET /api/state[?server=]`` — ``{"server", "queues_complete", "calls", "queues", "agents"}``: every live call,
  every queue with its waiting callers (in Asterisk's order) and members, every agent, as plain records (the fields
  of ``ccserver.state.model``). ``server`` defaults to the first configured Asterisk.

Read-only and raw on purpose: it shows what *this* node believes, so two nodes (a leader and a follower) can be
compared field for field. The wallboard's ``/api/queues`` and ``/api/agents`` are the shaped views for people.
"""

from __future__ import annotations

import re
from typing import Any

from ccserver.state.model import to_dict
from ccserver.texts import T
from ccserver.web.context import WebContext
from ccserver.web.http import HTTPError, Req, Response, Router, json_response

ROLES = ("supervisor",)
SERVER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,79}$")


def state_json(tracker: Any, server: str) -> dict[str, Any]:
    """The tracker's records of ``server``, in a stable order (reads only: nothing is refreshed)."""
    calls = sorted((c for c in tracker.calls.values() if c.server == server), key=lambda c: (c.entered_at, c.uniqueid))
    queues = sorted((q for q in tracker.queues.values() if q.server == server), key=lambda q: q.name)
    agents = sorted((a for a in tracker.agents.values() if a.server == server), key=lambda a: a.interface)
    return {
        "server": server,
        "queues_complete": tracker.queues_complete(server),
        "calls": [to_dict(c) for c in calls],
        "queues": [to_dict(q) for q in queues],
        "agents": [to_dict(a) for a in agents],
    }


class StateRoutes:
    def __init__(self, ctx: WebContext):
        self.ctx = ctx

    def register(self, router: Router) -> None:
        router.add("GET", "/api/state", self.state, access="api", roles=ROLES)

    async def state(self, req: Req) -> Response:
        server = req.arg("server")
        if server is None:
            configured = self.ctx.config.ami_servers()
            server = configured[0].name if configured else "default"
        elif not SERVER.match(server):
            raise HTTPError(400, T("server must be an Asterisk server name"), field="server")
        tracker = self.ctx.tracker
        if tracker is None:
            raise HTTPError(503, T("no Asterisk configured"))
        return json_response(state_json(tracker, server))
