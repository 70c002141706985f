"""Agent sign-in through the service, on SQLite and PostgreSQL, against a stand-in for app_queue's members."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from ccserver.agents import Actor, AgentError, AgentService
from ccserver.agents.store import AgentStore
from ccserver.callrouting.live import live_view
from ccserver.db.models import AgentSession, AuditLog, User
from ccserver.state.tracker import StateTracker
from routing.decision import CallFacts, CustomerSummary, DidRoute, decide
from routing.numbers import normalize
from routing.rules import RoutingRules
from tests.agents_support import FakeAsterisk

QUEUES = {"sales", "service", "vip", "complaints", "hotline", "default", "agent-8001", "agent-8002", "agent-8003"}


class World:
    def __init__(self, sessions: Any) -> None:
        self.sessions = sessions
        self.tracker = StateTracker()
        self.asterisk = FakeAsterisk(set(QUEUES), tracker=self.tracker)
        self.asterisk.resync()
        self.store = AgentStore(sessions)
        self.service = AgentService(self.store, self.asterisk, rules=RoutingRules(), run_blocking=_thread,
                                    servers=["default"], default_server="default", tracker=self.tracker)
        with sessions() as s:
            self.users = {u.extension: u.id for u in s.scalars(select(User).where(User.extension.is_not(None)))}
            self.supervisor = s.scalars(select(User).where(User.role == "supervisor")).first().id

    def agent(self, ext: str, **kw: Any) -> Actor:
        return Actor(self.users[ext], f"agent{ext}", "agent", **kw)

    def boss(self) -> Actor:
        return Actor(self.supervisor, "supervisor1", "supervisor")

    def run(self, coro: Any) -> Any:
        return asyncio.run(coro)

    def rows(self, ext: str) -> list[AgentSession]:
        with self.sessions() as s:
            return list(s.scalars(select(AgentSession).where(AgentSession.extension == ext).order_by(AgentSession.id)))


async def _thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


@pytest.fixture
def world(loaded: Any) -> World:
    _url, sessions = loaded
    return World(sessions)


def test_an_agent_signs_in_to_queues_and_their_personal_queue_with_penalties_from_skills(world: World) -> None:
    got = world.run(world.service.login(world.agent("8001"), "8001", ["sales", "service", "vip", "default"]))
    # agent8001's skills: sales (primary), service, insurance, en
    assert {q["queue"]: q["penalty"] for q in got["queues"]} == {"sales": 0, "service": 5, "vip": 0, "default": 10,
                                                                 "agent-8001": 0}
    assert got["interface"] == "PJSIP/8001" and got["server"] == "default" and not got["warnings"]
    members = world.asterisk.of("PJSIP/8001")
    assert set(members) == {"sales", "service", "vip", "default", "agent-8001"}
    assert all(m.name and not m.paused for m in members.values())
    [row] = world.rows("8001")
    assert row.ended_at is None and row.queues["agent-8001"] == 0 and row.started_by == "agent8001"
    # the tracker saw Asterisk's events: routing now offers this agent's personal queue
    live = live_view(world.tracker, "default", 1795416970.0, ["sales"], "agent-8001")
    assert live.queues["agent-8001"].free_interfaces == ("PJSIP/8001",)
    zhang = CustomerSummary("1", tier="silver", sales_consultant="8001")
    d = decide(CallFacts("d1", normalize("13800138000"), 1795416970.0, "u1", "x"), zhang,
               DidRoute("x", "", "sales", "sales"), True, live)
    assert (d.preferred_agent_queue, d.preferred_agent_interface) == ("agent-8001", "PJSIP/8001")
    with world.sessions() as s:
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "agent.login")).all()
    assert [a.target for a in audit] == ["extension:8001"] and audit[0].actor_name == "agent8001"


def test_only_oneself_or_a_supervisor(world: World) -> None:
    with pytest.raises(AgentError) as info:
        world.run(world.service.login(world.agent("8001"), "8002", ["sales"]))
    assert info.value.status == 403 and world.asterisk.sent == []
    got = world.run(world.service.login(world.boss(), "8002", ["sales"]))
    assert got["extension"] == "8002" and "agent-8002" in {q["queue"] for q in got["queues"]}
    with pytest.raises(AgentError) as info:
        world.run(world.service.login(world.boss(), "0000", ["sales"]))
    assert info.value.status == 404


@pytest.mark.parametrize(("queues", "interface", "field"), [
    (["sales", "nosuch"], None, "queues"),
    ("sales", None, "queues"),
    (["sales,vip"], None, "queues"),
    (["sales"], "PJSIP/8001,r", "interface"),
    (["sales"], "PJSIP/80 01", "interface"),
    (["sales"], "PJSIP/8001\r\nAction: Originate", "interface"),
])
def test_bad_input_is_refused_before_anything_reaches_asterisk(world: World, queues: Any, interface: Any,
                                                               field: str) -> None:
    with pytest.raises(AgentError) as info:
        world.run(world.service.login(world.agent("8001"), "8001", queues, interface=interface))
    assert info.value.status == 400 and info.value.extra["field"] == field
    assert world.asterisk.sent == [] and world.rows("8001") == []


def test_hot_desking_moves_the_agent_to_the_new_phone(world: World) -> None:
    me = world.agent("8001")
    world.run(world.service.login(me, "8001", ["sales", "vip"], interface="PJSIP/8555"))
    assert set(world.asterisk.of("PJSIP/8555")) == {"sales", "vip", "agent-8001"}
    world.run(world.service.login(me, "8001", ["sales"], interface="PJSIP/8556"))
    assert world.asterisk.of("PJSIP/8555") == {}
    assert set(world.asterisk.of("PJSIP/8556")) == {"sales", "agent-8001"}
    old, new = world.rows("8001")
    assert old.end_reason == "replaced" and new.ended_at is None and new.interface == "PJSIP/8556"
    # a later change of queues on the same phone only removes what was dropped
    world.asterisk.sent.clear()
    world.run(world.service.login(me, "8001", ["service"], interface="PJSIP/8556"))
    assert ("remove", "sales", "PJSIP/8556") in world.asterisk.sent
    assert ("remove", "agent-8001", "PJSIP/8556") not in world.asterisk.sent
    assert set(world.asterisk.of("PJSIP/8556")) == {"service", "agent-8001"}


def test_a_phone_signed_in_by_another_agent(world: World) -> None:
    world.run(world.service.login(world.agent("8002"), "8002", ["sales"], interface="PJSIP/8600"))
    with pytest.raises(AgentError) as info:
        world.run(world.service.login(world.agent("8001"), "8001", ["sales"], interface="PJSIP/8600"))
    assert info.value.status == 409 and info.value.extra["holder"] == "8002"
    with pytest.raises(AgentError):  # force is a supervisor's
        world.run(world.service.login(world.agent("8001"), "8001", ["sales"], interface="PJSIP/8600", force=True))
    world.run(world.service.login(world.boss(), "8001", ["sales"], interface="PJSIP/8600", force=True))
    assert world.rows("8002")[-1].end_reason == "replaced by 8001"
    assert set(world.asterisk.of("PJSIP/8600")) == {"sales", "agent-8001"}


def test_pause_resume_and_sign_out(world: World) -> None:
    me = world.agent("8001")
    with pytest.raises(AgentError) as info:
        world.run(world.service.pause(me, "8001", "lunch"))
    assert info.value.status == 409  # not signed in
    world.run(world.service.login(me, "8001", ["sales", "vip"]))
    for bad in ("", "x" * 41, "a,b", "tab\there", None):
        with pytest.raises(AgentError) as info:
            world.run(world.service.pause(me, "8001", bad))
        assert info.value.status == 400
    got = world.run(world.service.pause(me, "8001", "午饭 lunch"))
    assert got["paused"] and got["pause_reason"] == "午饭 lunch"
    assert ("pause", None, "PJSIP/8001", True, "午饭 lunch") in world.asterisk.sent
    assert all(m.paused and m.reason == "午饭 lunch" for m in world.asterisk.of("PJSIP/8001").values())
    assert world.rows("8001")[-1].paused
    got = world.run(world.service.unpause(me, "8001"))
    assert not got["paused"] and not any(m.paused for m in world.asterisk.of("PJSIP/8001").values())
    got = world.run(world.service.logout(me, "8001"))
    assert got["signed_in"] is False and world.asterisk.of("PJSIP/8001") == {}
    assert world.rows("8001")[-1].end_reason == "logout"
    assert world.run(world.service.logout(me, "8001"))["signed_in"] is False  # idempotent


def test_asterisk_unreachable(world: World) -> None:
    me = world.agent("8001")
    world.asterisk.up = False
    with pytest.raises(AgentError) as info:
        world.run(world.service.login(me, "8001", ["sales"]))
    assert info.value.status == 503 and world.rows("8001") == []
    world.asterisk.up = True
    world.run(world.service.login(me, "8001", ["sales"]))
    world.asterisk.up = False
    # signing out still ends the sign-in; the members go at the next reconnect (reconcile)
    got = world.run(world.service.logout(me, "8001"))
    assert got["signed_in"] is False and got["warnings"]
    world.asterisk.up = True
    world.asterisk.resync()
    plan = world.run(world.service.reconcile("default"))
    assert {(a.kind, a.queue) for a in plan.actions} == {("remove", "sales"), ("remove", "agent-8001")}
    assert world.asterisk.of("PJSIP/8001") == {}


def test_reconcile_after_a_resync_restores_the_sign_ins(world: World) -> None:
    world.run(world.service.login(world.agent("8001"), "8001", ["sales", "vip"]))
    world.run(world.service.login(world.agent("8002"), "8002", ["service"]))
    world.run(world.service.pause(world.agent("8002"), "8002", "training"))
    # Asterisk restarted without persistentmembers: 8001's members are gone; 8002 came back unpaused; an old
    # desk of 8003 (managed: on a user record) is still a dynamic member; a static member is not ours to touch.
    ast = world.asterisk
    for key in [k for k in ast.members if k[1] == "PJSIP/8001"]:
        del ast.members[key]
    for key in [k for k in ast.members if k[1] == "PJSIP/8002"]:
        ast.members[key].paused, ast.members[key].reason = False, ""
    from tests.agents_support import FakeMember
    ast.members[("sales", "PJSIP/8003")] = FakeMember("Zhao Min")
    ast.members[("sales", "SIP/static-9")] = FakeMember("Static", dynamic=False)
    ast.members[("sales", "PJSIP/9999")] = FakeMember("Not ours")
    ast.resync()
    ast.sent.clear()
    world.run(world.service.reconcile("default"))
    assert set(ast.of("PJSIP/8001")) == {"sales", "vip", "agent-8001"}
    assert all(m.paused and m.reason == "training" for m in ast.of("PJSIP/8002").values())
    assert ("sales", "PJSIP/8003") not in ast.members
    assert ("sales", "SIP/static-9") in ast.members and ("sales", "PJSIP/9999") in ast.members
    ast.resync()
    ast.sent.clear()
    plan = world.run(world.service.reconcile("default"))
    assert plan.actions == [] and ast.sent == []  # converged


def test_sign_ins_end_with_their_web_login_expiry_or_deactivation(world: World) -> None:
    soon = datetime.now(UTC) + timedelta(hours=1)
    world.run(world.service.login(world.agent("8001", auth_session_id="web-1", expires_at=soon), "8001", ["sales"]))
    world.run(world.service.login(world.agent("8002", auth_session_id="web-2",
                                              expires_at=datetime.now(UTC) - timedelta(seconds=1)), "8002", ["sales"]))
    world.run(world.service.login(world.agent("8003"), "8003", ["sales"]))
    assert world.run(world.service.end_auth_session("web-1", "web logout")) == 1
    assert world.asterisk.of("PJSIP/8001") == {} and world.rows("8001")[-1].end_reason == "web logout"
    with world.sessions.begin() as s:
        s.execute(update(User).where(User.extension == "8003").values(active=False))
    assert world.run(world.service.sweep()) == 2
    assert world.rows("8002")[-1].end_reason == "expired" and world.asterisk.of("PJSIP/8002") == {}
    assert world.rows("8003")[-1].end_reason == "user deactivated" and world.asterisk.of("PJSIP/8003") == {}
    assert world.run(world.service.sweep()) == 0


def test_a_queue_asterisk_refuses_is_reported_not_recorded(world: World) -> None:
    world.asterisk.queues.discard("agent-8001")  # the personal queue is missing from queues.conf
    world.asterisk.resync()
    got = world.run(world.service.login(world.agent("8001"), "8001", ["sales"]))
    assert got["results"] == {"sales": "joined", "agent-8001": "no such queue"}
    assert any("agent-8001" in w and "preferred-agent" in w for w in got["warnings"])
    assert world.rows("8001")[-1].queues == {"sales": 0}


def test_concurrent_sign_ins_of_one_extension_leave_one_session(world: World) -> None:
    me = world.agent("8001")

    async def both() -> list[Any]:
        return await asyncio.gather(world.service.login(me, "8001", ["sales"], interface="PJSIP/8701"),
                                    world.service.login(me, "8001", ["vip"], interface="PJSIP/8702"),
                                    return_exceptions=True)

    world.run(both())
    active = [r for r in world.rows("8001") if r.ended_at is None]
    assert len(active) == 1
    members = {i for (_q, i) in world.asterisk.members if i.startswith("PJSIP/87")}
    assert members == {active[0].interface}


def test_reconcile_keeps_pauses_made_in_asterisk(world: World) -> None:
    world.run(world.service.login(world.agent("8001"), "8001", ["sales", "vip"]))
    for key in [k for k in world.asterisk.members if k[1] == "PJSIP/8001"]:
        member = world.asterisk.members[key]
        member.paused, member.reason = True, "Auto-Pause"  # autopause: the agent let a call ring out
    world.asterisk.resync()
    world.asterisk.sent.clear()
    plan = world.run(world.service.reconcile("default"))
    assert plan.actions == [] and world.asterisk.sent == []  # never unpaused behind the agent's back
    assert all(m.paused for m in world.asterisk.of("PJSIP/8001").values())


def test_reconcile_runs_when_the_hub_reports_a_resync_of_a_server_this_node_leads(world: World) -> None:
    from ccserver.agents import reconcile_after_resync
    from ccserver.events import EventHub

    world.run(world.service.login(world.agent("8001"), "8001", ["sales"]))
    for key in [k for k in world.asterisk.members if k[1] == "PJSIP/8001"]:
        del world.asterisk.members[key]  # Asterisk restarted without persistentmembers
    leading: set[str] = set()

    async def main() -> None:
        hub = EventHub()
        world.tracker._publish = hub.publish
        reconcile_after_resync(hub, world.service, leading)
        hub.start()
        world.asterisk.resync()  # a follower's resync: nothing to do here
        for _ in range(20):
            await asyncio.sleep(0)
        assert world.asterisk.of("PJSIP/8001") == {}
        leading.add("default")
        world.tracker.resync("default", world.asterisk.queue_status(), [], 1795416990.0)
        for _ in range(200):  # until the reconcile has re-added both: one at a time, so not at the first
            if set(world.asterisk.of("PJSIP/8001")) == {"sales", "agent-8001"}:
                break
            await asyncio.sleep(0.01)
        await hub.stop()

    world.run(main())
    assert set(world.asterisk.of("PJSIP/8001")) == {"sales", "agent-8001"}
