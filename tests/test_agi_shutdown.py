"""Shutdown, FastAGI first: the factory's drain waits for the sessions in flight (bounded), so every call answered
during shutdown has submitted its decision before the record writers close. Component level on a task.Clock; the
real `ccserver run` + SIGTERM is in test_server_e2e."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred

from ccserver.agi import AGISession, CallerHungUp
from ccserver.customers.directory import CustomerDirectory
from tests.replay.agi_peer import Responder, connect_in_memory, transcript_peer
from tests.test_agi_protocol import Harness
from tests.test_callrouting_service import Service, demo, mset  # noqa: F401 - demo is a fixture


def fired(d: Deferred[Any]) -> list[Any]:
    out: list[Any] = []
    d.addCallback(out.append)
    return out


def test_drain_waits_for_the_routed_call_in_flight_and_its_record(demo: Any) -> None:  # noqa: F811
    sessions, data = demo
    svc = Service(data, CustomerDirectory(sessions))
    h = Harness(svc.service.handlers(), transcript_peer("agi-01-13800138000", Responder(inject={0: ()})),
                clock=svc.clock)
    h.flush()  # the MSet is out; Asterisk has not answered yet
    assert h.peer.commands and not svc.records
    drained = fired(h.factory.drain(5.0))
    h.clock.advance(0.3)
    assert drained == [] and h.factory.connections == 1  # still waiting for the call
    h.peer.transport.write(b"200 result=1\n")  # Asterisk answers 300 ms into the shutdown
    h.flush()
    h.clock.advance(0.01)
    assert drained == [0]  # every connection closed, none cut
    (record,) = svc.records  # submitted before the drain fired: the writers may close now
    assert record["variables"] == mset(h.peer)


def test_drain_cuts_what_is_still_open_at_the_deadline() -> None:
    outcome: list[str] = []

    async def incoming(session: AGISession) -> None:
        try:
            await session.get_data("cc-survey", 10000, 1)  # a survey still waiting for its digit
        except CallerHungUp:
            outcome.append("hung up")

    h = Harness({"incoming": incoming}, transcript_peer("agi-01-13800138000", Responder(inject={0: ()})))
    half_open = h.factory.buildProtocol(None)  # and a peer that never sent its header
    peer2 = transcript_peer("agi-01-13800138000")
    peer2.env = None
    pump2 = connect_in_memory(half_open, peer2)
    h.flush()
    pump2.flush()
    assert h.factory.connections == 2
    drained = fired(h.factory.drain(5.0))
    h.clock.advance(4.99)
    h.flush()
    pump2.flush()
    assert peer2.closed and h.factory.connections == 1  # the silent one went at its header timeout, 2 s
    assert drained == [] and not h.peer.closed
    h.clock.advance(0.02)
    h.flush()
    pump2.flush()
    h.clock.advance(0.01)
    assert drained == [1] and h.peer.closed and outcome == ["hung up"]


def test_drain_with_nothing_open_fires_at_once() -> None:
    async def incoming(session: AGISession) -> None:
        await session.set_variable("CC_QUEUE", "vip")

    h = Harness({"incoming": incoming}, transcript_peer("agi-01-13800138000"))
    h.flush()
    assert fired(h.factory.drain(5.0)) == [0]
