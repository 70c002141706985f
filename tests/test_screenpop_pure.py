"""Screen pop's pure parts: websocket tickets (memory and Redis), the card builder, frame numbering and replay,
and a socket's de-duplication while it resumes."""

from __future__ import annotations

import asyncio
import json
from datetime import date

import pytest

from ccserver.clock import ManualClock
from screenpop.bus import LocalSockets, MemoryBus, RedisBus, Socket
from screenpop.card import (
    CallFacts,
    birthday_reminder,
    build_card,
    care_reminders,
    mask_number,
    mask_vin,
    next_birthday,
)
from screenpop.frames import AgentLog, encode_body, replay_after, seq_of, with_seq
from screenpop.ws_tickets import MemoryTickets, RedisTickets, TicketRefused

TODAY = date(2026, 11, 23)


async def _ticket_rules(store: object, clock: ManualClock) -> None:
    ticket, grant = await store.issue(5, "agent8005", "agent", "agent", "sess")  # type: ignore[attr-defined]
    assert grant.user_id == 5 and grant.expires_at == clock.time() + 30
    assert (await store.redeem(ticket, "agent")).username == "agent8005"  # type: ignore[attr-defined]
    for bad, reason in ((ticket, "invalid"), (None, "missing"), ("", "missing"), ("x" * 500, "invalid"),
                        ("票", "invalid")):
        with pytest.raises(TicketRefused) as refused:
            await store.redeem(bad, "agent")  # type: ignore[attr-defined]
        assert refused.value.reason == reason
    other, _ = await store.issue(5, "agent8005", "agent", "wallboard")  # type: ignore[attr-defined]
    with pytest.raises(TicketRefused) as refused:
        await store.redeem(other, "agent")  # type: ignore[attr-defined]
    assert refused.value.reason == "wrong_socket"
    late, _ = await store.issue(5, "agent8005", "agent", "agent")  # type: ignore[attr-defined]
    await clock.advance(30)
    with pytest.raises(TicketRefused) as refused:
        await store.redeem(late, "agent")  # type: ignore[attr-defined]
    assert refused.value.reason == "invalid"


def test_memory_tickets_are_single_use_bound_and_expire() -> None:
    clock = ManualClock()
    asyncio.run(_ticket_rules(MemoryTickets(clock.time), clock))


def test_redis_tickets_are_single_use_bound_and_expire(redis_url: str) -> None:
    import redis.asyncio as aioredis

    async def main() -> None:
        client = aioredis.Redis.from_url(redis_url)
        clock = ManualClock()
        try:
            await _ticket_rules(RedisTickets(client, clock.time), clock)
            ticket, _ = await RedisTickets(client, clock.time).issue(1, "a", "agent", "agent")
            assert 0 < await client.ttl("ccserver:ws-ticket:" + ticket) <= 31  # Redis forgets it too
        finally:
            await client.aclose()

    asyncio.run(main())


DATA = {
    "id": 42, "name": "张伟", "kind": "person", "tier": "gold", "score": 71.5,
    "reasons": ["service spend ¥12,400 in 24 months: +18.2"], "membership_level": 3, "membership_points": 4200,
    "language": "zh", "lifecycle": "customer", "consultant": {"name": "王芳", "extension": "8001"},
    "advisor": None, "store": "上海沃尔沃", "numbers": ["+8613800138000"],
    "vehicles": [
        {"brand": "Volvo", "model": "XC60", "plate": "沪A12345", "vin": "LVSHFFAC4HF123456",
         "purchase_date": "2023-05-01", "mileage_km": 40000, "next_maintenance_due": "2026-12-10",
         "insurance_expiry": "2027-06-01"},
        {"brand": "Volvo", "model": "S90", "plate": None, "vin": "YV1PW10C1J1000001",
         "next_maintenance_due": None, "insurance_expiry": "2026-11-20"},
    ],
    "orders": [{"kind": "vehicle", "amount": 300000.0, "date": "2023-05-01"}] * 7,
    "visits": [{"date": f"2026-0{i}-01", "status": "done", "description": None} for i in range(1, 8)],
    "tickets": [{"id": 3, "kind": "complaint", "status": "new", "severity": "high", "subject": "<b>噪音</b>"}],
    "calls": [{"date": "2026-11-20", "outcome": "answered", "disposition": "resolved", "queue": "vip"}] * 6,
}


