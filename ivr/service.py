"""The IVR as a FastAGI handler: it takes the ``incoming`` script (the shipped dialplan is unchanged for it).

A call to a DID (or a DID's line) that ``[ivr]`` sends to a menu runs the IVR (:class:`ivr.flows.IVRCall`); every
other call goes straight to routing's own ``incoming``, at the cost of one table lookup. Either way the dialplan
gets the same ``CC_*`` answer (see ``ivr.flows`` on the hand-over).

Wiring (``ccserver run``)::

    ivr = IVRService(routing.service, IVRSettings.from_dict(config.section("ivr")), clock=reactor,
                     run_blocking=blocking.run, session_factory=sessions, tickets=tickets_service_or_None)
    FastAGIFactory({**routing.handlers(), **ivr.handlers()}, ...)

Without a tickets service (``tickets=None``) the menus, status of visits and routing work; reported breakdowns
and complaints still raise the caller's priority but file no ticket, and booking hands the caller to service.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Any

from ccserver.agi.errors import CallerHungUp
from ccserver.agi.session import AGISession
from ccserver.callrouting.service import RoutingService
from ivr import metrics
from ivr.flows import IVRCall
from ivr.ports import TicketsPort
from ivr.settings import IVRSettings

__all__ = ["IVRService"]


class IVRService:
    """``routing``: the routing service (identification, the decision, the decision log). ``clock``: the
    reactor or a ``task.Clock`` (the deadlines). ``run_blocking(fn, *args)``: the thread pool (a Deferred or an
    asyncio future). ``session_factory``: SQL for the caller's cars and visits (None: no SQL reads).
    ``tickets``: the tickets service (:class:`ivr.ports.TicketsPort`) or None. ``wall``: epoch time."""

    def __init__(self, routing: RoutingService, settings: IVRSettings, *, clock: Any,
                 run_blocking: Callable[..., Any], session_factory: Callable[[], Any] | None = None,
                 tickets: TicketsPort | None = None, wall: Callable[[], float] = time.time) -> None:
        self.routing = routing
        self.settings = settings
        self.clock = clock
        self.run_blocking = run_blocking
        self.session_factory = session_factory
        self.tickets = tickets
        self.wall = wall

    def handlers(self) -> dict[str, Callable[[AGISession], Coroutine[Any, Any, None]]]:
        return {"incoming": self.incoming}

    async def incoming(self, session: AGISession) -> None:
        started = self.clock.seconds()
        extension = session.extension
        known = self.routing.data.did(extension)
        # A DID routing does not know runs the IVR only when ivr.dids names it: its line is a guess.
        start = self.settings.start_for(extension, known.line if known is not None else None)
        if start is None:
            await self.routing.incoming(session)
            return
        notes: list[str] = []
        did = known if known is not None else self.routing.did_for(extension, notes)
        call = IVRCall(self, session, did, start, notes)
        try:
            await call.run(started)
        except CallerHungUp:
            call.end = call.end or "caller_left"
            raise
        except Exception:
            call.end = call.end or "error"
            raise
        finally:
            metrics.CALLS.inc(end=call.end or "caller_left")
