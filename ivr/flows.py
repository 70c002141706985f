"""One IVR call: the menus, self-service booking, the status of a car, tickets — then the hand-over to routing.

**The hand-over.** The IVR never picks a queue itself. When it knows what the caller wants, it asks routing for
the decision of a call to that *line* — ``RoutingService.answer`` with the dialled number's route, its line (and
the line's default queue: the same store's DID for that line, else the group's) replaced, the language the
caller used, and a priority ``bonus`` for a reported breakdown or complaint — and routing answers the dialplan in
the usual ``CC_*`` contract, in one ``EXEC MSet``, with three more variables: ``CC_LINE`` (the line chosen),
``CC_IVR`` (the path through the menus, ``main.2/after_sales.2``) and ``CC_TICKET_ID`` (the ticket filed, or
empty). So tiers, VIP desks, the customer's own advisor, overflow, live queues, business hours (a closed line →
``cc-after-hours`` and the callback-request flow) and the decision log work for IVR callers exactly as for
callers of that line's own number.

**Deadlines.** ``callrouting.deadline_seconds`` bounds each decision, not the call: identifying the caller (from
the session start), each SQL read and each tickets-service call. A read that misses it is treated as "nothing
found"; a ticket or booking that misses it goes on in the background (its late outcome is logged, a late booking
still sends its notification) and the caller is handed to a person.

**Never a hang-up on the caller**: no key, a wrong key (after the retries), a failed prompt, a failed lookup,
booking or ticket — every one ends with a person (the operator line, or the line the caller chose). The IVR
hangs up only after a self-service booking has been read back.

**Nothing half-written**: tickets and bookings are written by one port call each, only once the caller has
decided (the key that confirms), so a caller who hangs up before leaves nothing, after leaves a whole one.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from ccserver.bridge import drive
from ccserver.callrouting.service import new_decision_id
from ccserver.identification import TIMED_OUT, race
from ccserver.logs import log_text
from ivr import metrics
from ivr.data import CallerCars, Car, TodaysVisit, caller_cars, todays_visits
from ivr.dialog import Choice, Dialog, OutOfTries, PromptFailed
from ivr.ports import Booking, OpenRepair, Slot, SlotTaken
from ivr.settings import Action, Menu, Start, TicketSpec
from ivr.speech import say_slot, say_time, say_vehicle
from routing.decision import CustomerSummary, DidRoute, sanitize_value

if TYPE_CHECKING:
    from ivr.service import IVRService

__all__ = ["Early", "IVRCall", "line_route"]

log = logging.getLogger("ccserver.ivr")

OPERATOR = Action("operator")
FAILED = object()  # a port call or SQL read that failed or missed its deadline
MAX_BOOKING_ROUNDS = 3  # slots offered again after "choose another" or "taken", then a person
PREFETCH_AFTER = 0.2  # seconds after a menu with "book" starts playing: the caller's cars are read meanwhile
REPAIR_STATUSES = ("new", "assigned", "in_progress")


class Early:
    """Work started before it is needed (a read while a menu plays): its outcome is kept, a failure included (never
    an unhandled error), and handed over when it is asked for."""

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self._outcome: list[Any] = []
        self._waiting: list[Deferred[Any]] = []
        drive(coro).addBoth(self._done)

    def _done(self, outcome: Any) -> None:
        self._outcome.append(outcome)
        for waiter in self._waiting:
            waiter.callback(outcome)  # a Failure fires the errback
        self._waiting.clear()

    def deferred(self) -> Deferred[Any]:
        waiter: Deferred[Any] = Deferred()
        if self._outcome:
            waiter.callback(self._outcome[0])
        else:
            self._waiting.append(waiter)
        return waiter


def line_route(dids: Sequence[DidRoute], did: DidRoute, line: str, language: str) -> DidRoute:
    """``did`` as a call to ``line``: its default queue is the queue of the same store's DID for that line, else
    of a group-wide DID for it, else the line's name."""
    if line == did.line:
        return did if did.language == language else dataclasses.replace(did, language=language)
    queue = next((r.default_queue for r in dids if r.line == line and r.store_id == did.store_id), None)
    if queue is None:
        queue = next((r.default_queue for r in dids if r.line == line and not r.store_id), line)
    return DidRoute(did.did, did.store_id, line, queue, did.area_code, language)