def test_card_carries_the_customer_with_care_reminders_and_limits() -> None:
    card = build_card(DATA, CallFacts(caller_number="+8613800138000", ivr_path="main>2", wait_seconds=12.5),
                      today=TODAY, masked=False)
    assert card["known"] and card["customer_id"] == "42" and card["name"] == "张伟" and card["tier"] == "gold"
    assert card["reasons"] == DATA["reasons"] and card["membership"] == {"level": 3, "points": 4200}
    assert card["consultant"] == {"name": "王芳", "extension": "8001"} and card["store"] == "上海沃尔沃"
    assert card["number"] == "+8613800138000" and card["vehicles"][0]["vin"] == "LVSHFFAC4HF123456"
    assert (len(card["orders"]), len(card["visits"]), len(card["calls"])) == (5, 5, 5)
    assert card["open_tickets"][0]["subject"] == "<b>噪音</b>"  # data, never markup
    assert [(c["kind"], c["days"]) for c in card["care"]] == [("insurance", -3), ("maintenance", 17)]
    assert card["ivr_path"] == "main>2" and card["wait_seconds"] == 12.5 and not card["ambiguous"]


def test_card_masks_for_masked_roles_and_covers_unknown_withheld_and_ambiguous_callers() -> None:
    masked = build_card(DATA, CallFacts(caller_number="+8613800138000"), today=TODAY, masked=True)
    assert masked["number"] == "+86138****8000" and masked["numbers"] == ["+86138****8000"]
    assert [v["vin"] for v in masked["vehicles"]] == ["LVS**********3456", "YV1**********0001"]
    withheld = build_card(None, CallFacts(withheld=True), today=TODAY, masked=False)
    assert withheld["withheld"] and withheld["number"] is None and not withheld["known"]
    unknown = build_card(None, CallFacts(caller_number="02158881234"), today=TODAY, masked=False)
    assert not unknown["known"] and unknown["number"] == "02158881234"
    shared = build_card(DATA, CallFacts(caller_number="+862158881234", variants=(("43", "李娜"),)), today=TODAY,
                        masked=False)
    assert shared["ambiguous"] and shared["variants"] == [{"id": "43", "name": "李娜"}]
    prospect = build_card({"id": 9, "name": "来电 138****8000", "tier": "prospect", "lifecycle": "target"},
                          CallFacts(caller_number="+8613800138000", new_prospect=True), today=TODAY, masked=False)
    assert prospect["new_prospect"]
    assert mask_number("1234") == "****" and mask_vin("ABC") == "***" and mask_number(None) is None
    assert care_reminders([{"insurance_expiry": "not a date"}], TODAY) == []
    assert care_reminders([{"insurance_expiry": "2023-10-15"}], TODAY) == []  # years overdue: a stale record


def _days(born: str, today: date) -> int | None:
    reminder = birthday_reminder(born, today)
    return None if reminder is None else int(reminder["days"])


