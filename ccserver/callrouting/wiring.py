"""One call for the lead's process wiring: everything the routing service needs, built from the config.

    routing = RoutingRuntime.from_config(config, sessions, reactor=reactor, run_blocking=run_blocking,
                                         tracker=telephony.tracker if telephony else None, cache=summary_cache)
    agi_factory = FastAGIFactory(routing.handlers(), default_variables=..., clock=reactor)
    await routing.start()      # a component of ``ccserver run`` (ccserver/components.py), on the loop
    ... at shutdown: await routing.stop()          # flushes the decision log
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from ccserver.bridge import settle
from ccserver.callrouting.callback import open_callback_ticket
from ccserver.callrouting.directory_data import RoutingData, RoutingDataRefresher
from ccserver.callrouting.records import make_record_batcher, record_submitter
from ccserver.callrouting.service import Directory, RoutingService
from ccserver.callrouting.settings import RoutingSettings
from ccserver.customers.cache import SummaryCache
from ccserver.customers.directory import CustomerDirectory
from ccserver.identification import IdentificationService
from ccserver.state.tracker import StateTracker
from ccserver.tickets.store import callback_store
from routing.rules import RoutingRules

__all__ = ["RoutingRuntime", "make_directory"]

log = logging.getLogger("ccserver.callrouting")


def make_directory(session_factory: sessionmaker[Session], rules: RoutingRules) -> CustomerDirectory:
    """The SQL customer directory (``ccserver.customers``), with the rules' VIP tiers."""
    return CustomerDirectory(session_factory, vip_tiers=rules.vip_tiers)


class RoutingRuntime:
    def __init__(self, service: RoutingService, refresher: RoutingDataRefresher, batcher: Any,
                 loop_lookup: Any = None) -> None:
        self.service = service
        self.refresher = refresher
        self.batcher = batcher
        self.loop_lookup = loop_lookup

    @classmethod
    def from_config(cls, config: Any, session_factory: sessionmaker[Session], *, reactor: Any,
                    run_blocking: Callable[..., Any], tracker: StateTracker | None = None,
                    cache: SummaryCache | None = None, directory: Directory | None = None,
                    settings: RoutingSettings | None = None, clock: Any = None) -> RoutingRuntime:
        settings = settings or RoutingSettings.from_config(config)
        rules = settings.routing_rules()
        loader = functools.partial(RoutingData.load, session_factory, region=settings.default_region,
                                   default_time_zone=settings.time_zone, default_area_code=settings.default_area_code,
                                   default_language=settings.default_language)
        refresher = RoutingDataRefresher(loader, lambda fn: settle(run_blocking(fn)), clock, settings.refresh_seconds,
                                         initial=RoutingData.empty(settings.default_region))
        batcher = make_record_batcher(session_factory)
        if directory is None:
            directory = make_directory(session_factory, rules)
        bind = session_factory.kw.get("bind")
        dialect = bind.dialect.name if bind is not None else ""
        submit = record_submitter(batcher, dialect)
        loop_lookup = None
        if dialect == "postgresql" and isinstance(directory, CustomerDirectory):
            from ccserver.customers.loop_lookup import LoopLookup

            loop_lookup = LoopLookup.from_engine(bind, directory)
        identification = IdentificationService(
            directory, cache, region=settings.default_region, run_blocking=run_blocking, clock=reactor,
            max_pending_lookups=settings.max_pending_lookups, max_waiting_lookups=settings.max_waiting_lookups,
            loop_lookup=loop_lookup)
        service = RoutingService(refresher, directory, cache, tracker, rules, settings, run_blocking, reactor, submit,
                                 callback_tickets=functools.partial(open_callback_ticket, session_factory),
                                 callback_store=functools.partial(callback_store, session_factory),
                                 identification=identification)
        return cls(service, refresher, batcher, loop_lookup)

    @property
    def identification(self) -> IdentificationService:
        """Who a number is: the service routing and the IVR use (screen pop, the desktop and the lookup API get one
        of their own over the same cache: `ccserver run`)."""
        return self.service.identification

    def handlers(self) -> dict[str, Any]:
        return dict(self.service.handlers())

    async def start(self) -> None:
        """Start the record batcher and load the routing data (now, then every refresh_seconds)."""
        self.batcher.start()
        await self.refresher.start()

    async def stop(self) -> None:
        """Stop refreshing and flush the decision records still buffered (then close the connections)."""
        self.refresher.stop()
        lost = await self.batcher.close()
        if lost:
            log.error("%d routing records could not be written at shutdown", lost)
        aclose = getattr(self.batcher.sink, "aclose", None)  # the PostgreSQL COPY connection
        if aclose is not None:
            await aclose()
        if self.loop_lookup is not None:
            await self.loop_lookup.aclose()