class IVRCall:
    """The IVR for one call (see the module docstring). Made by :class:`ivr.service.IVRService`."""

    def __init__(self, service: IVRService, session: Any, did: DidRoute, start: Start, notes: list[str]) -> None:
        self.svc = service
        self.settings = service.settings
        self.session = session
        self.did = did
        self.start = start
        self.notes = notes
        self.path: list[str] = []
        self.caller: Any = None
        self.customer: CustomerSummary | None = None
        self.fallback: str | None = None
        self.dialog = Dialog(session, did.language, language_key=self.settings.language_key)
        self.early: dict[str, Early] = {}  # reads started before the caller asked for them
        self._cars_later: Any = None  # the timer that starts reading the caller's cars early
        self._cars_read = False
        self.end = ""  # how the call left the IVR (ivr.metrics.CALLS's ``end``), once it has

    @property
    def uniqueid(self) -> str:
        return str(self.session.uniqueid)

    @property
    def customer_id(self) -> int | None:
        c = self.customer
        return int(c.id) if c is not None and c.id.isdigit() else None

    # -- the call ----------------------------------------------------------------------------------------------
    async def run(self, started: float) -> None:
        svc = self.svc
        self.caller, self.customer, self.fallback = await svc.routing.who_is_calling(
            self.session, self.did, started, self.notes)
        customer = self.customer
        language = (customer.preferred_language if customer else None) or self.start.language or self.did.language
        self.dialog.language = language
        if self._is_vip():
            self.notes.append("IVR: VIP caller, menu skipped")
            self.end = "vip"
            await self.hand_over(self.did.line)
            return
        if not svc.routing.data.is_open(self.did, datetime.fromtimestamp(svc.wall(), UTC)):
            self.notes.append(f"IVR: {self.did.line} line closed, menu skipped")
            self.end = "closed"
            await self.hand_over(self.did.line)
            return
        await self.dialog.use_language(language)
        action: Action | None = self.start.action
        try:
            while action is not None:
                action = await self.step(action)
        except PromptFailed as failed:
            # A prompt file Asterisk cannot play (or a hangup not reported yet): a person takes the call.
            log.warning("ivr uniqueid=%s: prompt %s could not be played (missing in sounds/%s?); to a person",
                        log_text(self.uniqueid, 64), log_text(failed, 64), self.dialog.language)
            self.path.append("prompt-failed")
            await self.session.channel_status()  # a caller who hung up ends the call here (HANGUP, 511)
            await self.hand_over(self.settings.operator)

    def _is_vip(self) -> bool:
        c = self.customer
        if c is None:
            return False
        tiers = self.settings.vip_tiers
        if not tiers:
            return c.vip
        manual = c.vip and c.tier not in self.svc.routing.rules.vip_tiers  # VIP by the flag, not by tier
        return manual or c.tier in tiers

    async def step(self, action: Action) -> Action | None:
        """Carry out ``action``; the next one, or None when the call is handed over (or finished)."""
        kind = action.kind
        if kind == "menu":
            return await self.menu(self.settings.menus[action.target])
        if kind == "line":
            await self.hand_over(action.target)
        elif kind == "operator":
            await self.dialog.play(["cc-ivr-operator"])
            await self.hand_over(self.settings.operator)
        elif kind == "ticket":
            await self.ticket(self.settings.tickets[action.target])
        elif kind == "booking":
            return await self.booking()
        elif kind == "status":
            return await self.status()
        else:  # "route" is refused by the settings for menu keys; a start of "route" never gets here
            await self.hand_over(self.did.line)
        return None

    async def menu(self, menu: Menu) -> Action:
        s = self.settings
        if self.customer_id is not None and self.svc.session_factory is not None and self._cars_later is None and \
                any(a.kind == "booking" for a in menu.options.values()):
            # The caller may choose to book: read their cars while the menu plays (seconds), not after the key —
            # started once the prompt is on its way, so the read's thread does not delay the command itself.
            self._cars_later = self.svc.clock.callLater(PREFETCH_AFTER, self._read_cars_early)
        chosen = await self.dialog.choose([*menu.intro, *menu.prompts], menu.prompts, menu.options,
                                          timeout_ms=s.menu_timeout(menu), retries=s.menu_retries(menu),
                                          context=f"menu {menu.name}")
        if isinstance(chosen, OutOfTries):
            self.path.append(f"{menu.name}.none")
            return OPERATOR
        self.path.append(f"{menu.name}.{chosen.key}")
        return chosen.value

    def _read_cars_early(self) -> None:
        if not self._cars_read and self.customer_id is not None:
            self.early["cars"] = Early(self.sql(caller_cars, self.customer_id))

    async def hand_over(self, line: str, *, bonus: int = 0, reason: str = "", ticket_id: int | None = None) -> None:
        """Routing decides for a call to ``line`` and answers the dialplan (see the module docstring)."""
        svc = self.svc
        perf0 = time.perf_counter()
        self.end = self.end or ("operator" if line == self.settings.operator else "line")
        language = self.dialog.language
        route = line_route(list(svc.routing.data.dids.values()), self.did, line, language)
        customer = self.customer
        if customer is not None and customer.preferred_language != language:
            customer = dataclasses.replace(customer, preferred_language=language)
        path = "/".join(self.path)
        if self.path:
            self.notes.append(f"IVR: {path} -> {line} line")
        extra = {"CC_LINE": sanitize_value(line), "CC_IVR": sanitize_value(path),
                 "CC_TICKET_ID": str(ticket_id) if ticket_id is not None else ""}
        await svc.routing.answer(self.session, new_decision_id(svc.wall()), self.session.callerid, self.caller,
                                 route, customer, self.fallback, self.notes, perf0, bonus=bonus, bonus_reason=reason,
                                 extra=extra)

    # -- deadlines ---------------------------------------------------------------------------------------------
    async def within(self, work: Coroutine[Any, Any, Any] | Early, what: str) -> Any:
        """``work``'s result within the routing deadline, else :data:`FAILED` (logged). Work that misses the
        deadline is not cancelled: it finishes in the background."""
        svc = self.svc
        budget = svc.routing.settings.deadline_seconds - svc.routing.settings.margin_seconds
        pending = work.deferred() if isinstance(work, Early) else drive(work)
        outcome = (await race(pending, budget, svc.clock))[0]
        if outcome is TIMED_OUT:
            metrics.FAILURES.inc(what="timeout")
            log.warning("ivr uniqueid=%s: %s did not answer within %.2f s; the caller goes to a person",
                        log_text(self.uniqueid, 64), what, budget)
            return FAILED
        if isinstance(outcome, Failure):
            metrics.FAILURES.inc(what="error")
            log.error("ivr uniqueid=%s: %s failed (%s); the caller goes to a person", log_text(self.uniqueid, 64),
                      what, log_text(outcome.getErrorMessage(), 300))
            return FAILED
        return outcome

    async def sql(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self.svc.run_blocking(fn, self.svc.session_factory, *args)

    def store_zone(self, store_id: int | None) -> ZoneInfo:
        calendar = self.svc.routing.data.calendars.get(store_id) if store_id is not None else None
        return ZoneInfo(calendar.time_zone if calendar is not None else self.svc.routing.settings.time_zone)

    # -- tickets -----------------------------------------------------------------------------------------------
    async def ticket(self, spec: TicketSpec) -> None:
        """File the ticket, tell the caller, hand over to its line with its priority bonus."""
        tickets = self.svc.tickets
        ticket_id: int | None = None
        if tickets is None:
            log.warning("ivr uniqueid=%s: no tickets service: %s ticket not filed", log_text(self.uniqueid, 64),
                        spec.kind)
        else:
            caller = self.caller.e164 if self.caller is not None and self.caller.e164 else "a withheld number"
            body = (f"Reported in the IVR by {caller} ({'/'.join(self.path) or 'direct'}); Asterisk uniqueid "
                    f"{self.uniqueid}.")
            store_id = int(self.did.store_id) if self.did.store_id.isdigit() else None
            found = await self.within(self._late_logged(
                tickets.create_ticket(kind=spec.kind, customer_id=self.customer_id, store_id=store_id,
                                      category=spec.category, subject=spec.subject, body=body,
                                      severity=spec.severity, uniqueid=self.uniqueid), f"{spec.kind} ticket"),
                f"the {spec.kind} ticket")
            ticket_id = None if found is FAILED else int(found)
        self.path.append(spec.name)
        if ticket_id is not None:
            metrics.TICKETS.inc(kind=spec.kind)
            self.notes.append(f"IVR: {spec.kind} ticket {ticket_id} ({spec.category})")
        await self.dialog.play([spec.prompt if ticket_id is not None else "cc-ivr-connecting"])
        await self.hand_over(spec.line, bonus=spec.priority, reason=f"IVR {spec.kind} ({spec.category})",
                             ticket_id=ticket_id)

    async def _late_logged(self, coro: Coroutine[Any, Any, Any], what: str) -> Any:
        """Await ``coro`` and log when it answered after the deadline (its outcome is then the log's only trace)."""
        began = self.svc.clock.seconds()
        result = await coro
        waited = self.svc.clock.seconds() - began
        if waited > self.svc.routing.settings.deadline_seconds:
            log.warning("ivr uniqueid=%s: %s written %.1f s late: %r", log_text(self.uniqueid, 64), what, waited,
                        result)
        return result

    # -- self-service booking ----------------------------------------------------------------------------------
    async def booking(self) -> Action | None:
        s = self.settings
        svc = self.svc
        fail_to = Action("line", "service")
        customer_id = self.customer_id
        if customer_id is None or svc.session_factory is None:
            self.path.append("booking.unknown")
            await self.dialog.play(["cc-ivr-no-vehicle"])
            return fail_to
        if self._cars_later is not None and self._cars_later.active():
            self._cars_later.cancel()  # the caller was quicker than the prefetch
        early = self.early.pop("cars") if "cars" in self.early else Early(self.sql(caller_cars, customer_id))
        self._cars_read = True
        cars = await self.within(early, "reading the caller's cars")
        if cars is FAILED or not isinstance(cars, CallerCars) or not cars.cars:
            self.path.append("booking.nocar")
            await self.dialog.play(["cc-ivr-no-vehicle" if cars is not FAILED else "cc-ivr-booking-failed"])
            return fail_to
        store_id = int(self.did.store_id) if self.did.store_id.isdigit() else cars.home_store_id
        if store_id is None or svc.tickets is None:
            self.path.append("booking.nostore")
            await self.dialog.play(["cc-ivr-booking-none"])
            return fail_to
        car = cars.cars[0]
        if len(cars.cars) > 1:
            first: list[str] = ["cc-ivr-booking-which"]
            for n, each in enumerate(cars.cars, 1):
                first += [*say_vehicle(each.model, each.plate), f"cc-press-{n}"]
            options = {str(n): each for n, each in enumerate(cars.cars, 1)}
            picked = await self.dialog.choose(first, first[1:], options, timeout_ms=s.timeout_ms,
                                              retries=s.retries, context="booking: which car")
            if isinstance(picked, OutOfTries):
                self.path.append("booking.car.none")
                return OPERATOR
            car = picked.value
            self.path.append(f"booking.car{picked.key}")
        zone = self.store_zone(store_id)
        for _round in range(MAX_BOOKING_ROUNDS):
            outcome = await self.offer_slots(car, store_id, zone)
            if outcome is not None:
                return outcome if isinstance(outcome, Action) else None
        self.path.append("booking.rounds")
        return OPERATOR

    async def offer_slots(self, car: Car, store_id: int, zone: ZoneInfo) -> Action | bool | None:
        """One round: offer the next free slots, confirm, book. An Action (go there), True (booked and read
        back: the call is over), or None (offer again)."""
        s = self.settings
        tickets = self.svc.tickets
        assert tickets is not None and self.customer_id is not None
        now = datetime.fromtimestamp(self.svc.wall(), UTC)
        after = now + timedelta(minutes=s.booking_after_minutes)
        slots = await self.within(tickets.free_slots(store_id=store_id, after=after, limit=s.booking_slots),
                                  "looking up free slots")
        if slots is FAILED or not slots:
            self.path.append("booking.noslot")
            await self.dialog.play(["cc-ivr-booking-none" if slots is not FAILED else "cc-ivr-booking-failed"])
            return Action("line", "service")
        slots = list(slots)[: s.booking_slots]
        today = now.astimezone(zone).date()
        lang = self.dialog.language
        listed: list[str] = []
        for n, slot in enumerate(slots, 1):
            listed += [*say_slot(slot.starts_at.astimezone(zone), lang, today), f"cc-press-{n}"]
        first = ["cc-ivr-booking-for", *say_vehicle(car.model, car.plate), "cc-ivr-booking-slots", *listed,
                 "cc-ivr-booking-choose"]
        options: dict[str, Slot | None] = {str(n): slot for n, slot in enumerate(slots, 1)}
        options["0"] = None
        picked = await self.dialog.choose(first, ["cc-ivr-booking-slots", *listed, "cc-ivr-booking-choose"], options,
                                          timeout_ms=s.timeout_ms, retries=s.retries, context="booking: slot")
        if isinstance(picked, OutOfTries):
            self.path.append("booking.slot.none")
            return OPERATOR
        if picked.value is None:
            self.path.append("booking.slot0")
            return Action("line", "service")
        slot = picked.value
        self.path.append(f"booking.slot{picked.key}")
        said = say_slot(slot.starts_at.astimezone(zone), lang, today)
        confirm = await self.dialog.choose(["cc-ivr-booking-chosen", *said, "cc-ivr-booking-confirm"],
                                           ["cc-ivr-booking-confirm"], {"1": True, "2": False},
                                           timeout_ms=s.timeout_ms, retries=s.retries, context="booking: confirm")
        if isinstance(confirm, OutOfTries):
            self.path.append("booking.confirm.none")
            return OPERATOR
        if not confirm.value:
            self.path.append("booking.again")
            return None
        booked = await self.within(self._book(car, store_id, slot), "booking the appointment")
        if booked is FAILED:
            self.path.append("booking.failed")
            await self.dialog.play(["cc-ivr-booking-failed"])
            return Action("line", "service")
        if isinstance(booked, SlotTaken):
            self.path.append("booking.taken")
            await self.dialog.play(["cc-ivr-booking-taken"])
            return None
        assert isinstance(booked, Booking)
        self.path.append(f"booked.{booked.ticket_id}")
        metrics.BOOKINGS.inc()
        self.end = "booked"
        log.info("ivr uniqueid=%s: appointment booked, ticket %s, store %s at %s", log_text(self.uniqueid, 64),
                 booked.ticket_id, store_id, slot.starts_at.isoformat())
        await self.dialog.play(["cc-ivr-booking-done", *say_slot(slot.starts_at.astimezone(zone), lang, today),
                                "cc-ivr-booking-sms", "cc-goodbye"])
        await self.session.hangup()
        return True

    async def _book(self, car: Car, store_id: int, slot: Slot) -> Booking | SlotTaken:
        """Book, then send the notification in the background (the caller does not wait for it, and it is sent
        even if they hang up now or the booking answered after the deadline)."""
        tickets = self.svc.tickets
        assert tickets is not None and self.customer_id is not None
        booked = await self._late_logged(
            tickets.book_appointment(customer_id=self.customer_id, store_id=store_id, vehicle_id=car.id, slot=slot,
                                     uniqueid=self.uniqueid), "appointment")
        if isinstance(booked, Booking):
            drive(self._notify(booked))
        return booked

    async def _notify(self, booking: Booking) -> None:
        tickets = self.svc.tickets
        assert tickets is not None
        try:
            await tickets.notify_booking(booking)
        except Exception as exc:  # noqa: BLE001 - the booking stands; the notification is the service's to retry
            log.error("ivr uniqueid=%s: booking notification for ticket %s failed: %s", log_text(self.uniqueid, 64),
                      booking.ticket_id, log_text(exc, 300))

    # -- status of my car --------------------------------------------------------------------------------------
    async def status(self) -> Action | None:
        s = self.settings
        customer_id = self.customer_id
        items: list[str] = []
        if customer_id is not None:
            items = await self.status_items(customer_id)
        if not items:
            self.path.append("status.none")
            await self.dialog.play(["cc-ivr-status-none"])
            return Action("line", "service")
        self.path.append("status")
        spoken = ["cc-ivr-status-intro", *items, "cc-ivr-status-end"]
        while True:
            chosen: Choice[str] | OutOfTries = await self.dialog.choose(
                spoken, spoken, {"1": "again", "0": "service"}, timeout_ms=s.timeout_ms, retries=s.retries,
                context="status")
            if isinstance(chosen, OutOfTries):
                return OPERATOR
            if chosen.value == "service":
                self.path.append("status.0")
                return Action("line", "service")
            # "again": the same status once more

    async def status_items(self, customer_id: int) -> list[str]:
        """What to read back: today's workshop visits (SQL), then open repair tickets (the tickets service)."""
        svc = self.svc
        lang = self.dialog.language
        zone = self.store_zone(int(self.did.store_id) if self.did.store_id.isdigit() else None)
        now = datetime.fromtimestamp(svc.wall(), UTC).astimezone(zone)
        day_start = datetime.combine(now.date(), datetime.min.time(), zone)
        items: list[str] = []
        cars_by_id: dict[int, TodaysVisit] = {}
        if svc.session_factory is not None:
            visits = await self.within(self.sql(todays_visits, customer_id, day_start.astimezone(UTC),
                                                (day_start + timedelta(days=1)).astimezone(UTC)),
                                       "reading today's workshop visits")
            for visit in visits if visits is not FAILED else []:
                if visit.vehicle_id is not None:
                    cars_by_id[visit.vehicle_id] = visit
                items += [*say_vehicle(visit.model, visit.plate)] if visit.model else []
                items.append(f"cc-visit-{visit.status}")
                if visit.promised_at is not None and visit.status != "ready":
                    items += ["cc-ivr-status-promised", *say_time(visit.promised_at.astimezone(zone).time(), lang)]
        if svc.tickets is not None:
            repairs = await self.within(svc.tickets.open_repairs(customer_id=customer_id), "reading open repairs")
            for repair in (repairs if repairs is not FAILED else [])[:5]:
                items += self._repair_words(repair, cars_by_id)
        return items

    @staticmethod
    def _repair_words(repair: OpenRepair, cars: dict[int, TodaysVisit]) -> list[str]:
        words = ["cc-ivr-repair-report"]
        visit = cars.get(repair.vehicle_id) if repair.vehicle_id is not None else None
        if visit is not None and visit.model:
            words += say_vehicle(visit.model, visit.plate)
        if repair.status in REPAIR_STATUSES:
            words.append(f"cc-repair-{repair.status}")
        return words