def test_birthday_reminder_within_30_days_across_the_year_end_and_on_29_february() -> None:
    assert _days("1985-12-10", TODAY) == 17 and _days("1985-11-23", TODAY) == 0  # soon; today
    assert _days("1985-11-22", TODAY) is None  # yesterday: next year's is 364 days off
    assert _days("1985-12-23", TODAY) == 30 and _days("1985-12-24", TODAY) is None  # the 30-day edge
    # December looks into January: next year's birthday, the age it brings.
    dec = date(2026, 12, 20)
    assert birthday_reminder("1990-01-05", dec) == {"kind": "birthday", "due": "2027-01-05", "days": 16, "age": 37,
                                                    "vehicle": None, "plate": None}
    assert _days("1990-12-19", dec) is None and _days("1990-12-31", date(2026, 12, 31)) == 0
    assert _days("1990-01-19", date(2026, 12, 20)) == 30
    # 29 February: on 28 February in a common year, on the 29th in a leap year.
    assert next_birthday(date(1988, 2, 29), date(2027, 2, 10)) == date(2027, 2, 28)
    assert next_birthday(date(1988, 2, 29), date(2028, 2, 10)) == date(2028, 2, 29)
    assert next_birthday(date(1988, 2, 29), date(2027, 3, 1)) == date(2028, 2, 29)  # past this year's
    assert next_birthday(date(1988, 2, 29), date(2027, 2, 28)) == date(2027, 2, 28)
    assert _days("1988-02-29", date(2027, 2, 28)) == 0 and _days("1988-02-29", date(2028, 2, 1)) == 28
    assert _days("1988-02-29", date(2027, 1, 30)) == 29  # to 28 February 2027
    # Born 28 February, today 29 February of a leap year: next year's, 365 days off.
    assert _days("1990-02-28", date(2028, 2, 29)) is None
    # No date, a bad one, a date of birth after today: no reminder.
    for nothing in (None, "", "not a date", "2027-01-01", date(2030, 1, 1)):
        assert birthday_reminder(nothing, TODAY) is None
    assert birthday_reminder(date(1985, 12, 1), TODAY, days=5) is None  # a shorter window


def test_the_card_puts_the_birthday_among_the_care_reminders_most_urgent_first() -> None:
    card = build_card({**DATA, "birthday": "1979-12-01"}, CallFacts(caller_number="+8613800138000"), today=TODAY,
                      masked=True)
    assert card["birthday"] == "1979-12-01"
    assert [(c["kind"], c["days"]) for c in card["care"]] == [("insurance", -3), ("birthday", 8), ("maintenance", 17)]
    assert card["care"][1] == {"kind": "birthday", "due": "2026-12-01", "days": 8, "age": 47, "vehicle": None,
                               "plate": None}
    far = build_card({**DATA, "birthday": "1979-06-01"}, CallFacts(), today=TODAY, masked=False)
    assert "birthday" not in [c["kind"] for c in far["care"]] and far["birthday"] == "1979-06-01"
    none = build_card(DATA, CallFacts(), today=TODAY, masked=False)
    assert none["birthday"] is None and [c["kind"] for c in none["care"]] == ["insurance", "maintenance"]


def test_frames_are_numbered_per_agent_and_replayed_without_gaps() -> None:
    log = AgentLog(size=3)
    texts = [log.append(encode_body({"type": "pop", "n": i}))[1] for i in range(5)]
    assert [seq_of(t) for t in texts] == [1, 2, 3, 4, 5] and texts[0] == '{"seq":1,"type":"pop","n":0}'
    assert replay_after(log.frames, log.seq, 5) == []
    assert replay_after(log.frames, log.seq, 3) == texts[3:]
    assert replay_after(log.frames, log.seq, 2) == texts[2:]
    assert replay_after(log.frames, log.seq, 1) is None  # frame 2 is gone: a fresh hello
    assert replay_after(log.frames, log.seq, 9) is None  # a seq from another life
    assert with_seq("{}", 4) == '{"seq":4}'


def test_a_resuming_socket_sends_held_frames_once_in_order() -> None:
    sent: list[str] = []
    sock = Socket(1, sent.append)
    local = LocalSockets()
    local.add(sock)
    for seq in (3, 4, 5):
        local.deliver(1, seq, f"f{seq}")
    local.deliver(2, 1, "someone else's")
    assert sent == []  # held while the replay is read
    sock.release(4)  # the replay went out up to 4
    local.deliver(1, 5, "f5 again")
    local.deliver(1, 6, "f6")
    assert sent == ["f5", "f6"]
    local.remove(sock)
    assert len(local) == 0


def test_memory_bus_keeps_the_current_call_and_state() -> None:
    async def main() -> None:
        bus = MemoryBus()
        await bus.publish(1, {"type": "agent_state", "state": "idle"}, state=True)
        await bus.publish(1, {"type": "pop", "state": "ringing"}, call="set")
        seq, current, state = await bus.snapshot(1)
        assert seq == 2 and current == '{"seq":2,"type":"pop","state":"ringing"}' and '"idle"' in (state or "")
        await bus.publish(1, {"type": "retract", "reason": "no_answer"}, call="clear")
        assert (await bus.snapshot(1))[1] is None
        assert await bus.replay(1, 1) is not None and await bus.replay(2, 0) == [] and await bus.replay(2, 3) is None

    asyncio.run(main())


