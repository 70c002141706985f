"""The identification service called from asyncio code (screen pop, the desktop, the dialer), as routing calls it."""

from __future__ import annotations

import asyncio
from typing import Any

from twisted.internet.asyncioreactor import AsyncioSelectorReactor

from ccserver.bridge import BlockingPool
from ccserver.customers.cache import MemorySummaryCache
from ccserver.customers.directory import CustomerDirectory
from ccserver.identification import IdentificationService


def test_identify_from_an_asyncio_task(loaded: Any) -> None:
    _url, sessions = loaded

    async def main() -> list[Any]:
        reactor = AsyncioSelectorReactor(asyncio.get_running_loop())
        pool = BlockingPool(2)
        service = IdentificationService(CustomerDirectory(sessions), MemorySummaryCache(), region="CN",
                                        run_blocking=pool.run, clock=reactor)
        try:
            return [
                await service.identify_async("13800138000"),
                await service.identify_async("+86 138 0013 8000"),  # the same customer, now from the cache
                await service.identify_async("13311112222"),  # unknown: no prospect unless asked
                await service.identify_async("anonymous"),
                await service.identify_async("13311112222", create_prospect=True),
            ]
        finally:
            pool.shutdown()

    known, cached, unknown, withheld, prospect = asyncio.run(main())
    assert known.customer is not None and known.customer.name == "张伟" and known.fallback is None
    assert cached.customer is not None and cached.customer.id == known.customer.id
    assert cached.customer.calls_last_24h == 1  # the cache counts the earlier lookup as a call
    assert unknown.customer is None and unknown.caller.e164 == "+8613311112222"
    assert withheld.customer is None and withheld.caller.status == "withheld"
    assert prospect.customer is not None and prospect.customer.tier == "prospect"
    assert "new prospect recorded for this number" in prospect.notes


def test_the_deadline_race_on_the_asyncio_reactor_uses_the_loops_timer() -> None:
    """On the asyncio reactor the race's deadline is an asyncio timer: it fires TIMED_OUT on the loop's clock
    when the lookup is late (the late lookup changes nothing), and is cancelled when the lookup answers first."""
    from twisted.internet.defer import Deferred

    from ccserver.identification import TIMED_OUT, race

    async def main() -> None:
        loop = asyncio.get_running_loop()
        reactor = AsyncioSelectorReactor(loop)
        twisted_calls = len(reactor.getDelayedCalls())
        late: Deferred[Any] = Deferred()
        started = loop.time()
        raced = race(late, 0.05, reactor)
        timers = list(loop._scheduled)  # type: ignore[attr-defined]
        assert len(reactor.getDelayedCalls()) == twisted_calls and any(not t.cancelled() for t in timers)
        assert await raced.asFuture(loop) == (TIMED_OUT,) and loop.time() - started >= 0.045
        late.callback("too late")  # after the deadline: ignored

        quick: Deferred[Any] = Deferred()
        raced = race(quick, 30.0, reactor)
        (timer,) = [t for t in loop._scheduled if t.when() > loop.time() + 20]  # type: ignore[attr-defined]
        quick.callback("answer")
        assert raced.called and raced.result == ("answer",) and timer.cancelled()

    asyncio.run(main())


def test_the_deadline_race_outside_the_running_loop_uses_the_reactors_timer() -> None:
    from twisted.internet.defer import Deferred

    from ccserver.identification import race

    loop = asyncio.new_event_loop()
    try:
        reactor = AsyncioSelectorReactor(loop)
        before = len(reactor.getDelayedCalls())
        lookup: Deferred[Any] = Deferred()
        raced = race(lookup, 30.0, reactor)
        assert len(reactor.getDelayedCalls()) == before + 1  # the loop is not running: the reactor's callLater
        lookup.callback("answer")
        assert raced.result == ("answer",) and len(reactor.getDelayedCalls()) == before  # cancelled
    finally:
        loop.close()
