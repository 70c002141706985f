"""Every FastAGI command has a timeout (agi.command_timeout, or the command's own): an unanswered command fails
the handler's await with AGITimeout and the connection is closed. Time is a task.Clock: nothing sleeps."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from ccserver.agi import AGISession, AGITimeout, CallerHungUp, FastAGIFactory
from ccserver.agi.metrics import COMMAND_TIMEOUTS, ERRORS
from ccserver.agi.server import HEADER_SWEEP_GAP, HEADER_SWEEP_SLICE
from tests.replay.agi_peer import Responder, connect_in_memory, transcript_peer
from tests.test_agi_protocol import Harness

SILENT = ()  # as a reply: Asterisk never answers


def advance(h: Harness, seconds: float, step: float = 0.5) -> None:
    """Let ``seconds`` pass on the harness clock in steps (timers fire as they come due), pumping the wire."""
    while seconds > 1e-9:
        h.clock.advance(min(step, seconds))
        seconds -= step
        h.flush()


def test_an_unanswered_command_fails_the_await_and_closes(caplog: pytest.LogCaptureFixture) -> None:
    outcome: list[str] = []

    async def incoming(session: AGISession) -> None:
        try:
            await session.set_variables({"CC_QUEUE": "vip", "CC_PRIORITY": "10"})
        except AGITimeout as exc:
            outcome.append(f"timeout: {exc}")
        try:
            await session.set_variable("CC_MORE", "1")
        except CallerHungUp:
            outcome.append("closed")

    timeouts, errors = COMMAND_TIMEOUTS.value(), ERRORS.value()
    h = Harness({"incoming": incoming}, transcript_peer("agi-01-13800138000", Responder(inject={0: SILENT})),
                default_variables={"CC_QUEUE": "default"})
    h.flush()
    advance(h, 29.5)
    assert not h.peer.closed and outcome == []
    advance(h, 2.0)  # the limit, plus at most one sweep interval
    assert h.peer.closed
    assert outcome == ["timeout: no answer to EXEC MSet within 30 s", "closed"]
    assert h.peer.commands == ['EXEC MSet "CC_QUEUE=vip,CC_PRIORITY=10"']  # nothing sent behind it, no defaults
    assert COMMAND_TIMEOUTS.value() == timeouts + 1 and ERRORS.value() == errors + 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == ["FastAGI command EXEC MSet not answered within 30 s; closing the connection "
                        "(uniqueid=1795416921.0)"]


def test_a_handler_that_does_not_catch_it_is_closed_without_a_second_report(caplog: pytest.LogCaptureFixture) -> None:
    async def incoming(session: AGISession) -> None:
        await session.answer()

    h = Harness({"incoming": incoming}, transcript_peer("agi-01-13800138000", Responder(inject={0: SILENT})),
                default_variables={"CC_QUEUE": "default"})
    h.flush()
    advance(h, 32)
    assert h.peer.closed and h.peer.commands == ["ANSWER"]
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1


def test_the_configured_timeout_applies() -> None:
    async def incoming(session: AGISession) -> None:
        await session.get_variable("CC_X")

    h = Harness({"incoming": incoming}, transcript_peer("agi-01-13800138000", Responder(inject={0: SILENT})),
                command_timeout=5.0)
    h.flush()
    advance(h, 4.5)
    assert not h.peer.closed
    advance(h, 2.0)
    assert h.peer.closed


def test_each_answer_starts_the_next_commands_wait() -> None:
    """Four commands, each answered after 20 s: 80 s in all, no command waited 30 s."""
    results: list[int | None] = []

    async def incoming(session: AGISession) -> None:
        for i in range(4):
            results.append((await session.set_variable(f"CC_{i}", i)).result)

    h = Harness({"incoming": incoming}, transcript_peer("agi-01-13800138000", Responder(answers={})))
    h.peer.responder = lambda line, index: SILENT  # answered by hand below
    h.flush()
    for _ in range(4):
        advance(h, 20)
        h.peer.transport.write(b"200 result=1\n")
        h.flush()
    assert results == [1, 1, 1, 1] and h.peer.closed


@pytest.mark.parametrize(("call", "open_at", "closed_by"), [
    (lambda s: s.get_data("beep", 10000, 4), 69.0, 71.5),  # 30 s plus 4 digits x 10 s
    (lambda s: s.get_data("beep"), 35.5, 37.5),  # plus Asterisk's own 6 s for one digit
    (lambda s: s.wait_for_digit(5000), 34.5, 36.5),
    (lambda s: s.wait_for_digit(), 3629.0, 3631.5),  # "forever" is an hour
    (lambda s: s.exec("Dial", "PJSIP/8001", timeout=600.0), 599.0, 601.5),
    (lambda s: s.stream_file("long-prompt", timeout=120.0), 119.0, 121.5),
])
def test_commands_that_wait_on_the_caller_get_their_own_wait(call: Any, open_at: float, closed_by: float) -> None:
    async def incoming(session: AGISession) -> None:
        await call(session)

    h = Harness({"incoming": incoming}, transcript_peer("agi-01-13800138000", Responder(inject={0: SILENT})))
    h.flush()
    advance(h, open_at, step=1.0)
    assert not h.peer.closed
    advance(h, closed_by - open_at)
    assert h.peer.closed


def test_one_sweep_timer_not_one_per_command() -> None:
    async def incoming(session: AGISession) -> None:
        await session.set_variable("CC_X", "1")

    h = Harness({"incoming": incoming}, transcript_peer("agi-01-13800138000", Responder(inject={0: SILENT})))
    factory, clock = h.factory, h.clock
    pumps = [h.pump]
    peers = [h.peer]
    for _ in range(49):  # 50 connections of one server, all with a command in flight
        peer = transcript_peer("agi-01-13800138000", Responder(inject={0: SILENT}))
        pumps.append(connect_in_memory(factory.buildProtocol(None), peer))
        peers.append(peer)
    for pump in pumps:
        pump.flush()
    assert factory.sessions_open == 50 and all(p.commands == ['SET VARIABLE CC_X "1"'] for p in peers)
    assert len([c for c in clock.getDelayedCalls() if c.func == factory._sweep_commands]) == 1
    for _ in range(64):
        clock.advance(0.5)
        for pump in pumps:
            pump.flush()
    assert all(p.closed for p in peers) and factory.sessions_open == 0


# -- a half-open flood is dropped in small slices spread over time -----------------------------------------------
def test_a_wave_of_silent_peers_is_dropped_a_slice_per_tick() -> None:
    """1,000 peers connect at once and stay silent: at 2 s they are dropped at most HEADER_SWEEP_SLICE per
    tick, one tick every HEADER_SWEEP_GAP, oldest first, all of them in the end; a peer that came later
    keeps its own deadline; nothing is dropped early."""
    clock = Clock()
    factory = FastAGIFactory({}, clock=clock)
    transports = []
    for _ in range(1000):
        proto = factory.buildProtocol(None)
        transport = StringTransport()
        proto.makeConnection(transport)
        proto.dataReceived(b"agi_network: yes\n")  # half a header, then silence
        transports.append(transport)
    clock.advance(1.0)
    late = factory.buildProtocol(None)
    late_transport = StringTransport()
    late.makeConnection(late_transport)
    clock.advance(0.999)
    assert factory.drops["header timeout"] == 0 and factory.headers_pending == 1001

    per_tick = []
    clock.advance(0.001)  # 2 s: the wave is due
    per_tick.append(factory.drops["header timeout"])
    while factory.drops["header timeout"] < 1000:
        before = factory.drops["header timeout"]
        clock.advance(HEADER_SWEEP_GAP)
        per_tick.append(factory.drops["header timeout"] - before)
        assert len(per_tick) < 1000, "the sweep stopped"
    assert max(per_tick) == HEADER_SWEEP_SLICE and sum(per_tick) == 1000
    assert len(per_tick) == -(-1000 // HEADER_SWEEP_SLICE)  # no idle tick in between
    # oldest first: dropped in connection order
    aborted = [i for i, t in enumerate(transports) if t.disconnecting]
    assert aborted == list(range(1000))
    assert not late_transport.disconnecting and factory.headers_pending == 1
    # the late one at its own deadline (3 s after start, within the sweep's batching slack)
    clock.advance(3.0 + 0.1 - clock.seconds())
    assert late_transport.disconnecting and factory.headers_pending == 0