def test_redis_bus_numbers_atomically_and_replays(redis_url: str) -> None:
    import redis.asyncio as aioredis

    async def main() -> None:
        client = aioredis.Redis.from_url(redis_url)
        bus = RedisBus(client, replay_frames=2)
        sent: list[str] = []
        await bus.start()
        try:
            sock = Socket(7, sent.append)
            sock.release(0)
            bus.local.add(sock)
            for i in range(3):
                await bus.publish(7, {"type": "pop", "i": i}, call="set")
            for _ in range(200):
                if len(sent) == 3:
                    break
                await asyncio.sleep(0.01)
            assert [seq_of(t) for t in sent] == [1, 2, 3]
            assert await bus.replay(7, 1) == sent[1:] and await bus.replay(7, 0) is None
            seq, current, _state = await bus.snapshot(7)
            assert seq == 3 and current == sent[2]
        finally:
            await bus.stop()
            await client.aclose()

    asyncio.run(main())


def test_the_publishers_shortcut_sends_only_the_next_frame() -> None:
    sent: list[str] = []
    sock = Socket(7, sent.append)
    sock.deliver_next(1, "a")  # still resuming (held): the shortcut never jumps the replay
    sock.release(0)
    sock.deliver_next(2, "b")  # seq 1 (another node's) is still on its way: left to the subscription
    sock.deliver(1, "a")
    sock.deliver(2, "b")
    sock.deliver_next(3, "c")
    sock.deliver(3, "c")  # the subscription's copy of what the shortcut sent
    assert sent == ["a", "b", "c"]


def test_the_publishing_node_sends_to_its_own_sockets_without_the_pubsub_round_trip(redis_url: str) -> None:
    import redis.asyncio as aioredis

    async def main() -> None:
        client = aioredis.Redis.from_url(redis_url)
        bus = RedisBus(client)  # not started: nothing comes back through the subscription
        sent: list[str] = []
        try:
            sock = Socket(7, sent.append)
            sock.release(0)
            bus.local.add(sock)
            assert await bus.publish(7, {"type": "pop", "i": 0}, call="set") == 1
            assert await bus.publish(8, {"type": "pop", "i": 1}) == 1  # another agent: not ours
            assert [json.loads(t) for t in sent] == [{"seq": 1, "type": "pop", "i": 0}]
            assert await bus.replay(7, 0) == sent  # the same text as the script kept
        finally:
            await client.aclose()

    asyncio.run(main())


def test_the_agent_map_prefers_the_sign_in_and_rereads_on_a_miss_at_most_once_a_second() -> None:
    from screenpop.agents_map import AgentDirectory, AgentRef

    clock = ManualClock()
    reads = 0
    own = AgentRef(1, "agent8001", "8001")
    desk = AgentRef(2, "agent8002", "8002")
    table = {(None, "PJSIP/8001"): own, ("pbx1", "PJSIP/8001"): desk}

    async def load() -> dict[tuple[str | None, str], AgentRef]:
        nonlocal reads
        reads += 1
        return dict(table)

    async def main() -> None:
        agents = AgentDirectory(load, now=clock.time)
        await agents.refresh()
        assert agents.lookup("pbx1", "PJSIP/8001") == desk  # hot-desking: agent8002 sits at 8001's phone
        assert agents.lookup("pbx2", "PJSIP/8001") == own  # elsewhere, the phone's owner
        assert await agents.resolve("pbx1", "PJSIP/9999") is None and reads == 1  # just read: no second read
        await clock.advance(1.5)
        table[("pbx1", "PJSIP/9999")] = AgentRef(3, "agent8003", "8003")
        assert (await agents.resolve("pbx1", "PJSIP/9999")).username == "agent8003" and reads == 2  # type: ignore[union-attr]

    asyncio.run(main())


