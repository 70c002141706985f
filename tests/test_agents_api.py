"""Agent sign-in and call observation over HTTP: routes, roles, validation (the router on a real event loop)."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
from typing import Any

import pytest
from sqlalchemy import select
from twisted.internet.address import IPv4Address
from twisted.web.test.requesthelper import DummyRequest

from ccserver.agents import AgentService
from ccserver.agents.store import AgentStore
from ccserver.db.models import Call, RoutingDecision, User
from ccserver.state.tracker import StateTracker
from ccserver.web.agent_routes import end_sign_ins_with_web_sessions
from ccserver.web.app import build_router
from ccserver.web.sql_users import SQLUserStore
from routing.rules import RoutingRules
from tests.agents_support import FakeAsterisk
from tests.web_support import make_context


async def request(router: Any, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    path_only, _, query = path.partition("?")
    req = DummyRequest([p.encode() for p in path_only.split("/") if p], client=IPv4Address("TCP", "192.0.2.1", 1))
    req.client = IPv4Address("TCP", "192.0.2.1", 1)
    req.method, req.path, req.uri = method.encode(), path_only.encode(), path.encode()
    if query:
        from urllib.parse import parse_qs

        req.args = {k.encode(): [x.encode() for x in v] for k, v in parse_qs(query).items()}
    raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req.content = io.BytesIO(raw)
    req.requestHeaders.addRawHeader("Authorization", f"Bearer {token}")
    if body is not None:
        req.requestHeaders.addRawHeader("Content-Type", "application/json")
    router.render(req)
    while not req.finished:  # the handler awaits the service on this loop: let it run
        await asyncio.sleep(0)
    return req.responseCode or 200, json.loads(b"".join(req.written))


@pytest.fixture
def api(loaded: Any) -> Any:
    _url, sessions = loaded
    tracker = StateTracker()
    asterisk = FakeAsterisk({"sales", "vip", "service", "default", "agent-8001", "agent-8002"}, tracker=tracker)
    asterisk.resync()

    async def thread(fn: Any, *a: Any, **kw: Any) -> Any:
        return await asyncio.to_thread(fn, *a, **kw)

    ctx = make_context(SQLUserStore(sessions))
    ctx.agents = AgentService(AgentStore(sessions), asterisk, rules=RoutingRules(), run_blocking=thread,
                              servers=["default"], default_server="default", tracker=tracker)
    ctx.tracker, ctx.session_factory = tracker, sessions
    end_sign_ins_with_web_sessions(ctx.sessions, ctx.agents)
    with sessions() as s:
        users = {u.username: u for u in s.scalars(select(User))}

    def token(username: str) -> str:
        u = users[username]
        return ctx.signer.issue(u.id, u.username, u.role)[0]

    return build_router(ctx), token, asterisk, sessions, tracker


def test_sign_in_pause_and_out_over_the_api(api: Any) -> None:
    router, token, asterisk, _sessions, _tracker = api
    me = token("agent8001")

    async def main() -> list[tuple[int, Any]]:
        return [
            await request(router, "POST", "/api/agents/8001/login", me, {"queues": ["sales", "vip"]}),
            await request(router, "GET", "/api/agents/8001", me),
            await request(router, "POST", "/api/agents/8001/pause", me, {"reason": "lunch"}),
            await request(router, "POST", "/api/agents/8001/unpause", me, {}),
            await request(router, "POST", "/api/agents/8001/logout", me, {}),
        ]

    login, status, pause, unpause, logout = asyncio.run(main())
    assert login[0] == 200 and {q["queue"] for q in login[1]["queues"]} == {"sales", "vip", "agent-8001"}
    assert login[1]["expires_at"]  # ends with this login's token
    assert status == (200, {**status[1], "signed_in": True, "interface": "PJSIP/8001"})
    assert pause[0] == 200 and pause[1]["paused"] and pause[1]["pause_reason"] == "lunch"
    assert unpause[0] == 200 and not unpause[1]["paused"]
    assert logout == (200, {"extension": "8001", "signed_in": False, "warnings": []})
    assert asterisk.of("PJSIP/8001") == {}


def test_logging_out_of_the_web_signs_the_agent_out_of_every_queue(api: Any) -> None:
    router, token, asterisk, _sessions, _tracker = api
    me = token("agent8001")

    async def main() -> list[tuple[int, Any]]:
        first = await request(router, "POST", "/api/agents/8001/login", me, {"queues": ["sales"]})
        out = await request(router, "POST", "/api/logout", me, {})
        for _ in range(200):  # the hook runs on the loop, after the logout answered
            if not asterisk.of("PJSIP/8001"):
                break
            await asyncio.sleep(0.01)
        return [first, out]

    first, out = asyncio.run(main())
    assert first[0] == 200 and out[0] == 200
    assert asterisk.of("PJSIP/8001") == {}
    assert ("remove", "agent-8001", "PJSIP/8001") in asterisk.sent


@pytest.mark.parametrize(("who", "path", "body", "status", "field"), [
    ("agent8001", "/api/agents/8002/login", {"queues": ["sales"]}, 403, None),
    ("agent8001", "/api/agents/8001/login", {"queues": "sales"}, 400, "queues"),
    ("agent8001", "/api/agents/8001/login", {}, 400, "queues"),
    ("agent8001", "/api/agents/8001/login", {"queues": ["sales"], "colour": "red"}, 400, "colour"),
    ("agent8001", "/api/agents/8001/login", {"queues": ["sales"], "interface": 5}, 400, "interface"),
    ("agent8001", "/api/agents/8001/login", {"queues": ["nosuch"]}, 400, "queues"),
    ("agent8001", "/api/agents/8001/login", {"queues": ["sales"], "force": "yes"}, 400, "force"),
    ("agent8001", "/api/agents/8001/pause", {"reason": "a\r\nAction: Originate"}, 400, "reason"),
    ("agent8001", "/api/agents/8001/pause", {"reason": "lunch"}, 409, None),
    ("agent8001", "/api/agents/" + "9" * 30 + "/login", {"queues": []}, 400, "extension"),
    ("supervisor1", "/api/agents/4242/login", {"queues": []}, 404, None),
])
def test_refusals(api: Any, who: str, path: str, body: Any, status: int, field: str | None) -> None:
    router, token, asterisk, _sessions, _tracker = api
    got = asyncio.run(request(router, "POST", path, token(who), body))
    assert got[0] == status, got
    assert got[1].get("field") == field and got[1]["error"]
    assert asterisk.sent == []


def test_a_supervisor_signs_in_anyone_and_sees_calls_and_decisions(api: Any) -> None:
    router, token, asterisk, sessions, tracker = api
    boss = token("supervisor1")
    decision = "abcdefghijklmnop"
    with sessions.begin() as s:
        s.add(RoutingDecision(decision_id=decision, made_at=dt.datetime(2026, 11, 30, 9, tzinfo=dt.UTC),
                              uniqueid="1795416921.0", queue="vip", tier="gold", reasons=["customer 1: gold"]))
        s.add(Call(uniqueid="1795416921.0", server="default", entered_at=dt.datetime(2026, 11, 30, 9, tzinfo=dt.UTC),
                   queue="vip", outcome="answered", wait_seconds=4.0, decision_id=decision, customer_id=1))
    tracker.handle({"Event": "QueueCallerJoin", "Uniqueid": "1795417000.5", "Linkedid": "1795417000.5",
                    "Queue": "sales", "Position": "1", "CallerIDNum": "13800138000", "Timestamp": "1795417000.0"})

    async def main() -> list[tuple[int, Any]]:
        return [
            await request(router, "POST", "/api/agents/8002/login", boss, {"queues": ["service"]}),
            await request(router, "GET", "/api/calls?live=1", boss),
            await request(router, "GET", "/api/calls?from=2026-11-30&to=2026-11-30&customer_id=1", boss),
            await request(router, "GET", "/api/calls?from=2026-12-01", boss),
            await request(router, "GET", f"/api/decisions/{decision}", boss),
            await request(router, "GET", "/api/decisions/nosuchdecision00", boss),
            await request(router, "GET", "/api/calls?live=1", token("agent8001")),
            await request(router, "GET", "/api/calls?from=yesterday", boss),
        ]

    login, live, recorded, later, one, missing, agent, bad = asyncio.run(main())
    assert login[0] == 200 and asterisk.of("PJSIP/8002")
    assert live[0] == 200 and [c["queue"] for c in live[1]["calls"]] == ["sales"]
    assert live[1]["calls"][0]["state"] == "queued" and live[1]["calls"][0]["caller"] == "13800138000"
    assert recorded[1]["total"] == 1 and recorded[1]["calls"][0]["decision"]["reasons"] == ["customer 1: gold"]
    assert later[1] == {"calls": [], "total": 0}
    assert one[0] == 200 and one[1]["queue"] == "vip" and [c["uniqueid"] for c in one[1]["calls"]] == ["1795416921.0"]
    assert missing[0] == 404 and agent[0] == 403 and (bad[0], bad[1]["field"]) == (400, "from")
