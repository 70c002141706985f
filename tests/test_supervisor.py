"""Supervisor actions: the ChanSpy Originate and QueueChangePriorityCaller reach the replay peer (a recorded
Asterisk) with the right headers, the shipped dialplan carries the options, agents are refused, all audited."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from twisted.internet.asyncioreactor import AsyncioSelectorReactor

from ccserver.agents import Actor, AgentError, AgentService
from ccserver.agents.store import AgentStore
from ccserver.ami.actions import build_action
from ccserver.ami.client import AMIServerConfig
from ccserver.ami.manager import AMIManager
from ccserver.asterisk import parse_conf
from ccserver.db import migrate
from ccserver.db.engine import make_engine, session_factory
from ccserver.db.models import AgentSession, AuditLog, User
from ccserver.state.tracker import StateTracker
from ccserver.supervisor import SupervisorService
from ccserver.supervisor.ami import AMISupervisorActions
from ccserver.supervisor.spy import SPY_CONTEXT, SPY_OPTIONS, SpyError, channel_prefix, originate_headers
from routing.rules import RoutingRules
from tests.agents_support import FakeAsterisk
from tests.replay.agi_transcripts import REPO_ROOT
from tests.replay.ami_peer import AMIReplayFactory
from tests.replay.transcripts import transcript_path
from tests.test_state_support import replay

AGENT_IFACE = "Local/8001@agent-phones/n"  # the agent of ami-inbound-vip-answered
BOSS_PHONE = "PJSIP/8100"


def recorded_dest_channel() -> str:
    for line in transcript_path("ami-inbound-vip-answered").read_text(encoding="utf-8").splitlines():
        data = json.loads(line)["data"]
        if "Event: AgentConnect" in data:
            block = data[data.index("Event: AgentConnect"):]
            return next(h.split(": ", 1)[1] for h in block.split("\r\n") if h.startswith("DestChannel: "))
    raise AssertionError("no AgentConnect recorded")


def test_channel_prefix_matches_the_recorded_agent_channel() -> None:
    dest = recorded_dest_channel()  # Local/8001@agent-phones-00000001;1
    assert dest.startswith(channel_prefix(AGENT_IFACE))
    assert channel_prefix(AGENT_IFACE) == "Local/8001@agent-phones-"
    assert channel_prefix("PJSIP/8001") == "PJSIP/8001-"
    for bad in ("PJSIP/8001,qB", "PJSIP/8001\r\nAction: Command", "PJSIP/${EVIL}", "PJSIP/80 01", "8001",
                "PJSIP/8001\x00"):
        with pytest.raises(SpyError):
            channel_prefix(bad)


def test_originate_headers_per_mode_and_unsafe_values_refused() -> None:
    h = originate_headers("whisper", supervisor_phone=BOSS_PHONE, agent_interface="PJSIP/8001",
                          agent_extension="8001", supervisor="supervisor1")
    assert (h["Channel"], h["Context"], h["Exten"], h["Priority"], h["Async"]) == (
        BOSS_PHONE, SPY_CONTEXT, "whisper", 1, "true")
    assert h["Variable"]["CC_SPY_CHANNEL"] == "PJSIP/8001-"
    wire = build_action("Originate", "a1", h).decode()
    assert "Variable: CC_SPY_CHANNEL=PJSIP/8001-\r\n" in wire
    with pytest.raises(SpyError):
        originate_headers("steal", supervisor_phone=BOSS_PHONE, agent_interface="PJSIP/8001",
                          agent_extension="8001", supervisor="s")
    with pytest.raises(SpyError):
        originate_headers("listen", supervisor_phone=BOSS_PHONE, agent_interface="PJSIP/8001",
                          agent_extension="8001", supervisor="boss\r\nAction: Command")


def test_shipped_dialplan_runs_chanspy_with_the_options_of_each_mode() -> None:
    conf, problems = parse_conf(REPO_ROOT / "config" / "asterisk" / "extensions_ccserver.conf")
    assert conf is not None and problems == []
    spy = conf.section(SPY_CONTEXT)
    assert spy is not None
    text = "\n".join(f"{i.name} => {i.value}" for i in spy.items)
    blocks = text.split("exten => ")[1:]
    seen = {}
    for block in blocks:
        mode = block.split(",", 1)[0]
        chanspy = next(line for line in block.splitlines() if "ChanSpy(" in line)
        seen[mode] = chanspy.split("ChanSpy(${CC_SPY_CHANNEL},", 1)[1].split(")")[0]
    assert seen == SPY_OPTIONS
    assert "w" in seen["whisper"] and "B" in seen["barge"] and not set("wB") & set(seen["listen"])
    assert all(set("qE") <= set(opts) for opts in seen.values())


# -- the service against the replay peer -----------------------------------------------------------------------
@pytest.fixture
def sessions(sqlite_url: str) -> Any:
    migrate.upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    factory = session_factory(engine)
    with factory.begin() as s:
        s.add_all([User(id=1, username="agent8001", display_name="Wang Fang", role="agent", extension="8001",
                        interface=AGENT_IFACE, skills=["sales"]),
                   User(id=2, username="supervisor1", display_name="Boss", role="supervisor", extension="8100",
                        interface=BOSS_PHONE),
                   User(id=3, username="agent8002", display_name="Li Wei", role="agent", extension="8002",
                        interface="Local/8002@agent-phones/n")])
        s.flush()
        s.add(AgentSession(user_id=1, extension="8001", interface=AGENT_IFACE, member_name="Wang Fang",
                           server="default", queues={"vip": 0}))
    yield factory
    engine.dispose()


async def _inline(fn: Any, *a: Any, **k: Any) -> Any:
    return fn(*a, **k)


def talking_tracker() -> StateTracker:
    tracker = StateTracker()
    seen = {"connect": False}

    def stop(msg: Any) -> bool:
        if msg.get("Event") == "AgentConnect":
            seen["connect"] = True
            return False
        return seen["connect"] and msg.get("Event") in ("AgentComplete", "Hangup", "BridgeLeave")

    replay(tracker, "ami-inbound-vip-answered", server="default", stop=stop)
    return tracker


def run_against_peer(transcript: str, fn: Any) -> tuple[Any, list[tuple[dict[str, str], list[str]]]]:
    async def main() -> tuple[Any, list[tuple[dict[str, str], list[str]]]]:
        loop = asyncio.get_running_loop()
        reactor = AsyncioSelectorReactor(loop)
        peer = AMIReplayFactory(transcript, clock=reactor)
        port = reactor.listenTCP(0, peer, interface="127.0.0.1")
        ami = AMIManager({"default": AMIServerConfig(port=port.getHost().port, auth="plain",
                                                     secret="ccserver-secret")}, reactor=reactor)
        ami.start()
        await ami.clients["default"].when_connected().asFuture(loop)
        try:
            result = await fn(AMISupervisorActions(ami))
        finally:
            ami.stop()
            port.stopListening()
        return result, [(dict(a.items()), a.getall("Variable")) for a in peer.actions]

    return asyncio.run(main())


def service(sessions: Any, actions: Any, tracker: StateTracker) -> SupervisorService:
    agents = AgentService(AgentStore(sessions), FakeAsterisk({"vip"}), rules=RoutingRules(), run_blocking=_inline,
                          servers=["default"], default_server="default", tracker=tracker)
    return SupervisorService(agents, actions, run_blocking=_inline, tracker=tracker)


BOSS = Actor(2, "supervisor1", "supervisor", ip="192.0.2.7")
AGENT = Actor(3, "agent8002", "agent", ip="192.0.2.8")


def test_listen_whisper_barge_send_the_originate_into_chanspy(sessions: Any) -> None:
    tracker = talking_tracker()
    assert tracker.agents[("default", AGENT_IFACE)].state == "talking"

    async def go(actions: AMISupervisorActions) -> Any:
        svc = service(sessions, actions, tracker)
        out = {"barge": await svc.spy(BOSS, "8001", "barge")}
        try:
            await svc.spy(AGENT, "8001", "listen")
        except AgentError as exc:
            out["agent"] = exc.status
        try:
            await svc.spy(BOSS, "8002", "listen")  # not on a call
        except AgentError as exc:
            out["idle"] = exc.status
        try:
            await svc.spy(BOSS, "8001", "listen", "PJSIP/8100,evil")
        except AgentError as exc:
            out["bad_phone"] = (exc.status, exc.extra.get("field"))
        return out

    out, sent_all = run_against_peer("ami-originate-results", go)
    sent = [a for a, _v in sent_all]
    assert out["barge"]["status"] == "ringing" and out["barge"]["call"] == "1795416921.0"
    assert (out["agent"], out["idle"], out["bad_phone"]) == (403, 409, (400, "phone"))
    originates = [a for a in sent if a.get("Action") == "Originate"]
    assert len(originates) == 1  # refusals never reached Asterisk
    o = originates[0]
    assert (o["Channel"], o["Context"], o["Exten"], o["Priority"], o["Async"]) == (
        BOSS_PHONE, "ccserver-spy", "barge", "1", "true")
    assert o["CallerID"] == '"barge 8001" <8001>'
    # Announced to the tracker before it was written, so the supervisor's leg is recorded as an internal call
    # (seen live: unannounced, every spy leg was an inbound "ivr_hangup" call from the agent's extension).
    assert tracker._originates[("default", o["ActionID"])].direction == "internal"  # noqa: SLF001
    with sessions() as s:
        audit = s.scalars(select(AuditLog).where(AuditLog.action.like("supervisor.%"))).all()
    assert [(a.action, a.actor_name, a.target, a.detail["phone"]) for a in audit] == [
        ("supervisor.barge", "supervisor1", "extension:8001", BOSS_PHONE)]


def test_variables_reach_the_peer(sessions: Any) -> None:
    tracker = talking_tracker()

    async def go(actions: AMISupervisorActions) -> Any:
        return await service(sessions, actions, tracker).spy(BOSS, "8001", "listen")

    _out, sent = run_against_peer("ami-originate-results", go)
    (variables,) = [v for a, v in sent if a.get("Action") == "Originate"]
    assert variables == ["CC_SPY_CHANNEL=Local/8001@agent-phones-", "CC_SPY_AGENT=8001",
                         "CC_SPY_SUPERVISOR=supervisor1"]


def test_change_priority_of_a_waiting_caller(sessions: Any) -> None:
    tracker = StateTracker()
    replay(tracker, "ami-inbound-vip-answered", server="default",
           stop=lambda m: m.get("Event") == "AgentConnect")
    waiting = [c for c in tracker.calls.values() if c.state in ("queued", "ringing")]
    assert len(waiting) == 1
    call = waiting[0]

    async def go(actions: AMISupervisorActions) -> Any:
        svc = service(sessions, actions, tracker)
        out: dict[str, Any] = {}
        for who, prio in ((AGENT, 5), (BOSS, "high"), (BOSS, 5)):
            try:
                out[f"{who.role}-{prio}"] = await svc.change_priority(who, call.uniqueid, prio)
            except AgentError as exc:
                out[f"{who.role}-{prio}"] = (exc.status, exc.message)
        return out

    out, sent_all = run_against_peer("ami-originate-results", go)
    sent = [a for a, _v in sent_all]
    assert out["agent-5"][0] == 403 and out["supervisor-high"][0] == 400
    # The recorded Asterisk has no such action in this transcript: its error answer becomes a clear 409.
    assert out["supervisor-5"][0] == 409 and "QueueChangePriorityCaller refused" in out["supervisor-5"][1]
    change = [a for a in sent if a.get("Action") == "QueueChangePriorityCaller"]
    assert [(c["Queue"], c["Caller"], c["Priority"], c["Immediate"]) for c in change] == [
        ("vip", call.channel, "5", "yes")]


def test_force_pause_and_logout_refused_to_an_agent(sessions: Any) -> None:
    tracker = talking_tracker()
    svc = service(sessions, None, tracker)
    for coro in (svc.force_pause(AGENT, "8001", "meeting"), svc.force_logout(AGENT, "8001")):
        with pytest.raises(AgentError) as err:
            asyncio.run(coro)
        assert err.value.status == 403
    # a supervisor: through the agents service (FakeAsterisk answers QueueRemove like app_queue)
    out = asyncio.run(svc.force_logout(BOSS, "8001"))
    assert out["signed_in"] is False
    with sessions() as s:
        row = s.scalars(select(AuditLog).where(AuditLog.action == "agent.logout")).one()
    assert row.actor_name == "supervisor1" and "signed out by supervisor1" in row.detail["reason"]


def test_routes_refuse_an_agent_and_need_json(tmp_path: Path) -> None:
    from ccserver.web.app import build_router
    from tests.web_support import MemoryUsers, call, make_context

    users = MemoryUsers()
    users.add(1, "agent8001", "agent", "pw-agent-1")
    users.add(2, "boss", "supervisor", "pw-boss-1")
    ctx = make_context(users)
    router = build_router(ctx)

    def token(name: str, pw: str) -> str:
        return call(router, "POST", "/api/login", json_body={"username": name, "password": pw}).json()["token"]

    agent = {"Authorization": f"Bearer {token('agent8001', 'pw-agent-1')}"}
    boss = {"Authorization": f"Bearer {token('boss', 'pw-boss-1')}"}
    for path in ("/api/supervisor/spy", "/api/supervisor/agents/8001/pause", "/api/supervisor/agents/8001/logout",
                 "/api/supervisor/calls/1795416921.0/priority"):
        assert call(router, "POST", path, headers=agent, json_body={"agent": "8001", "mode": "listen"}).status == 403
        assert call(router, "POST", path, json_body={}).status == 401
    # no Asterisk configured: a clear 503, not a crash
    reply = call(router, "POST", "/api/supervisor/spy", headers=boss, json_body={"agent": "8001", "mode": "listen"})
    assert reply.status == 503
    reply = call(router, "POST", "/api/supervisor/spy", headers=boss, json_body={"agent": "8001", "x": 1})
    assert reply.status == 400 and reply.json()["field"] == "x"
