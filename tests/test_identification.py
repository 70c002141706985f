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


def _shared_number(sessions: Any) -> str:
    """A demo number that belongs to more than one customer."""
    from sqlalchemy import func, select

    from ccserver.db.models import PhoneNumber, customer_phones

    with sessions() as s:
        return str(s.scalars(select(PhoneNumber.e164).join(customer_phones,
                                                          customer_phones.c.phone_id == PhoneNumber.id)
                             .group_by(PhoneNumber.e164).having(func.count() > 1).order_by(PhoneNumber.e164)).first())


def test_find_counts_no_call_makes_no_prospect_and_names_the_others(loaded: Any) -> None:
    """``find`` (screen pop, the desktop's search, the lookup API): the same answer as a routed call's, from the
    same cache, but no call counted and no prospect made; a shared number names its other customers."""
    _url, sessions = loaded
    directory = CustomerDirectory(sessions)
    shared = _shared_number(sessions)
    expected = directory.identify(shared, store_id=None, line=None, create_prospect=False)
    cache = MemorySummaryCache()

    async def main() -> list[Any]:
        reactor = AsyncioSelectorReactor(asyncio.get_running_loop())
        pool = BlockingPool(2)
        service = IdentificationService(directory, cache, region="CN", run_blocking=pool.run, clock=reactor)
        try:
            return [
                await service.find("13800138000"),
                await service.find("13800138000"),  # from the cache now
                await service.identify_async("13800138000"),  # a routed call: its earlier calls are counted
                await service.find(shared),
                await service.find("13311112222"),  # unknown: no prospect
                await service.identify_async("13311112222", create_prospect=True),  # a caller: the prospect now
                await service.find("anonymous"),
            ]
        finally:
            pool.shutdown()

    found, again, routed, by_shared, unknown, caller, withheld = asyncio.run(main())
    assert found.customer is not None and found.customer.name == "张伟" and found.fallback is None
    assert again.customer is not None and again.customer.id == found.customer.id
    assert routed.customer is not None and routed.customer.calls_last_24h == 0  # the two finds were no calls
    assert by_shared.customer is not None and expected.customer is not None
    assert by_shared.customer.id == expected.customer.id
    assert by_shared.others == expected.other_customer_ids and by_shared.others
    assert unknown.customer is None and unknown.caller.e164 == "+8613311112222"
    assert caller.customer is not None and caller.customer.tier == "prospect"  # the cached "unknown" did not stop it
    assert withheld.customer is None and withheld.caller.status == "withheld"


class _BrokenLoopLookup:
    """A loop lookup with no connection to give: raising at once, or failing its Deferred."""

    def __init__(self, at_once: bool) -> None:
        self.at_once = at_once
        self.asked = 0

    def identify_deferred(self, e164: str) -> Any:
        from twisted.internet.defer import fail

        from ccserver.customers.loop_lookup import LookupBusy

        self.asked += 1
        if self.at_once:
            raise LookupBusy("every connection busy")
        return fail(LookupBusy("the connection broke"))

    async def aclose(self) -> None:
        pass


def test_a_failing_loop_lookup_hands_the_number_to_a_worker_thread(loaded: Any) -> None:
    """Busy or broken, the lookup on the loop is not a lost customer: the directory answers in a worker thread
    within the same deadline — for a routed call (``identify``) and for a look-up without a call (``find``)."""
    from ccserver.identification import FALLBACKS

    _url, sessions = loaded
    directory = CustomerDirectory(sessions)
    threaded: list[str] = []
    before = FALLBACKS.value(reason="directory_error")

    async def main(at_once: bool) -> list[Any]:
        reactor = AsyncioSelectorReactor(asyncio.get_running_loop())
        pool = BlockingPool(2)

        def run_blocking(fn: Any, *args: Any, **kwargs: Any) -> Any:
            threaded.append(fn.__name__)
            return pool.run(fn, *args, **kwargs)

        broken = _BrokenLoopLookup(at_once)
        service = IdentificationService(directory, MemorySummaryCache(), region="CN", run_blocking=run_blocking,
                                        clock=reactor, loop_lookup=broken)  # type: ignore[arg-type]
        try:
            routed = await service.identify_async("13800138000")
            found = await service.find("13912345678")
            return [routed, found, broken.asked]
        finally:
            pool.shutdown()

    for at_once in (True, False):
        threaded.clear()
        routed, found, asked = asyncio.run(main(at_once))
        assert routed.customer is not None and routed.customer.name == "张伟" and routed.fallback is None
        assert found.customer is not None and found.customer.name == "刘洋" and found.fallback is None
        assert asked == 2 and threaded == ["identify", "identify"]
    assert FALLBACKS.value(reason="directory_error") == before
