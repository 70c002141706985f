"""The call path's customer lookup on the event loop, against the real PostgreSQL (demo data in a private schema):
the same answers as the directory's own SQL path, a connection that breaks, more lookups than connections, and a
routed call over real FastAGI whose cache miss is read this way (an unknown number still becomes a prospect)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import select

from ccserver.callrouting import RoutingRuntime
from ccserver.config import load_config
from ccserver.customers.directory import CustomerDirectory
from ccserver.customers.loop_lookup import LoopLookup
from ccserver.db.engine import make_engine, session_factory
from ccserver.db.models import PhoneNumber
from ccserver.demo import generate


@pytest.fixture
def demo_pg(pg_url: str) -> Iterator[tuple[str, Any, Any]]:
    generate(pg_url, customers=80, seed=7, as_of=date(2026, 11, 16), agent_interface="PJSIP/{ext}")
    engine = make_engine(pg_url)
    yield pg_url, engine, session_factory(engine)
    engine.dispose()


def _numbers(sessions: Any) -> list[str]:
    with sessions() as s:
        return list(s.scalars(select(PhoneNumber.e164).order_by(PhoneNumber.id)))


def test_same_answers_as_the_directory(demo_pg: Any) -> None:
    _, engine, sessions = demo_pg
    directory = CustomerDirectory(sessions)
    lookup = LoopLookup.from_engine(engine, directory, max_connections=2)
    numbers = [*_numbers(sessions), "+8613999999999", "+862150000000"]  # and two nobody has

    async def scenario() -> list[Any]:
        try:
            return [await lookup.identify(n) for n in numbers]
        finally:
            await lookup.aclose()

    got = asyncio.run(scenario())
    expected = [directory.identify(n, store_id=None, line=None, create_prospect=False) for n in numbers]
    assert got == expected
    kinds = {"known": sum(i.customer is not None for i in got), "shared": sum(bool(i.other_customer_ids) for i in got),
             "unknown": sum(i.customer is None for i in got)}
    assert kinds["known"] > 50 and kinds["shared"] >= 1 and kinds["unknown"] >= 2, kinds


def test_more_lookups_than_connections_wait_their_turn(demo_pg: Any) -> None:
    _, engine, sessions = demo_pg
    directory = CustomerDirectory(sessions)
    numbers = _numbers(sessions)[:30]
    lookup = LoopLookup.from_engine(engine, directory, max_connections=3)

    async def scenario() -> list[Any]:
        try:
            results = await asyncio.gather(*(lookup.identify(n) for n in numbers))
            assert lookup._pool.get_stats()["pool_size"] <= 3
            return results
        finally:
            await lookup.aclose()

    got = asyncio.run(scenario())
    assert got == [directory.identify(n, store_id=None, line=None, create_prospect=False) for n in numbers]


def test_routed_calls_read_misses_on_the_loop_and_still_create_prospects(demo_pg: Any) -> None:
    """``RoutingRuntime`` as ``ccserver run`` builds it on PostgreSQL, over real FastAGI on the asyncio reactor."""
    from twisted.internet.asyncioreactor import AsyncioSelectorReactor
    from twisted.internet.threads import deferToThreadPool

    from ccserver.agi import FastAGIFactory, listen_fastagi
    from ccserver.customers.cache import MemorySummaryCache
    from tests.replay.agi_peer import AGIPeerFactory, Responder, agi_split, transcript_peer

    url, engine, sessions = demo_pg
    loop = asyncio.new_event_loop()
    reactor = AsyncioSelectorReactor(loop)
    pool = reactor.getThreadPool()
    pool.start()  # a private reactor never runs its startup triggers
    config = load_config(environ={"CCSERVER_DATABASE_URL": url})

    def run_blocking(fn: Any, *a: Any, **kw: Any) -> Any:
        return deferToThreadPool(reactor, pool, fn, *a, **kw)

    routing = RoutingRuntime.from_config(config, sessions, reactor=reactor, run_blocking=run_blocking,
                                         cache=MemorySummaryCache())
    assert isinstance(routing.loop_lookup, LoopLookup)
    thread_reads: list[str] = []
    real_identify = routing.service.identification._directory.identify

    def counting_identify(e164: str, **kw: Any) -> Any:
        thread_reads.append(e164)
        return real_identify(e164, **kw)

    routing.service.identification._directory.identify = counting_identify  # type: ignore[union-attr, method-assign]
    factory = FastAGIFactory(routing.handlers(), clock=reactor)
    port = listen_fastagi(reactor, factory, 0)

    def call(transcript: str, **overrides: str) -> dict[str, str]:
        peer = transcript_peer(transcript, Responder(), **overrides)
        reactor.connectTCP("127.0.0.1", port.getHost().port, AGIPeerFactory(lambda: peer))
        loop.run_until_complete(asyncio.wait_for(peer.done.asFuture(loop), 5))
        (line,) = [c for c in peer.commands if c.startswith("EXEC MSet")]
        return dict(pair.split("=", 1) for pair in agi_split(line)[2].split(","))

    try:
        loop.run_until_complete(asyncio.wait_for(routing.start(), 5))
        known = call("agi-01-13800138000")  # 张伟, a demo customer: read on the loop, no thread
        assert known["CC_CUSTOMER_ID"] and known["CC_TIER"] in ("diamond", "gold") and thread_reads == []
        unknown = call("agi-01-13800138000", callerid="13912340000")
        assert unknown["CC_TIER"] == "prospect" and unknown["CC_CUSTOMER_ID"]  # created in the thread
        assert thread_reads == ["+8613912340000"]
        again = call("agi-01-13800138000", callerid="13912340001", arg_1="camp7")  # a campaign leg: no prospect
        assert again["CC_CUSTOMER_ID"] == "" and thread_reads == ["+8613912340000"]
    finally:
        loop.run_until_complete(asyncio.wait_for(routing.stop(), 15))
        loop.run_until_complete(asyncio.wait_for(port.stopListening().asFuture(loop), 2))
        factory.stop_watching()
        pool.stop()
        loop.close()


def test_dropped_connections_are_replaced_within_the_lookup(demo_pg: Any) -> None:
    url, engine, sessions = demo_pg
    number = _numbers(sessions)[0]
    lookup = LoopLookup.from_engine(engine, CustomerDirectory(sessions), max_connections=2)
    admin = sqlalchemy.create_engine(url)

    async def scenario() -> None:
        first = await lookup.identify(number)
        pids = [c.info.backend_pid for c in lookup._pool._pool]
        assert len(pids) == 2
        with admin.begin() as c:  # the database restarted, say: every idle connection is gone
            for pid in pids:
                c.execute(sqlalchemy.text("select pg_terminate_backend(:pid)"), {"pid": pid})
        await asyncio.sleep(0.05)  # for the terminations to reach the sockets (not a clock)
        assert await lookup.identify(number) == first  # one failed attempt, the pool checked, then a new one
        assert all(c.info.backend_pid not in pids for c in lookup._pool._pool)
        await lookup.aclose()
        with pytest.raises(RuntimeError):
            await lookup.identify(number)

    asyncio.run(scenario())
    admin.dispose()


def test_a_lookup_waits_for_a_connection_at_most_the_acquire_timeout(demo_pg: Any) -> None:
    from psycopg_pool import PoolTimeout

    _, engine, sessions = demo_pg
    number = _numbers(sessions)[0]
    lookup = LoopLookup.from_engine(engine, CustomerDirectory(sessions), max_connections=1, acquire_timeout=0.2)

    async def scenario() -> None:
        await lookup.identify(number)
        held = await lookup._pool.getconn()  # the only connection, taken (a lookup stuck on the database)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(PoolTimeout):
            await lookup.identify(number)
        assert 0.15 <= loop.time() - started < 1.0
        await lookup._pool.putconn(held)
        assert (await lookup.identify(number)).customer is not None
        await lookup.aclose()

    asyncio.run(scenario())
