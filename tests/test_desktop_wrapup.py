"""Forced wrap-up on a ManualClock: after an answered call the agent is paused with reason ``wrapup`` for
``desktop.wrapup_seconds``, then back to ready — or to the pause they had before; a disposition ends it early; a
pause the agent chose meanwhile stands."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from ccserver.events import CallEnded
from ccserver.state.tracker import StateTracker
from tests.desktop_support import AGENT_PHONE, CALL, Desk, make_desk, play_until


def recorded_end() -> CallEnded:
    """The CallEnded the live model publishes for the recorded VIP call (ami-inbound-vip-answered)."""
    events: list[Any] = []
    play_until(StateTracker(publish=events.append), None)
    return next(e for e in events if isinstance(e, CallEnded) and e.uniqueid == CALL)


def ended(interface: str = AGENT_PHONE, outcome: str = "answered", server: str = "default") -> CallEnded:
    return replace(recorded_end(), interface=interface, outcome=outcome, server=server)


def paused(desk: Desk) -> set[tuple[bool, str]]:
    return {(m.paused, m.reason) for m in desk.asterisk.of(AGENT_PHONE).values()}


def run(loaded: Any, scenario: Any) -> Any:
    _url, sessions = loaded
    desk = make_desk(sessions)

    async def main() -> Any:
        await desk.agents.login(desk.actor("agent8001"), "8001", ["sales", "vip"], interface=AGENT_PHONE)
        return await scenario(desk)

    return asyncio.run(main())


def test_wrapup_pauses_after_an_answered_call_and_ends_by_itself(loaded: Any) -> None:
    async def scenario(desk: Desk) -> list[Any]:
        seen = []
        await desk.wrapup.on_call_ended(ended())
        seen.append(paused(desk))
        seen.append((await desk.agents.status(desk.actor("agent8001"), "8001"))["pause_reason"])
        await desk.clock.advance(29)
        seen.append(paused(desk))
        await desk.clock.advance(1)
        await desk.wrapup.settled()  # the agent service's SQL runs in a thread
        seen.append(paused(desk))
        seen.append(desk.wrapup.current("8001"))
        return seen

    during, reason, later, after, current = run(loaded, scenario)
    assert during == {(True, "wrapup")} and reason == "wrapup"
    assert later == {(True, "wrapup")}
    assert after == {(False, "")} and current is None


def test_wrapup_restores_an_earlier_pause_and_a_disposition_ends_it_early(loaded: Any) -> None:
    async def scenario(desk: Desk) -> list[Any]:
        await desk.agents.pause(desk.actor("agent8001"), "8001", "lunch")  # paused during the call
        await desk.wrapup.on_call_ended(ended())
        seen: list[Any] = [paused(desk)]
        result = await desk.service.disposition(desk.actor("agent8001"), CALL, "resolved", "客户满意")
        seen += [result["wrapup_ended"], paused(desk), desk.clock.pending]
        seen.append(await desk.service.notes(desk.actor("agent8001"), CALL))
        return seen

    during, ended_early, after, timers, notes = run(loaded, scenario)
    assert during == {(True, "wrapup")}
    assert ended_early is True and after == {(True, "lunch")}  # back to the pause the agent had
    assert timers == 0  # the timer was cancelled
    assert [(n["kind"], n["code"], n["text"]) for n in notes] == [("disposition", "resolved", "客户满意")]


def test_a_pause_chosen_during_wrapup_stands_and_unanswered_or_foreign_calls_start_none(loaded: Any) -> None:
    async def scenario(desk: Desk) -> list[Any]:
        seen: list[Any] = []
        await desk.wrapup.on_call_ended(ended(outcome="abandoned"))
        await desk.wrapup.on_call_ended(ended(interface="PJSIP/9999"))  # not signed in through ccserver
        seen.append((paused(desk), desk.wrapup.current("8001")))
        await desk.wrapup.on_call_ended(ended())
        await desk.agents.pause(desk.actor("agent8001"), "8001", "meeting")
        await desk.clock.advance(30)
        await desk.wrapup.settled()
        seen.append(paused(desk))
        desk.wrapup.leads = lambda server: server != "default"  # another node consumes this Asterisk
        await desk.wrapup.on_call_ended(ended())
        seen.append(desk.wrapup.current("8001"))
        return seen

    nothing, kept, not_leader = run(loaded, scenario)
    assert recorded_end().outcome == "answered" and recorded_end().interface == AGENT_PHONE
    assert nothing == ({(False, "")}, None)
    assert kept == {(True, "meeting")}
    assert not_leader is None


def test_ending_a_wrapup_this_node_does_not_time(loaded: Any) -> None:
    """After a restart (or on a node that does not lead the Asterisk) the pause reason is all there is: the agent
    ends it themselves."""
    async def scenario(desk: Desk) -> list[Any]:
        await desk.agents.pause(desk.actor("agent8001"), "8001", "wrapup")  # as a forgotten wrap-up leaves it
        first = await desk.service.end_wrapup(desk.actor("agent8001"))
        again = await desk.service.end_wrapup(desk.actor("agent8001"))
        return [first, again, paused(desk)]

    first, again, after = run(loaded, scenario)
    assert first == {"extension": "8001", "wrapup_ended": True}
    assert again == {"extension": "8001", "wrapup_ended": False}
    assert after == {(False, "")}


def test_calls_ended_together_reach_the_wrapup_through_the_hub_as_one_batch(loaded: Any) -> None:
    from ccserver.events import EventHub

    async def scenario(desk: Desk) -> Any:
        hub = EventHub()
        desk.wrapup.subscribe(hub)
        queried: list[list[tuple[str, str]]] = []
        store = desk.agents.store
        real = store.active_on_many

        def counted(phones: Any) -> Any:
            queried.append(sorted(phones))
            return real(phones)

        store.active_on_many = counted  # type: ignore[method-assign]
        hub.start()
        for event in (ended(outcome="abandoned"), ended(interface="PJSIP/9999"), ended()):
            hub.publish(event)
        for _ in range(500):  # the sign-ins are read in a worker thread
            if desk.wrapup.current("8001") is not None:
                break
            await asyncio.sleep(0.01)
        await hub.stop()
        return queried, paused(desk), desk.wrapup.current("8001")

    queried, now, current = run(loaded, scenario)
    assert queried == [sorted([("default", "PJSIP/9999"), ("default", AGENT_PHONE)])]  # one query, answered calls
    assert now == {(True, "wrapup")} and current is not None and current.uniqueid == CALL