def test_the_card_cache_reloads_a_changed_customer() -> None:
    from ccserver.customers.changes import Invalidation
    from screenpop.cards import CardCache

    clock = ManualClock()
    loads: list[int] = []

    async def load(cid: int) -> dict[str, object]:
        loads.append(cid)
        return {"id": cid, "name": f"v{len(loads)}"}

    async def main() -> None:
        cache = CardCache(load, now=clock.time)
        first = await cache.prefetch("u1", "42", "+8613800138000")
        again = await cache.prefetch("u2", "42", "+8613800138000")
        assert first.data == again.data == {"id": 42, "name": "v1"} and loads == [42]
        assert cache.ready("u1") is first and cache.ready("nope") is None
        cache.listener(Invalidation(customer_ids=frozenset({42})))
        third = await cache.prefetch("u3", "42", None)
        assert third.data == {"id": 42, "name": "v2"} and third.facts.withheld
        await clock.advance(200)  # past the TTL: read again
        assert (await cache.prefetch("u4", "42", "1")).data == {"id": 42, "name": "v3"}

    asyncio.run(main())


def test_the_socket_url_is_built_from_the_public_base() -> None:
    from screenpop.ws_server import WsServer

    for base in ("wss://cc.example.com", "wss://cc.example.com/", "wss://cc.example.com/ws"):
        server = WsServer(MemoryTickets(ManualClock().time), host="127.0.0.1", port=8081, public_url=base)
        kind = server.add_kind("agent", "/ws/agent", None)
        assert server.url_for(kind, "T") == "wss://cc.example.com/ws/agent?ticket=T"
        assert server.public_origin == "wss://cc.example.com"
    local = WsServer(MemoryTickets(ManualClock().time), host="127.0.0.1", port=8081)
    assert local.public_url == "ws://127.0.0.1:8081"


def test_the_card_is_encoded_once_per_call_and_spliced_into_each_frame_as_built() -> None:
    """The pop and update frames carry exactly the card build_card makes (the wait of that moment, masked for a
    masked role), though it was encoded ahead, when the prefetch finished; a later IVR path, or the next day,
    makes it encode again."""
    from ccserver.events import AgentRinging, CallAnswered, CallOffered
    from screenpop.agents_map import AgentDirectory, AgentRef
    from screenpop.cards import CardCache
    from screenpop.lifecycle import ScreenPop

    refs = {("default", "PJSIP/1"): AgentRef(1, "a1", "1", "agent"),
            ("default", "PJSIP/2"): AgentRef(2, "s2", "2", "supervisor")}
    day = [TODAY]

    async def main() -> None:
        ivr_done: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()

        async def load(_cid: int) -> dict[str, object]:
            return {**DATA, "birthday": "1980-12-01"}

        async def identify(_raw: str) -> tuple[int | None, list[tuple[str, str]]]:
            return 42, [("43", "李娜")]

        async def ivr_of(_decision: str) -> str | None:
            return await ivr_done

        async def agent_map() -> dict[object, AgentRef]:
            return dict(refs)

        bus = MemoryBus()
        got: dict[int, list[dict[str, object]]] = {1: [], 2: []}
        for user in (1, 2):
            sock = Socket(user, lambda text, user=user: got[user].append(json.loads(text)))
            sock.release(0)
            bus.local.add(sock)
        cards = CardCache(load, identify, now=lambda: 0.0, ivr_of=ivr_of)
        pop = ScreenPop(bus, AgentDirectory(agent_map, now=lambda: 0.0), cards, leads=lambda _s: True,
                        mask_roles=("supervisor",), today=lambda: day[0])
        await pop.agents.refresh()
        await pop.on_event(CallOffered("default", 1, 0.0, "9.1", "9.1", "service", 1, 0, "+8613800138000", "Liu",
                                       "4008", "d1", None, "gold"))
        await cards.pending("9.1")  # type: ignore[misc]
        await asyncio.sleep(0)
        assert set(pop._encoded) == {("9.1", False), ("9.1", True)}  # encoded ahead, both maskings

        def expected(masked: bool, wait: float, ivr: str | None, today: date) -> dict[str, object]:
            facts = CallFacts(caller_number="+8613800138000", caller_name="Liu", variants=(("43", "李娜"),),
                              ivr_path=ivr, wait_seconds=wait)
            return build_card({**DATA, "birthday": "1980-12-01"}, facts, today=today, masked=masked)

        await pop.on_event(AgentRinging("default", 2, 0.0, "9.1", "9.1", "service", "PJSIP/1", "a1", None, "d1",
                                        None, "+8613800138000", 7.5))
        await pop.on_event(AgentRinging("default", 3, 0.0, "9.1", "9.1", "service", "PJSIP/2", "s2", None, "d1",
                                        None, "+8613800138000", 8.0))
        assert got[1][-1]["type"] == "pop" and got[1][-1]["customer"] == expected(False, 7.5, None, TODAY)
        assert got[2][-1]["customer"] == expected(True, 8.0, None, TODAY)
        assert got[1][-1]["call"]["wait"] == 7.5  # type: ignore[index]
        ivr_done.set_result("main.2/after_sales.1")  # the IVR path joins, and the day turns
        await asyncio.sleep(0)
        day[0] = date(2026, 11, 24)
        await pop.on_event(CallAnswered("default", 4, 0.0, "9.1", "9.1", "service", "PJSIP/1", "a1", 9.0, 9,
                                        "d1", None))
        update = got[1][-1]
        assert update["type"] == "update" and update["state"] == "answered" and update["wait"] == 9.0
        assert update["customer"] == expected(False, 9.0, "main.2/after_sales.1", date(2026, 11, 24))
        assert [c["days"] for c in update["customer"]["care"] if c["kind"] == "birthday"] == [7]  # type: ignore
        assert json.loads(bus._current[1]) == update  # what a hello shows now

    asyncio.run(main())


