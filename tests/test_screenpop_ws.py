"""Screen pop end to end in one process: a recorded Asterisk call (tracker → hub) pops, updates and retracts on
real websocket clients; the handshake refuses what it must, each refusal audited."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets

from ccserver.clock import ManualClock
from ccserver.events import EventHub
from screenpop.ws_server import REFUSED
from tests.screenpop_support import AGENTS, ORIGIN, call_frames, feed, frames, make_service, open_agent

HOSTILE = "<img src=x onerror=alert(1)>"
CUSTOMER = {7: {"id": 7, "name": "王芳", "tier": "gold", "numbers": ["+8613912345678"], "lifecycle": "customer",
                "vehicles": [{"brand": "Volvo", "model": "XC60", "plate": "沪A12345", "vin": "LVSHFFAC4HF123456"}]}}


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


async def started(**kw: Any) -> tuple[Any, Any, EventHub]:
    hub = EventHub()
    service, audits = make_service(hub=hub, **kw)
    hub.start()
    await service.start()
    return service, audits, hub


def test_ring_no_answer_retracts_and_the_answering_agent_gets_pop_update_retract() -> None:
    async def main() -> None:
        service, _audits, hub = await started(cards=CUSTOMER)
        try:
            a9 = await open_agent(service, 9, "agent8009")
            a3 = await open_agent(service, 3, "agent8003")
            a1 = await open_agent(service, 1, "agent8001")
            assert (await frames(a9, 1))[0]["type"] == "hello"
            assert (await frames(a3, 1))[0]["type"] == "hello"
            assert (await frames(a1, 1))[0] == {"type": "hello", "seq": 0, "agent": {"id": 1, "username": "agent8001"},
                                                "state": None, "call": None, "customer": None, "call_state": None}
            feed(hub, "ami-inbound-ivr-ringnoanswer-then-answered")
            pop, retract = await call_frames(a9, 2)
            assert pop["state"] == "ringing" and pop["call"]["uniqueid"] == "1795416928.4"
            assert pop["call"]["queue"] == "service" and pop["call"]["linkedid"] == "1795416928.4"
            assert pop["customer"]["name"] == "王芳" and pop["customer"]["caller_name"] == "Liu Yang"
            assert retract["type"] == "retract" and retract["reason"] == "no_answer" and retract["seq"] > pop["seq"]
            pop3, update3, retract3 = await call_frames(a3, 3)
            assert (pop3["type"], update3["type"], retract3["type"]) == ("pop", "update", "retract")
            assert update3["state"] == "answered" and update3["wait"] is not None
            assert retract3["reason"] == "ended" and pop3["seq"] < update3["seq"] < retract3["seq"]
            # Agent 8001 was never rung: nothing of that call ever reaches them.
            with pytest.raises(TimeoutError):
                await call_frames(a1, 1, timeout=0.3)
            for ws in (a9, a3, a1):
                await ws.close()
        finally:
            await service.stop()
            await hub.stop(1.0)

    run(main())


def test_a_hostile_caller_name_arrives_as_data() -> None:
    async def main() -> None:
        service, _audits, hub = await started(cards=CUSTOMER)
        try:
            ws = await open_agent(service, 9, "agent8009")
            await frames(ws, 1)
            feed(hub, "ami-inbound-ivr-ringnoanswer-then-answered", replace=("Liu Yang", HOSTILE))
            pop = (await call_frames(ws, 1))[0]
            assert pop["customer"]["caller_name"] == HOSTILE  # unchanged text; the page sets it as textContent
            await ws.close()
        finally:
            await service.stop()
            await hub.stop(1.0)

    run(main())


def test_resume_with_last_seq_replays_the_missed_frames_once_and_a_too_old_gap_gets_a_hello() -> None:
    async def main() -> None:
        from screenpop.bus import MemoryBus

        service, _audits, hub = await started(cards=CUSTOMER, bus=MemoryBus(replay_frames=3))
        try:
            ws = await open_agent(service, 9, "agent8009")
            await frames(ws, 1)
            # The socket drops; the call rings and stops meanwhile.
            await ws.close()
            feed(hub, "ami-inbound-ivr-ringnoanswer-then-answered")
            for _ in range(50):
                await asyncio.sleep(0.01)
            seq, _cur, _st = await service.bus.snapshot(9)
            assert seq >= 2
            again = await open_agent(service, 9, "agent8009", last_seq=0 if seq <= 3 else seq - 2)
            missed = await frames(again, min(seq, 2))
            assert [f["seq"] for f in missed] == list(range(seq - len(missed) + 1, seq + 1))
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(again.recv(), 0.2)  # nothing twice
            await again.close()
            # More frames than the buffer keeps since last_seq: a fresh hello instead.
            for _ in range(5):
                await service.bus.publish(9, {"type": "agent_state", "state": "idle"}, state=True)
            old = await open_agent(service, 9, "agent8009", last_seq=1)
            hello = (await frames(old, 1))[0]
            assert hello["type"] == "hello" and hello["seq"] == seq + 5 and hello["state"] == "idle"
            await service.bus.publish(9, {"type": "agent_state", "state": "paused"}, state=True)
            assert (await frames(old, 1))[0]["seq"] == seq + 6
            await old.close()
        finally:
            await service.stop()
            await hub.stop(1.0)

    run(main())


def test_hello_carries_the_call_on_screen() -> None:
    async def main() -> None:
        service, _audits, hub = await started(cards=CUSTOMER)
        try:
            # Stop before the ring ends: the card is still up when the agent (re)opens the page.
            feed(hub, "ami-inbound-ivr-ringnoanswer-then-answered",
                 stop=lambda m: m.get("Event") == "AgentRingNoAnswer")
            for _ in range(50):
                await asyncio.sleep(0.01)
            ws = await open_agent(service, 9, "agent8009")
            hello = (await frames(ws, 1))[0]
            assert hello["type"] == "hello" and hello["call_state"] == "ringing"
            assert hello["call"]["uniqueid"] == "1795416928.4" and hello["customer"]["name"] == "王芳"
            await ws.close()
        finally:
            await service.stop()
            await hub.stop(1.0)

    run(main())


def _close_of(ws: Any) -> tuple[int | None, str | None]:
    return ws.close_code, ws.close_reason


async def _closed(url: str, origin: str | None = ORIGIN) -> tuple[int | None, str | None]:
    ws = await websockets.connect(url, origin=origin)  # type: ignore[arg-type]
    with pytest.raises(websockets.ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 5)
    return _close_of(ws)


def test_handshake_refusals_close_with_a_code_and_reason_and_are_audited() -> None:
    clock = ManualClock()

    async def main() -> None:
        service, audits, hub = await started(clock=clock)
        ws_server = service.ws
        agent = ws_server.kinds["agent"]
        invalid_before = REFUSED.value(reason="invalid")
        try:
            base = f"{ws_server.public_url}/ws/agent"
            assert await _closed(base) == (4401, "ticket missing")
            assert await _closed(base + "?ticket=nonsense") == (4401, "ticket invalid, used or expired")
            ticket, _ = await service.tickets.issue(9, "agent8009", "agent", "agent", "s9")
            assert await _closed(ws_server.url_for(agent, ticket), origin="http://evil.example") == (
                4403, "origin not allowed")
            ticket, _ = await service.tickets.issue(9, "agent8009", "agent", "agent", "s9")
            ok = await websockets.connect(ws_server.url_for(agent, ticket), origin=ORIGIN)
            assert json.loads(await ok.recv())["type"] == "hello"
            await ok.close()
            assert await _closed(ws_server.url_for(agent, ticket)) == (4401, "ticket invalid, used or expired")
            ticket, _ = await service.tickets.issue(9, "agent8009", "agent", "agent", "s9")
            await clock.advance(31)
            assert await _closed(ws_server.url_for(agent, ticket)) == (4401, "ticket invalid, used or expired")
            ticket, _ = await service.tickets.issue(9, "agent8009", "agent", "wallboard", "s9")
            assert await _closed(ws_server.url_for(agent, ticket)) == (4403, "ticket is for another socket")
            ticket, _ = await service.tickets.issue(9, "agent8009", "agent", "agent", "s9")
            assert await _closed(ws_server.url_for(agent, ticket) + "&last_seq=-1") == (
                4400, "last_seq must be a non-negative integer")
            assert await _closed(f"{ws_server.public_url}/ws/nothing") == (4404, "no such socket")
            # No Origin header (a non-browser client with a valid ticket): allowed.
            ticket, _ = await service.tickets.issue(9, "agent8009", "agent", "agent", "s9")
            plain = await websockets.connect(ws_server.url_for(agent, ticket))
            assert json.loads(await plain.recv())["type"] == "hello"
            # The login ends: its sockets close.
            ws_server.end_session("s9")
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(plain.recv(), 5)
            assert _close_of(plain) == (4401, "session ended")
            # The second and third made-up tickets within the minute were counted, not written again.
            reasons = [row[3]["reason"] for row in audits.rows if row[0] == "ws.refused"]
            assert reasons == ["missing", "invalid", "origin", "wrong_socket", "last_seq", "path"]
            assert REFUSED.value(reason="invalid") - invalid_before == 3
            await clock.advance(60)
            assert await _closed(base + "?ticket=again") == (4401, "ticket invalid, used or expired")
            last = audits.rows[-1]
            assert last[0] == "ws.refused" and last[3]["reason"] == "invalid" and last[3]["repeats"] == 2
        finally:
            await service.stop()
            await hub.stop(1.0)

    run(main())


def test_masked_roles_see_masked_numbers_and_vins() -> None:
    async def main() -> None:
        service, _audits, hub = await started(cards=CUSTOMER, mask_roles=("agent",))
        try:
            ws = await open_agent(service, 9, "agent8009")
            await frames(ws, 1)
            feed(hub, "ami-inbound-ivr-ringnoanswer-then-answered")
            pop = (await call_frames(ws, 1))[0]
            card = pop["customer"]
            assert card["masked"] and card["numbers"] == ["+86139****5678"]
            assert card["vehicles"][0]["vin"] == "LVS**********3456" and "13912345678" not in json.dumps(pop)
            await ws.close()
        finally:
            await service.stop()
            await hub.stop(1.0)

    run(main())


def test_only_the_node_leading_the_asterisk_publishes() -> None:
    async def main() -> None:
        service, _audits, hub = await started(cards=CUSTOMER, leads=lambda _server: False)
        try:
            ws = await open_agent(service, 9, "agent8009")
            await frames(ws, 1)
            feed(hub, "ami-inbound-ivr-ringnoanswer-then-answered")
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.3)
            await ws.close()
        finally:
            await service.stop()
            await hub.stop(1.0)

    run(main())


assert AGENTS  # the static agent map the tests use (8009 never answers, 8003 answers, 8001 is never rung)


def test_an_asterisk_restart_takes_down_the_cards_of_calls_it_lost() -> None:
    from ccserver.events import Resynced

    async def main() -> None:
        service, _audits, hub = await started(cards=CUSTOMER)
        try:
            ws = await open_agent(service, 9, "agent8009")
            await frames(ws, 1)
            feed(hub, "ami-inbound-ivr-ringnoanswer-then-answered",
                 stop=lambda m: m.get("Event") == "AgentRingNoAnswer")
            assert (await call_frames(ws, 1))[0]["type"] == "pop"
            hub.publish(Resynced("other", 1, 0.0, (), (), (), True))  # another Asterisk: not this call's
            hub.publish(Resynced("default", 999, 0.0, (), (), (), True))  # this call's Asterisk lost it
            retract = (await call_frames(ws, 1))[0]
            assert retract["type"] == "retract" and retract["reason"] == "ended"
            assert retract["call"]["uniqueid"] == "1795416928.4"
            await ws.close()
        finally:
            await service.stop()
            await hub.stop(1.0)

    run(main())


def test_sla_alarms_of_the_agents_tickets_and_their_state_reach_them() -> None:
    from ccserver.events import TicketSlaAlarm

    async def main() -> None:
        service, _audits, hub = await started(cards=CUSTOMER)
        try:
            ws = await open_agent(service, 9, "agent8009")
            await frames(ws, 1)
            hub.publish(TicketSlaAlarm("tickets", 1, 0.0, 77, "complaint", "high", "resolution", "warning",
                                       1_800_000_000.0, 1, "service", 9, 7, HOSTILE))
            hub.publish(TicketSlaAlarm("tickets", 2, 0.0, 78, "repair", "normal", "resolution", "breach",
                                       1_800_000_000.0, 1, "service", 3, 7, "someone else's"))
            frame = (await frames(ws, 1))[0]
            assert frame["type"] == "ticket" and frame["event"] == "sla_warning"
            assert frame["ticket"]["id"] == 77 and frame["ticket"]["subject"] == HOSTILE
            feed(hub, "ami-inbound-ivr-ringnoanswer-then-answered")
            states = []
            while not states or states[-1] != "idle":
                got = (await frames(ws, 1))[0]
                if got["type"] == "agent_state":
                    states.append(got["state"])
            assert "ringing" in states
            await ws.close()
        finally:
            await service.stop()
            await hub.stop(1.0)

    run(main())


def test_the_wallboard_socket_pushes_the_snapshot_to_supervisors_only() -> None:
    from ccserver.wallboard import WallboardPublisher
    from screenpop.wallboard_socket import WallboardSockets

    async def main() -> None:
        service, _audits, hub = await started()
        builds = 0

        async def build(version: int) -> dict[str, Any]:
            nonlocal builds
            builds += 1
            return {"version": version, "queues": [], "note": HOSTILE}

        publisher = WallboardPublisher(build, ManualClock())
        WallboardSockets(publisher).register(service.ws)
        try:
            kind = service.ws.kinds["wallboard"]
            ticket, _ = await service.tickets.issue(9, "agent8009", "agent", "wallboard", "s9")
            refused = await websockets.connect(service.ws.url_for(kind, ticket), origin=ORIGIN)
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(refused.recv(), 5)
            assert (refused.close_code, refused.close_reason) == (4403, "role not allowed on this socket")
            ticket, _ = await service.tickets.issue(2, "supervisor1", "supervisor", "wallboard", "s2")
            board = await websockets.connect(service.ws.url_for(kind, ticket), origin=ORIGIN)
            first = json.loads(await asyncio.wait_for(board.recv(), 5))
            assert first["note"] == HOSTILE
            await publisher.flush()
            second = json.loads(await asyncio.wait_for(board.recv(), 5))
            assert second["version"] > first["version"] and builds == 2
            await board.close()
        finally:
            await service.stop()
            await hub.stop(1.0)

    run(main())


def test_a_user_deactivated_or_forced_to_change_password_elsewhere_loses_their_sockets_at_the_next_check() -> None:
    async def main() -> None:
        service, _audits, hub = await started()
        refused: dict[int, str] = {}
        checked: list[set[int]] = []

        async def users_refused(ids: set[int]) -> dict[int, str]:
            checked.append(set(ids))
            return {i: why for i, why in refused.items() if i in ids}

        service.ws.users_refused = users_refused
        try:
            a9 = await open_agent(service, 9, "agent8009")
            a3 = await open_agent(service, 3, "agent8003")
            a1 = await open_agent(service, 1, "agent8001")
            for ws in (a9, a3, a1):
                assert (await frames(ws, 1))[0]["type"] == "hello"
            assert await service.ws.check_users() == 0
            refused.update({9: "deactivated", 3: "password_change"})  # done on another node
            assert await service.ws.check_users() == 2 and checked == [{1, 3, 9}, {1, 3, 9}]
            for ws in (a9, a3):
                with pytest.raises(websockets.ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 5)
            assert (a9.close_code, a9.close_reason) == (4401, "user deactivated")
            assert (a3.close_code, a3.close_reason) == (4401, "password change required")
            await a1.send("still here")  # the others' sockets stay open
            assert a1.close_code is None
            await a1.close()
        finally:
            await service.stop()
            await hub.stop(1.0)

    run(main())


def test_end_user_closes_every_socket_of_that_user_with_the_reason() -> None:
    async def main() -> None:
        service, _audits, hub = await started()
        try:
            first = await open_agent(service, 3, "agent8003")
            second = await open_agent(service, 3, "agent8003")  # a second tab
            other = await open_agent(service, 1, "agent8001")
            for ws in (first, second, other):
                assert (await frames(ws, 1))[0]["type"] == "hello"
            assert service.ws.end_user(3, "password_change") == 2
            for ws in (first, second):
                with pytest.raises(websockets.ConnectionClosed):
                    while True:
                        await asyncio.wait_for(ws.recv(), 5)
                assert (ws.close_code, ws.close_reason) == (4401, "password change required")
            await other.send("still here")
            assert other.close_code is None
            await other.close()
        finally:
            await service.stop()
            await hub.stop(1.0)

    run(main())


def test_refused_user_ids_reads_deactivated_deleted_and_forced_password_change(sqlite_url: str) -> None:
    from sqlalchemy.orm import sessionmaker

    from ccserver.db.engine import make_engine
    from ccserver.db.models import Base, User
    from screenpop.wiring import refused_user_ids

    engine = make_engine(sqlite_url)
    Base.metadata.create_all(engine)
    factory = sessionmaker(engine)
    with factory.begin() as s:
        s.add_all([User(id=1, username="ok", display_name="ok", role="agent"),
                   User(id=2, username="gone", display_name="gone", role="agent", active=False),
                   User(id=3, username="reset", display_name="reset", role="agent", must_change_password=True),
                   User(id=4, username="both", display_name="both", role="agent", active=False,
                        must_change_password=True)])
    assert refused_user_ids(factory, {1, 2, 3, 4, 5}) == {2: "deactivated", 3: "password_change",
                                                        4: "deactivated", 5: "deactivated"}
    assert refused_user_ids(factory, {1}) == {}
    engine.dispose()


def test_frames_queued_in_one_turn_of_the_loop_go_out_in_one_write_in_order() -> None:
    from types import SimpleNamespace

    from websockets.protocol import State

    from ccserver.wallboard.fanout import wire_frame
    from screenpop.ws_server import sender

    class Transport:
        def __init__(self) -> None:
            self.writes: list[bytes] = []

        def write(self, data: bytes) -> None:
            self.writes.append(data)

    async def main() -> None:
        transport = Transport()
        ws: Any = SimpleNamespace(protocol=SimpleNamespace(state=State.OPEN, extensions=[]), send_in_progress=None,
                                  transport=transport)
        send = sender(ws)
        send('{"seq":1,"type":"agent_state"}')
        send('{"seq":2,"type":"pop","customer":{"name":"王芳"}}')
        assert transport.writes == []  # not yet: at the end of this turn
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert transport.writes == [wire_frame(b'{"seq":1,"type":"agent_state"}')
                                    + wire_frame('{"seq":2,"type":"pop","customer":{"name":"王芳"}}'.encode())]
        send('{"seq":3,"type":"retract"}')
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert transport.writes[1:] == [wire_frame(b'{"seq":3,"type":"retract"}')]
        ws.protocol.state = State.CLOSING  # a socket going away gets nothing more
        send('{"seq":4,"type":"agent_state"}')
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert len(transport.writes) == 2

    run(main())


def test_a_message_over_4_kib_closes_the_socket_1009_without_an_error_in_the_log(caplog: Any) -> None:
    """Clients send nothing we need; a large frame closes the socket (1009). It logged an ERROR traceback."""
    import logging

    clock = ManualClock()

    async def main() -> int | None:
        service, _audits, hub = await started(clock=clock)
        try:
            ticket, _ = await service.tickets.issue(9, "agent8009", "agent", "agent", "s9")
            ws = await websockets.connect(service.ws.url_for(service.ws.kinds["agent"], ticket), origin=ORIGIN)
            assert json.loads(await ws.recv())["type"] == "hello"
            await ws.send("x" * 5000)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
            await asyncio.wait_for(_until_no_sockets(service), 5)
            return closed.value.rcvd.code if closed.value.rcvd else None
        finally:
            await service.stop()
            await hub.stop(1.0)

    caplog.set_level(logging.ERROR)
    assert run(main()) == 1009
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def _until_no_sockets(service: Any) -> None:
    while service.ws.connections:
        await asyncio.sleep(0.01)
