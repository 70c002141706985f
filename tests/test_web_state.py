"""GET /api/state: this node's tracker records of one Asterisk server, for supervisors and admins."""

from __future__ import annotations

from typing import Any

import pytest

from ccserver.state import StateTracker
from ccserver.state.model import to_dict
from tests.test_state_support import timed_messages
from tests.web_support import MemoryUsers, call, make_router


@pytest.fixture
def api() -> Any:
    users = MemoryUsers()
    users.add(1, "sup", "supervisor", "sup-pass")
    users.add(2, "admin", "admin", "admin-pass")
    users.add(3, "agent8001", "agent", "agent-pass")
    router, ctx = make_router(users)
    return router, ctx


def bearer(router: Any, username: str, password: str) -> dict[str, str]:
    reply = call(router, "POST", "/api/login", json_body={"username": username, "password": password})
    assert reply.status == 200
    return {"Authorization": f"Bearer {reply.json()['token']}"}


def busy_hour_tracker(upto: int) -> StateTracker:
    tracker = StateTracker()
    for msg, t in timed_messages("ami-inbound-load-40-calls")[:upto]:
        tracker.handle(msg, t)
    for msg, t in timed_messages("ami-inbound-vip-answered", server="other"):
        tracker.handle(msg, t)
    return tracker


def test_state_shows_the_trackers_records_of_one_server(api):
    router, ctx = api
    ctx.tracker = busy_hour_tracker(1600)
    sup = bearer(router, "sup", "sup-pass")
    reply = call(router, "GET", "/api/state", headers=sup)
    assert reply.status == 200
    state = reply.json()
    tracker = ctx.tracker
    assert state["server"] == "default" and state["queues_complete"] is False
    assert state["calls"] == [to_dict(c) for c in sorted(tracker.iter_calls("default"),
                                                         key=lambda c: (c.entered_at, c.uniqueid))]
    [bulk] = state["queues"]
    assert bulk == to_dict(tracker.queue("bulk"))
    assert [w["uniqueid"] for w in bulk["callers"]] == [c.uniqueid for c in tracker.calls_in_queue("bulk")]
    assert len(bulk["callers"]) > 3 and bulk["members"]  # members known from the agents rung so far
    assert [a["interface"] for a in state["agents"]] == sorted(i for s, i in tracker.agents if s == "default")
    other = call(router, "GET", "/api/state?server=other", headers=bearer(router, "admin", "admin-pass")).json()
    assert other["server"] == "other" and "vip" in [q["name"] for q in other["queues"]]
    assert call(router, "GET", "/api/state?server=nosuch", headers=sup).json()["calls"] == []


def test_state_checks_auth_role_and_input(api):
    router, ctx = api
    ctx.tracker = busy_hour_tracker(100)
    assert call(router, "GET", "/api/state").status == 401
    assert call(router, "GET", "/api/state", headers=bearer(router, "agent8001", "agent-pass")).status == 403
    sup = bearer(router, "sup", "sup-pass")
    bad = call(router, "GET", "/api/state?server=a%0d%0ab", headers=sup)
    assert bad.status == 400 and bad.json()["field"] == "server"
    ctx.tracker = None
    assert call(router, "GET", "/api/state", headers=sup).status == 503