def test_frames_posted_together_go_to_redis_in_one_pipeline_even_when_redis_lost_the_script(
        redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import secrets

    import redis.asyncio as aioredis

    import screenpop.bus as bus_module

    # A script text Redis has never seen (as after a restart): the first pipeline meets NOSCRIPT, loads, retries.
    monkeypatch.setattr(bus_module, "PUBLISH_SCRIPT", bus_module.PUBLISH_SCRIPT + f"\n-- {secrets.token_hex(8)}")

    async def main() -> None:
        client = aioredis.Redis.from_url(redis_url)
        bus = RedisBus(client)  # not started: only the publisher's shortcut delivers
        sent: list[str] = []
        try:
            assert await client.script_exists(bus._script.sha) == [False]
            sock = Socket(7, sent.append)
            sock.release(0)
            bus.local.add(sock)
            loop = asyncio.get_running_loop()
            done = [loop.create_future() for _ in range(3)]
            bus.post(7, {"type": "agent_state", "state": "ringing"}, state=True, done=done[0])
            bus.post_body(7, '{"type":"pop","state":"ringing"}', "pop", call="set", done=done[1])
            bus.post(8, {"type": "agent_state", "state": "idle"}, done=done[2])
            assert await asyncio.gather(*done) == [1, 2, 1]
            assert [json.loads(t)["type"] for t in sent] == ["agent_state", "pop"]
            assert await client.script_exists(bus._script.sha) == [True]
            seq, current, state = await bus.snapshot(7)
            assert seq == 2 and current == sent[1] and state == sent[0]
        finally:
            await client.aclose()

    asyncio.run(main())


def test_a_taken_websocket_port_is_one_line_naming_the_setting() -> None:
    """A second `ccserver run` beside the first: one line naming ws.listen, not chained tracebacks."""
    import asyncio
    import socket

    from ccserver.components import ListenError
    from screenpop.ws_server import WsServer

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    server = WsServer(MemoryTickets(ManualClock().time), host="127.0.0.1", port=port)
    try:
        with pytest.raises(ListenError, match=rf"cannot listen on 127\.0\.0\.1:{port} \(ws\.listen\)"):
            asyncio.run(server.start())
    finally:
        taken.close()
