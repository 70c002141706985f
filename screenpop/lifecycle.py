"""The screen pop's lifecycle, from the call-events hub to the agents' frames.

- ``CallOffered`` (the caller joined a queue): start loading the card (:mod:`screenpop.cards`), off the hot path.
- ``AgentRinging`` for a phone → ``pop`` (state ``ringing``) to the agent signed in at it (hot-desking:
  :mod:`screenpop.agents_map`), with the call (uniqueid, linkedid, queue, decision_id — the routing decision's
  ``CC_DECISION_ID`` —, wait) and the card.
- ``CallAnswered`` → ``update`` (state ``answered``, the wait) to the agent who answered.
- ``AgentRingStopped`` (no answer, answered elsewhere — including ringall losers —, caller left, ended),
  ``CallAbandoned`` → ``retract`` with that reason to each agent still ringing; ``CallEnded`` → ``retract``
  (``ended``) to the agent who had the call.
- ``AgentStateChanged`` → ``agent_state``; ``TicketSlaAlarm`` for a ticket assigned to a user → ``ticket``.

Frames are posted, not awaited (``bus.post``): the events behind a frame never wait for its Redis round trip.

The card goes into a frame as JSON encoded once per call (and masking), when its prefetch finishes — seconds
before the phone rings: a ring only adds the wait and the call's facts (``_card_json``). Its ``wait_seconds``
comes last in the object.

Every node keeps the same bookkeeping (they all see the events, relayed), but only the node leading the event's
Asterisk publishes frames, so each frame is sent once, whatever node the agent's socket is on (:mod:`.bus`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable
from datetime import date
from typing import Any

from ccserver.events import (
    AgentRinging,
    AgentRingStopped,
    AgentStateChanged,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallOffered,
    Resynced,
    TicketSlaAlarm,
)
from screenpop.agents_map import AgentDirectory, AgentRef
from screenpop.card import CallFacts, build_card
from screenpop.cards import MAX_CALLS, CardCache, Prefetched
from screenpop.frames import encode_body

log = logging.getLogger("ccserver.screenpop")

PREFETCH_WAIT = 0.3  # at most this long a ring waits for a card whose loading started late (or not at all)
KINDS = (CallOffered, AgentRinging, AgentRingStopped, CallAnswered, CallAbandoned, CallEnded, AgentStateChanged,
         TicketSlaAlarm, Resynced)


class ScreenPop:
    def __init__(self, bus: Any, agents: AgentDirectory, cards: CardCache, *, leads: Callable[[str], bool],
                 mask_roles: Iterable[str] = (), today: Callable[[], date] = date.today) -> None:
        self.bus = bus
        self.agents = agents
        self.cards = cards
        self.leads = leads
        self.mask_roles = frozenset(mask_roles)
        self.today = today
        # uniqueid -> {user id: "ringing" | "answered"}: who has the call on their screen
        self.calls: dict[str, dict[int, str]] = {}
        self._background: set[asyncio.Future[None]] = set()
        self._server_of: dict[str, str] = {}  # uniqueid -> the Asterisk it rang on
        # (uniqueid, masked) -> (card data, facts, day, the card's JSON without its wait): see _card_json
        self._encoded: dict[tuple[str, bool], tuple[Any, CallFacts, date, str]] = {}
        self._handlers: dict[type, Callable[[Any], Any]] = {
            CallOffered: self._offered, AgentRinging: self._ringing, AgentRingStopped: self._ring_stopped,
            CallAnswered: self._answered, CallAbandoned: self._abandoned, CallEnded: self._ended,
            AgentStateChanged: self._agent_state, TicketSlaAlarm: self._ticket, Resynced: self._resynced,
        }

    def subscribe(self, hub: Any) -> Any:
        return hub.subscribe("screenpop", self.on_event, kinds=KINDS)

    async def on_event(self, event: Any) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            await handler(event)

    # -- events ----------------------------------------------------------------------------------------------
    async def _offered(self, e: CallOffered) -> None:
        if self.leads(e.server):
            task = self.cards.prefetch(e.uniqueid, e.customer_id, e.caller_number, caller_name=e.caller_name,
                                       decision_id=e.decision_id)
            # Encode the card as soon as it is loaded (and again if the IVR path joins it later): the ring only
            # splices it in.
            uniqueid = e.uniqueid

            def warm(_done: asyncio.Future[Any]) -> None:
                self._warm(uniqueid)

            task.add_done_callback(warm)
            ivr = self.cards.ivr_pending(uniqueid)
            if ivr is not None:
                ivr.add_done_callback(warm)

    def _warm(self, uniqueid: str) -> None:
        found = self.cards.ready(uniqueid)
        if found is None:
            return
        try:
            for masked in (False, True) if self.mask_roles else (False,):
                self._card_json(uniqueid, found, masked)
        except Exception as exc:  # noqa: BLE001 - the ring builds it then
            log.warning("screen pop: card not encoded ahead (%s)", type(exc).__name__)

    async def _ringing(self, e: AgentRinging) -> None:
        leads = self.leads(e.server)
        ref = await self.agents.resolve(e.server, e.interface) if leads else self.agents.lookup(e.server, e.interface)
        if ref is None:
            log.debug("screen pop: nobody known at %s on %s", e.interface, e.server)
            return
        self.calls.setdefault(e.uniqueid, {})[ref.user_id] = "ringing"
        self._server_of[e.uniqueid] = e.server
        if not leads:
            return
        prefetched = self.cards.ready(e.uniqueid) or await self._late_card(e)
        call = {"uniqueid": e.uniqueid, "linkedid": e.linkedid, "queue": e.queue, "decision_id": e.decision_id,
                "wait": e.wait_seconds, "interface": e.interface, "server": e.server}
        body = (f'{{"type":"pop","state":"ringing","call":{encode_body(call)},'
                f'"customer":{self._customer(e.uniqueid, prefetched, ref, e.wait_seconds)}}}')
        self.bus.post_body(ref.user_id, body, "pop", call="set")

    async def _late_card(self, e: AgentRinging) -> Prefetched:
        task = self.cards.prefetch(e.uniqueid, e.customer_id, e.caller_number, decision_id=e.decision_id)
        try:
            return self.cards.with_ivr(e.uniqueid, await asyncio.wait_for(asyncio.shield(task), PREFETCH_WAIT))
        except (TimeoutError, Exception):  # noqa: BLE001 - pop without the card rather than not at all
            withheld = not e.caller_number
            return Prefetched(None, CallFacts(caller_number=e.caller_number, withheld=withheld))

    def _card_json(self, uniqueid: str, prefetched: Prefetched, masked: bool) -> str:
        """The call's card as JSON, without ``wait_seconds``: encoded once for the call's data and facts, the
        masking and the day (the care reminders count from it); again when any of them changes."""
        today = self.today()
        key = (uniqueid, masked)
        hit = self._encoded.get(key)
        if hit is not None and hit[0] is prefetched.data and hit[1] == prefetched.facts and hit[2] == today:
            return hit[3]
        f = prefetched.facts
        facts = CallFacts(caller_number=f.caller_number, caller_name=f.caller_name, withheld=f.withheld,
                          variants=f.variants, new_prospect=f.new_prospect, ivr_path=f.ivr_path)
        card = build_card(prefetched.data, facts, today=today, masked=masked)
        del card["wait_seconds"]
        text = encode_body(card)
        if key not in self._encoded and len(self._encoded) >= 2 * MAX_CALLS:
            self._encoded.pop(next(iter(self._encoded)))
        self._encoded[key] = (prefetched.data, prefetched.facts, today, text)
        return text

    def _customer(self, uniqueid: str, prefetched: Prefetched, ref: AgentRef, wait: float | None) -> str:
        """The ``customer`` of a frame, as JSON: the encoded card with this moment's wait."""
        text = self._card_json(uniqueid, prefetched, ref.role in self.mask_roles)
        return f'{text[:-1]},"wait_seconds":{json.dumps(wait)}}}'

    def _forget(self, uniqueid: str) -> None:
        self.cards.forget(uniqueid)
        self._encoded.pop((uniqueid, False), None)
        self._encoded.pop((uniqueid, True), None)

    async def _ring_stopped(self, e: AgentRingStopped) -> None:
        ref = self.agents.lookup(e.server, e.interface)
        if ref is not None:
            await self._retract(e.server, e.uniqueid, e.queue, ref.user_id, e.reason, only="ringing")

    async def _answered(self, e: CallAnswered) -> None:
        ref = self.agents.lookup(e.server, e.interface)
        if ref is None:
            return
        on_screen = self.calls.setdefault(e.uniqueid, {})
        on_screen[ref.user_id] = "answered"
        self._server_of[e.uniqueid] = e.server
        if not self.leads(e.server):
            return
        prefetched = self.cards.ready(e.uniqueid)
        call = {"uniqueid": e.uniqueid, "linkedid": e.linkedid, "queue": e.queue, "decision_id": e.decision_id,
                "wait": e.wait_seconds, "interface": e.interface, "server": e.server}
        frame: dict[str, Any] = {"type": "update", "state": "answered", "call": call, "wait": e.wait_seconds}
        body = encode_body(frame)
        if prefetched is not None:
            body = f'{body[:-1]},"customer":{self._customer(e.uniqueid, prefetched, ref, e.wait_seconds)}}}'
        self.bus.post_body(ref.user_id, body, "update", call="set")

    async def _abandoned(self, e: CallAbandoned) -> None:
        for user_id in list(self.calls.get(e.uniqueid, {})):
            await self._retract(e.server, e.uniqueid, e.queue, user_id, "caller_left", only="ringing")

    async def _ended(self, e: CallEnded) -> None:
        for user_id in list(self.calls.get(e.uniqueid, {})):
            await self._retract(e.server, e.uniqueid, e.queue, user_id, "ended", only=None)
        self.calls.pop(e.uniqueid, None)
        self._server_of.pop(e.uniqueid, None)
        self._forget(e.uniqueid)

    async def _resynced(self, e: Resynced) -> None:
        """Asterisk's own list of calls after a (re)connect (a restart loses calls without any end event): the
        cards of that server's calls it no longer has come down (``ended``)."""
        alive = {c.get("uniqueid") for c in e.calls if isinstance(c, dict)}
        for uniqueid in [u for u in self.calls if u not in alive and self._server_of.get(u) == e.server]:
            for user_id in list(self.calls.get(uniqueid, {})):
                await self._retract(e.server, uniqueid, None, user_id, "ended", only=None)
            self.calls.pop(uniqueid, None)
            self._server_of.pop(uniqueid, None)
            self._forget(uniqueid)

    async def _retract(self, server: str, uniqueid: str, queue: str | None, user_id: int, reason: str,
                       only: str | None) -> None:
        on_screen = self.calls.get(uniqueid)
        if on_screen is None or user_id not in on_screen or (only is not None and on_screen[user_id] != only):
            return
        del on_screen[user_id]
        if self.leads(server):
            self.bus.post(user_id, {"type": "retract", "reason": reason,
                                             "call": {"uniqueid": uniqueid, "queue": queue}}, call="clear")

    async def _agent_state(self, e: AgentStateChanged) -> None:
        if "logged_out" in (e.state, e.previous):
            # A sign-in started or ended: who sits where may have changed. Read again beside the hub's queue, so
            # the pops behind this event never wait for SQL.
            task = asyncio.ensure_future(self._after_refresh(e))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return
        await self._publish_state(e)

    async def _after_refresh(self, e: AgentStateChanged) -> None:
        await self.agents.refresh()
        await self._publish_state(e)

    async def _publish_state(self, e: AgentStateChanged) -> None:
        ref = self.agents.lookup(e.server, e.interface)
        if ref is None or not self.leads(e.server):
            return
        self.bus.post(ref.user_id, {"type": "agent_state", "state": e.state, "previous": e.previous,
                                             "since": e.since, "paused_reason": e.paused_reason,
                                             "queues": list(e.queues), "call": e.call, "interface": e.interface},
                               state=True)

    async def _ticket(self, e: TicketSlaAlarm) -> None:
        if e.assignee_id is None:
            return
        self.bus.post(e.assignee_id, {"type": "ticket", "event": "sla_" + e.stage, "ticket": {
            "id": e.ticket_id, "kind": e.kind, "severity": e.severity, "clock": e.clock, "due_at": e.due_at,
            "subject": e.subject, "customer_id": e.customer_id}})

    # -- hello -----------------------------------------------------------------------------------------------
    async def hello(self, user_id: int, username: str) -> tuple[int, str]:
        """The ``hello`` for a socket opening now: the agent, their state, the call on screen (with its card)."""
        seq, current, state = await self.bus.snapshot(user_id)
        frame: dict[str, Any] = {"type": "hello", "seq": seq, "agent": {"id": user_id, "username": username},
                                 "state": None, "call": None, "customer": None, "call_state": None}
        if state:
            st = json.loads(state)
            frame["state"] = st.get("state")
            frame["paused_reason"] = st.get("paused_reason")
        if current:
            cur = json.loads(current)
            frame.update(call=cur.get("call"), customer=cur.get("customer"), call_state=cur.get("state"))
        return seq, json.dumps(frame, ensure_ascii=False, separators=(",", ":"))
