"""The desktop service: what ``/api/calls/{uniqueid}/…``, ``/api/dial``, ``/api/desktop/…`` and the customer pages
call. It checks who may act on which call, validates, talks to Asterisk (:mod:`.calls`) and SQL (:mod:`.store`)
and audits every change. Sign-in, pause and tickets stay with their own services (ccserver/agents,
ccserver/tickets); this one only calls them.

Who may act on a call: the agent it is (or was) connected to — by their sign-in's interface on the live call, by
``calls.agent_id``, or by their running wrap-up — and supervisors / admins on any call.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ccserver.agents import Actor
from ccserver.clock import LoopClock
from ccserver.desktop.calls import CallActionFailed, DesktopCalls
from ccserver.desktop.settings import WRAPUP_REASON, DesktopSettings
from ccserver.desktop.store import DesktopStore, MergeRefused, UserScope
from ccserver.desktop.targets import TRANSFER_KINDS, TargetError, dial_number, transfer_target
from ccserver.desktop.wrapup import ForcedWrapUp
from ccserver.logs import caller_number, exception_summary, log_pii_enabled
from ccserver.texts import T, message_of
from ccserver.tickets.store import TicketError, clean_text

__all__ = ["DesktopError", "DesktopService", "LiveCall"]

log = logging.getLogger("ccserver.desktop")
SUPERVISING = ("supervisor", "admin")
UNIQUEID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")
MAX_NOTE = 4000
LANGUAGES = ("zh", "en")
CUSTOMER_KINDS = ("person", "company")


class DesktopError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.extra = extra


@dataclass(frozen=True, slots=True)
class LiveCall:
    server: str
    uniqueid: str
    linkedid: str
    agent_interface: str | None
    agent_uniqueid: str | None
    customer_id: str | None
    state: str


def _clean(value: Any, field: str, limit: int, required: bool) -> str | None:
    try:
        return clean_text(value, field, limit, required=required)
    except TicketError as exc:
        raise DesktopError(exc.status, exc.message, exc.field) from None


class DesktopService:
    def __init__(self, settings: DesktopSettings, store: DesktopStore, run_blocking: Callable[..., Awaitable[Any]],
                 *, region: str, agents: Any = None, calls: DesktopCalls | None = None, tracker: Any = None,
                 tickets: Any = None, wrapup: ForcedWrapUp | None = None, clock: Any = None,
                 identification: Any = None, invalidator: Any = None) -> None:
        self.settings = settings
        # Who a number is (ccserver.identification.IdentificationService, its ``find``): the search's number part;
        # its number cache (routing's too) forgets the customers an edit or a merge changed
        # (ccserver.customers.changes.Invalidator).
        self.identification = identification
        self.invalidator = invalidator
        self.store = store
        self._run = run_blocking
        self.region = region
        self.agents = agents
        self.calls = calls
        self.tracker = tracker
        self.tickets = tickets
        self.wrapup = wrapup
        self.clock = clock if clock is not None else LoopClock()

    # -- who and what ------------------------------------------------------------------------------------------
    async def user(self, actor: Actor) -> UserScope:
        if actor.user_id is None:
            raise DesktopError(401, T("not signed in"))
        scope = await self._run(self.store.user, actor.user_id)
        if scope is None:
            raise DesktopError(401, T("user not found or inactive"))
        return scope

    async def sign_in_of(self, extension: str | None) -> Any:
        if not extension or self.agents is None:
            return None
        return await self._run(self.agents.store.active, extension)

    def live_call(self, uniqueid: str) -> LiveCall | None:
        if self.tracker is None:
            return None
        for c in self.tracker.iter_calls():
            if c.uniqueid == uniqueid:
                return LiveCall(c.server, c.uniqueid, c.linkedid, c.agent_interface, c.agent_uniqueid,
                                c.customer_id, c.state)
        return None

    def current_call(self, server: str, interface: str) -> LiveCall | None:
        if self.tracker is None:
            return None
        for c in self.tracker.iter_calls(server):
            if c.agent_interface == interface and c.state == "talking":
                return LiveCall(c.server, c.uniqueid, c.linkedid, c.agent_interface, c.agent_uniqueid,
                                c.customer_id, c.state)
        return None

    async def state(self, actor: Actor) -> dict[str, Any]:
        """The desktop's picture of the viewer: extension, sign-in, live agent state, wrap-up, current call."""
        me = await self.user(actor)
        row = await self.sign_in_of(me.extension)
        out: dict[str, Any] = {"extension": me.extension, "name": me.display_name, "role": me.role,
                               "signed_in": row is not None, "wrapup": None, "call": None, "agent_state": None}
        if row is not None:
            out.update({"interface": row.interface, "server": row.server, "paused": row.paused,
                        "pause_reason": row.pause_reason or None, "queues": sorted(row.queues)})
            if self.tracker is not None:
                agent = self.tracker.agent(row.interface, row.server)
                if agent is not None:
                    # seconds, not a time stamp: the browser's clock need not agree with the server's
                    age = self.clock.time() - agent.since if agent.since else None
                    out["agent_state"] = {"state": agent.state, "since": agent.since,
                                          "seconds": age if age is not None and 0 <= age < 86_400 else None}
            call = self.current_call(row.server, row.interface)
            if call is not None:
                out["call"] = {"uniqueid": call.uniqueid, "linkedid": call.linkedid, "state": call.state}
        if self.wrapup is not None and me.extension:
            wrap = self.wrapup.current(me.extension)
            if wrap is not None:
                out["wrapup"] = {**wrap.json(), "seconds_left": max(0.0, wrap.until - self.wrapup.clock.time())}
        return out

    async def _call_access(self, actor: Actor, uniqueid: object) -> tuple[UserScope, LiveCall | None,
                                                                            dict[str, Any] | None]:
        if not isinstance(uniqueid, str) or not UNIQUEID.match(uniqueid):
            raise DesktopError(404, T("no such call"))
        me = await self.user(actor)
        live = self.live_call(uniqueid)
        row = await self._run(self.store.call, uniqueid)
        wrap = self.wrapup.current(me.extension) if self.wrapup is not None and me.extension else None
        authors = await self._run(self.store.note_authors, uniqueid) if row is None else set()
        if live is None and row is None and not authors and (wrap is None or wrap.uniqueid != uniqueid):
            raise DesktopError(404, T("no such call"))
        if me.role in SUPERVISING:
            return me, live, row
        sign_in = await self.sign_in_of(me.extension)
        interfaces = {sign_in.interface} if sign_in is not None else set()
        mine = ((live is not None and live.agent_interface in interfaces)
                or (row is not None and (row["agent_id"] == me.id or row["agent_interface"] in interfaces))
                or (wrap is not None and wrap.uniqueid == uniqueid) or me.id in authors)
        if not mine:
            raise DesktopError(403, T("this call was not yours"))
        return me, live, row

    async def _audit(self, actor: Actor, action: str, target: str, detail: dict[str, Any]) -> None:
        try:
            await self._run(self.store.audit, action, actor.user_id, actor.username, target, detail, actor.ip)
        except Exception as exc:  # noqa: BLE001 - the change is made; a lost audit row is logged, not raised
            # no exception text unless server.log_pii: SQL errors carry the row (a dialled number, a note's id)
            log.error("audit of %s not written: %s", action, exception_summary(exc, log_pii_enabled()))

    # -- wrap-up, dispositions and notes -------------------------------------------------------------------------
    async def disposition(self, actor: Actor, uniqueid: str, code: object, note: object = None) -> dict[str, Any]:
        chosen = self.settings.disposition(code)
        if chosen is None:
            raise DesktopError(400, "code must be one of " + ", ".join(c.code for c in self.settings.dispositions),
                               "code")
        text = _clean(note, "note", MAX_NOTE, False)
        me, live, row = await self._call_access(actor, uniqueid)
        server = live.server if live is not None else (row or {}).get("server")
        saved = await self._run(lambda: self.store.add_note(uniqueid, server, "disposition", me.id,
                                                            code=chosen.code, text=text))
        ended = False
        if self.wrapup is not None:
            for extension, wrap in list(self.wrapup.active.items()):
                if wrap.uniqueid == uniqueid and (extension == me.extension or me.role in SUPERVISING):
                    ended = await self.wrapup.finish(extension, "disposition") or ended
        await self._audit(actor, "call.disposition", f"call:{uniqueid}", {"code": chosen.code,
                                                                          "wrapup_ended": ended})
        return {**saved, "wrapup_ended": ended}

    async def note(self, actor: Actor, uniqueid: str, text: object, ticket_id: object = None) -> dict[str, Any]:
        body = _clean(text, "text", MAX_NOTE, True)
        if ticket_id is not None and (isinstance(ticket_id, bool) or not isinstance(ticket_id, int)
                                      or not 0 < ticket_id < 2**53):
            raise DesktopError(400, T("ticket_id must be a positive integer"), "ticket_id")
        me, live, row = await self._call_access(actor, uniqueid)
        server = live.server if live is not None else (row or {}).get("server")
        saved = await self._run(lambda: self.store.add_note(uniqueid, server, "note", me.id, text=body,
                                                            ticket_id=ticket_id))
        await self._audit(actor, "call.note", f"call:{uniqueid}", {"note": saved["id"], "ticket": ticket_id})
        return saved

    async def notes(self, actor: Actor, uniqueid: str) -> list[dict[str, Any]]:
        await self._call_access(actor, uniqueid)
        return await self._run(self.store.notes, uniqueid)  # type: ignore[no-any-return]

    async def end_wrapup(self, actor: Actor) -> dict[str, Any]:
        """The agent is done before the timer (without a disposition: e.g. nothing to record)."""
        me = await self.user(actor)
        ended = bool(self.wrapup is not None and me.extension and await self.wrapup.finish(me.extension, "agent"))
        if not ended and self.agents is not None:
            # A wrap-up this node does not time (another node leads that Asterisk, or a restart forgot it): the
            # pause reason says so; ready again.
            row = await self.sign_in_of(me.extension)
            if row is not None and row.paused and row.pause_reason == WRAPUP_REASON:
                await self.agents.unpause(actor, me.extension)
                ended = True
        if ended:
            await self._audit(actor, "agent.wrapup_end", f"extension:{me.extension}", {})
        return {"extension": me.extension, "wrapup_ended": ended}

    # -- transfers ------------------------------------------------------------------------------------------------
    def _known_queues(self, server: str) -> set[str] | None:
        if self.tracker is None or not self.tracker.queues_complete(server):
            return None
        return {name for (srv, name) in self.tracker.queues if srv == server}

    async def transfer(self, actor: Actor, uniqueid: str, kind: object, to: object,
                       target_type: object = None) -> dict[str, Any]:
        if kind not in TRANSFER_KINDS:
            raise DesktopError(400, T("kind must be blind or attended"), "kind")
        me, live, _row = await self._call_access(actor, uniqueid)
        if live is None or live.state != "talking" or not live.agent_interface:
            raise DesktopError(409, T("the call is not connected to an agent now"))
        extensions = await self._run(self.store.extensions)
        queues = self._known_queues(live.server)
        if queues is None:
            queues = set(await self._run(self.store.queue_names)) or None
        try:
            target = transfer_target(to, target_type, queues=queues, extensions=extensions, region=self.region,
                                     attended=kind == "attended")
        except TargetError as exc:
            raise DesktopError(400, exc.message, exc.field) from None
        if target.type == "agent" and target.value == me.extension:
            raise DesktopError(400, T("that is your own extension"), "to")
        if self.calls is None:
            raise DesktopError(503, T("transfers need an Asterisk (ami.host or ami.servers)"))
        try:
            channel = await self.calls.agent_channel(live.server, live.agent_interface, live.agent_uniqueid,
                                                     live.linkedid)
            if channel is None:
                raise DesktopError(409, T("the agent's channel is gone: the call may have just ended"))
            await self.calls.transfer(live.server, str(kind), channel, self.settings.transfer_context, target.exten)
        except CallActionFailed as exc:
            await self._audit(actor, "call.transfer_failed", f"call:{uniqueid}",
                              {"kind": kind, "target": target.type, "to": target.value, "error": exc.message})
            raise DesktopError(exc.status, exc.message) from None
        await self._audit(actor, "call.transfer", f"call:{uniqueid}",
                          {"kind": kind, "target": target.type, "to": target.value, "exten": target.exten})
        shown = caller_number(target.exten, log) if target.type == "number" else target.exten  # masked number
        log.info("call %s: %s transfer to %s %s by %s", uniqueid, kind, target.type, shown, actor.username)
        return {"uniqueid": uniqueid, "kind": kind, "target": {"type": target.type, "value": target.value},
                "status": "requested"}

    # -- click-to-dial --------------------------------------------------------------------------------------------
    async def dial(self, actor: Actor, number: object, ticket_id: object = None) -> dict[str, Any]:
        try:
            dialled = dial_number(number, self.region)
        except TargetError as exc:
            raise DesktopError(400, exc.message, exc.field) from None
        if ticket_id is not None and (isinstance(ticket_id, bool) or not isinstance(ticket_id, int)
                                      or not 0 < ticket_id < 2**53):
            raise DesktopError(400, T("ticket_id must be a positive integer"), "ticket_id")
        me = await self.user(actor)
        row = await self.sign_in_of(me.extension)
        if row is None:
            raise DesktopError(409, T("sign in first: click-to-dial rings your signed-in phone"))
        ticket: dict[str, Any] | None = None
        ticket_actor = None
        if ticket_id is not None:
            if self.tickets is None:
                raise DesktopError(503, T("tickets not configured"))
            from ccserver.tickets.access import Actor as TicketActor

            ticket_actor = TicketActor(me.id, actor.username, me.role, me.store_id, me.department, actor.ip)
            try:
                ticket = await self.tickets.get(ticket_id, ticket_actor)
            except TicketError as exc:
                raise DesktopError(exc.status, exc.message, "ticket_id") from None
        store_id = ((ticket or {}).get("store") or {}).get("id") or me.store_id
        line = (ticket or {}).get("department")
        did = await self._run(self.store.caller_id, store_id, line if line in ("sales", "service") else None)
        if self.calls is None:
            raise DesktopError(503, T("click-to-dial needs an Asterisk (ami.host or ami.servers)"))
        customer = ((ticket or {}).get("customer") or {}).get("id")
        variables = {"CC_DIAL_E164": dialled.e164, "CC_DID": did or "",
                     "CC_TICKET_ID": str(ticket_id or ""), "CC_CUSTOMER_ID": str(customer or "")}

        def announce(action_id: str) -> None:
            if self.tracker is not None:  # so the OriginateResponse makes an outbound call record
                self.tracker.expect_originate(action_id, server=row.server, dialed_number=dialled.e164,
                                              customer_id=str(customer) if customer else None)

        try:
            action_id = await self.calls.originate(
                row.server, channel=row.interface, context=self.settings.dial_context, exten=dialled.digits,
                caller_id=did or "", timeout_ms=int(self.settings.dial_timeout_seconds * 1000),
                variables=variables, announce=announce)
        except CallActionFailed as exc:
            await self._audit(actor, "call.dial_failed", f"number:{dialled.e164}",
                              {"ticket": ticket_id, "error": exc.message})
            raise DesktopError(exc.status, exc.message) from None
        await self._run(lambda: self.store.add_note(action_id, row.server, "dial", me.id, text=dialled.e164,
                                                    ticket_id=ticket_id))
        if ticket_id is not None and ticket_actor is not None:
            try:
                await self.tickets.comment(ticket_id, f"click-to-dial {dialled.e164} ({action_id})", ticket_actor)
            except TicketError as exc:
                log.warning("dial for ticket %s: comment not written (%s)", ticket_id, exc.message)
        await self._audit(actor, "call.dial", f"number:{dialled.e164}",
                          {"ticket": ticket_id, "action_id": action_id, "caller_id": did,
                           "interface": row.interface})
        return {"status": "ringing_agent", "action_id": action_id, "number": dialled.e164, "caller_id": did,
                "ticket_id": ticket_id}

    # -- customers ------------------------------------------------------------------------------------------------
    async def search(self, actor: Actor, query: object) -> list[dict[str, Any]]:
        await self.user(actor)
        if not isinstance(query, str) or not 2 <= len(query.strip()) <= 60 or not query.isprintable():
            raise DesktopError(400, T("q must be 2 to 60 printable characters: a name, number, plate or VIN"), "q")
        from routing.numbers import normalize

        text = query.strip()
        first: list[int] = []
        if self.identification is None:
            number = normalize(text, region=self.region)
            exact = number.e164 if number.ok else None
        else:
            found = await self.identification.find(text, context="desktop-search")  # normalises it (once)
            # SQL matches the number exactly only when identification gave up on it
            exact = found.caller.e164 if found.caller.ok and found.fallback is not None else None
            if found.customer is not None and str(found.customer.id).isdigit():
                first = [int(found.customer.id), *found.others]  # the number's customer, then the others on it
        return await self._run(self.store.search, text, exact, first=first)  # type: ignore[no-any-return]

    async def customer(self, actor: Actor, customer_id: int) -> dict[str, Any]:
        await self.user(actor)
        found = await self._run(self.store.customer, customer_id)
        if found is None:
            raise DesktopError(404, T("no such customer"))
        return found  # type: ignore[no-any-return]

    async def update_customer(self, actor: Actor, customer_id: int, body: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(body) - {"name", "language", "home_store_id", "kind"})
        if unknown:
            raise DesktopError(400, T("unknown field(s): {unknown}", unknown=', '.join(unknown)), unknown[0])
        changes: dict[str, Any] = {}
        if "name" in body:
            changes["name"] = _clean(body["name"], "name", 120, True)
            if any(c in changes["name"] for c in "\r\n\t"):  # one line: shown in screen pops, lists, CSV
                raise DesktopError(400, T("name must be one line"), "name")
        if "language" in body:
            if body["language"] not in LANGUAGES:
                raise DesktopError(400, T("language must be zh or en"), "language")
            changes["language"] = body["language"]
        if "kind" in body:
            if body["kind"] not in CUSTOMER_KINDS:
                raise DesktopError(400, T("kind must be person or company"), "kind")
            changes["kind"] = body["kind"]
        if "home_store_id" in body:
            value = body["home_store_id"]
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise DesktopError(400, T("home_store_id must be a store id"), "home_store_id")
            changes["home_store_id"] = value
        if not changes:
            raise DesktopError(400, T("nothing to change"), "name")
        current = await self.customer(actor, customer_id)
        if not current["prospect"] and actor.role not in SUPERVISING:
            raise DesktopError(403, T("agents edit only the prospects created for unknown callers"))
        updated = await self._run(self.store.update_customer, customer_id, changes)
        await self._forget(customer_id)
        await self._audit(actor, "customer.update", f"customer:{customer_id}", {"fields": sorted(changes)})
        return updated  # type: ignore[no-any-return]

    async def merge(self, actor: Actor, prospect_id: int, into: object) -> dict[str, Any]:
        if isinstance(into, bool) or not isinstance(into, int) or not 0 < into < 2**53:
            raise DesktopError(400, T("into must be the id of the existing customer"), "into")
        await self.user(actor)
        try:
            moved = await self._run(self.store.merge, prospect_id, into)
        except LookupError:
            raise DesktopError(404, T("no such customer")) from None
        except MergeRefused as exc:
            raise DesktopError(409, message_of(exc)) from None
        await self._forget(prospect_id, into)  # the prospect's numbers are the customer's now
        await self._audit(actor, "customer.merge", f"customer:{into}", {"from": prospect_id, "moved": moved})
        return {"merged": prospect_id, "into": into, "moved": moved}

    async def _forget(self, *customer_ids: int) -> None:
        """Drop these customers from the number cache (routing, screen pop and this search read it): a failure is
        logged, the change stands (the cache's own expiry catches up)."""
        if self.invalidator is None:
            return
        from ccserver.customers.changes import Invalidation

        try:
            await self.invalidator.apply(Invalidation(customer_ids=frozenset(customer_ids)))
        except Exception as exc:  # noqa: BLE001 - Redis down: the edit is saved all the same
            log.warning("desktop: customer cache not updated (%s)", type(exc).__name__)
