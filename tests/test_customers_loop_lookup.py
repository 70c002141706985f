"""The call path's customer lookup on the event loop, against the real PostgreSQL (demo data in a private schema):
the same answers as the directory's own SQL path, a connection that breaks, more lookups than connections, and a
routed call over real FastAGI whose cache miss is read this way (an unknown number still becomes a prospect)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import date
from typing import Any

import psycopg
import pytest
import sqlalchemy
from sqlalchemy import select
from twisted.internet.defer import Deferred

from ccserver.callrouting import RoutingRuntime
from ccserver.config import load_config
from ccserver.customers.directory import CustomerDirectory, by_number_sql
from ccserver.customers.loop_lookup import LookupBusy, LoopLookup, _positional
from ccserver.db.engine import make_engine, session_factory
from ccserver.db.models import PhoneNumber
from ccserver.demo import generate


@pytest.fixture
def demo_pg(pg_url: str) -> Iterator[tuple[str, Any, Any]]:
    generate(pg_url, customers=80, seed=7, as_of=date(2026, 11, 16), agent_interface="PJSIP/{ext}")
    engine = make_engine(pg_url)
    yield pg_url, engine, session_factory(engine)
    engine.dispose()


async def _fired(deferred: Deferred[Any]) -> Any:
    return await deferred.asFuture(asyncio.get_running_loop())


def _numbers(sessions: Any) -> list[str]:
    with sessions() as s:
        return list(s.scalars(select(PhoneNumber.e164).order_by(PhoneNumber.id)))


def test_same_answers_as_the_directory(demo_pg: Any) -> None:
    _, engine, sessions = demo_pg
    directory = CustomerDirectory(sessions)
    lookup = LoopLookup.from_engine(engine, directory, max_connections=2)
    numbers = [*_numbers(sessions), "+8613999999999", "+862150000000"]  # and two nobody has

    async def scenario() -> tuple[list[Any], list[Any]]:
        try:
            coroutine = [await lookup.identify(n) for n in numbers]
            deferred = [await _fired(lookup.identify_deferred(n)) for n in numbers]
            return coroutine, deferred
        finally:
            await lookup.aclose()

    got, by_deferred = asyncio.run(scenario())
    expected = [directory.identify(n, store_id=None, line=None, create_prospect=False) for n in numbers]
    assert got == expected and by_deferred == expected
    kinds = {"known": sum(i.customer is not None for i in got),
             "several_on_one": sum(bool(i.other_customer_ids) for i in got),
             "unknown": sum(i.customer is None for i in got)}
    assert kinds["known"] > 50 and kinds["several_on_one"] >= 1 and kinds["unknown"] >= 2, kinds


def test_more_lookups_than_connections_wait_their_turn(demo_pg: Any) -> None:
    _, engine, sessions = demo_pg
    directory = CustomerDirectory(sessions)
    numbers = _numbers(sessions)[:30]
    lookup = LoopLookup.from_engine(engine, directory, max_connections=3)

    async def scenario() -> list[Any]:
        try:
            results = await asyncio.gather(*(lookup.identify(n) for n in numbers))
            assert lookup.connections == 3 and len(lookup._idle) == 3  # all opened, none more, all given back
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
        assert routing.service.identification._slots.busy == 0  # every lookup gave its slot back
    finally:
        loop.run_until_complete(asyncio.wait_for(routing.stop(), 15))
        loop.run_until_complete(asyncio.wait_for(port.stopListening().asFuture(loop), 2))
        factory.stop_watching()
        pool.stop()
        loop.close()


def _backend_pids(lookup: LoopLookup) -> list[int]:
    return [c.conn.info.backend_pid for c in lookup._idle]


def _terminate(admin: Any, pids: list[int]) -> None:
    """End those backends (the database restarted, say), and wait until PostgreSQL has them gone."""
    with admin.begin() as c:
        for pid in pids:
            c.execute(sqlalchemy.text("select pg_terminate_backend(:pid)"), {"pid": pid})
    for _ in range(500):
        with admin.begin() as c:
            if not c.execute(sqlalchemy.text("select count(*) from pg_stat_activity where pid = any(:p)"),
                             {"p": pids}).scalar_one():
                return
    raise AssertionError(f"backends {pids} still there")


@pytest.mark.parametrize("entry", ["identify", "identify_deferred"])
def test_dropped_connections_are_replaced_within_the_lookup(demo_pg: Any, caplog: Any, entry: str) -> None:
    url, engine, sessions = demo_pg
    number = _numbers(sessions)[0]
    lookup = LoopLookup.from_engine(engine, CustomerDirectory(sessions), max_connections=2)
    admin = sqlalchemy.create_engine(url)

    async def scenario() -> None:
        first, _ = await asyncio.gather(lookup.identify(number), lookup.identify(number))  # both connections open
        pids = _backend_pids(lookup)
        assert len(pids) == 2 and lookup.connections == 2
        # Every idle connection gone while the loop does not run (its readers have not seen it yet): the lookup's
        # first attempt fails, and it is tried again on a new connection.
        _terminate(admin, pids)
        with caplog.at_level(logging.INFO, logger="ccserver.customers.loop_lookup"):
            if entry == "identify":
                assert await lookup.identify(number) == first
            else:
                assert await _fired(lookup.identify_deferred(number)) == first
        assert "trying again on a new one" in caplog.text
        # The other dead one is dropped by its reader as soon as the loop runs: no lookup ever tries it.
        await asyncio.wait_for(_until(lambda: lookup.connections == 1), 5)
        assert [p for p in _backend_pids(lookup) if p in pids] == []
        await lookup.aclose()
        with pytest.raises(RuntimeError):
            await lookup.identify(number)

    asyncio.run(scenario())
    admin.dispose()


async def _until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0.01)


def test_an_idle_connection_the_server_closes_is_dropped_and_replaced(demo_pg: Any) -> None:
    url, engine, sessions = demo_pg
    number = _numbers(sessions)[0]
    lookup = LoopLookup.from_engine(engine, CustomerDirectory(sessions), max_connections=1)
    admin = sqlalchemy.create_engine(url)

    async def scenario() -> None:
        first = await lookup.identify(number)
        pids = _backend_pids(lookup)
        _terminate(admin, pids)
        await asyncio.wait_for(_until(lambda: lookup.connections == 0), 5)  # seen by its reader, while idle
        assert await lookup.identify(number) == first  # on a new connection, at the first attempt
        assert lookup.connections == 1 and _backend_pids(lookup) != pids
        await lookup.aclose()
        assert lookup.connections == 0

    asyncio.run(scenario())
    admin.dispose()


def test_a_cancelled_lookup_drops_its_connection_and_a_failed_query_keeps_it(demo_pg: Any) -> None:
    """A lookup cancelled with its query under way leaves the connection in an unknown state: closed, its place
    free. A query PostgreSQL refuses (here: its statement_timeout, behind a lock) leaves it usable: kept."""
    url, engine, sessions = demo_pg
    number = _numbers(sessions)[0]
    lookup = LoopLookup.from_engine(engine, CustomerDirectory(sessions), max_connections=1)
    kwargs = {**lookup._connect_kwargs, "options": lookup._connect_kwargs.get("options", "") +
              " -c statement_timeout=300"}
    strict = LoopLookup(CustomerDirectory(sessions), kwargs, *_positional(*by_number_sql(engine.dialect)),
                        max_connections=1)
    admin = sqlalchemy.create_engine(url)

    async def scenario() -> None:
        first = await lookup.identify(number)
        await strict.identify(number)
        (pid,) = _backend_pids(strict)
        with admin.begin() as c:  # the lookup's query waits for this lock
            c.execute(sqlalchemy.text("lock table customers in access exclusive mode"))
            task = asyncio.ensure_future(lookup.identify(number))
            await asyncio.wait_for(_until(lambda: lookup._idle == []), 5)  # the query is under way
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert lookup.connections == 0  # closed
            with pytest.raises(psycopg.errors.QueryCanceled):  # statement timeout while the lock is held
                await strict.identify(number)
            assert strict.connections == 1 and _backend_pids(strict) == [pid]  # kept
        assert await lookup.identify(number) == first  # on a new connection
        assert await strict.identify(number) == first and _backend_pids(strict) == [pid]
        await lookup.aclose()
        await strict.aclose()

    asyncio.run(scenario())
    admin.dispose()


def test_a_cancelled_lookup_behind_a_lock_leaves_no_session_waiting_there(demo_pg: Any) -> None:
    """Cancelled while its query waits for a lock, the lookup closes its connection; PostgreSQL would notice the
    closed client only when the lock goes. The lookup's own statement_timeout ends that session meanwhile."""
    url, engine, sessions = demo_pg
    number = _numbers(sessions)[0]
    lookup = LoopLookup.from_engine(engine, CustomerDirectory(sessions), max_connections=1, statement_timeout=0.3)
    admin = sqlalchemy.create_engine(url)

    def waiting(pid: int) -> bool:
        with admin.connect() as c:
            return bool(c.execute(sqlalchemy.text("select count(*) from pg_stat_activity where pid = :pid"),
                                  {"pid": pid}).scalar())

    async def scenario() -> None:
        await lookup.identify(number)
        (pid,) = _backend_pids(lookup)
        with admin.begin() as c:  # held until the end of the block
            c.execute(sqlalchemy.text("lock table customers in access exclusive mode"))
            task = asyncio.ensure_future(lookup.identify(number))
            await asyncio.wait_for(_until(lambda: lookup._idle == []), 5)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert lookup.connections == 0
            # the lock still held: the session is gone once its statement timed out
            await asyncio.wait_for(_until(lambda: not waiting(pid)), 5)
        await lookup.aclose()

    asyncio.run(scenario())
    admin.dispose()


def test_a_lookup_waits_for_a_connection_at_most_the_acquire_timeout(demo_pg: Any) -> None:
    _, engine, sessions = demo_pg
    number = _numbers(sessions)[0]
    lookup = LoopLookup.from_engine(engine, CustomerDirectory(sessions), max_connections=1, acquire_timeout=0.2)

    async def scenario() -> None:
        await lookup.identify(number)
        held = await lookup._acquire(fresh=False)  # the only connection, taken (a lookup stuck on the database)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(LookupBusy):
            await lookup.identify(number)
        assert 0.15 <= loop.time() - started < 1.0
        waiting = asyncio.ensure_future(lookup.identify(number))
        await asyncio.sleep(0)
        assert not waiting.done()
        lookup._release(held)  # given back: straight to the waiting lookup
        assert (await waiting).customer is not None
        assert lookup.connections == 1
        held = await lookup._acquire(fresh=False)
        waiting = asyncio.ensure_future(lookup.identify(number))
        await asyncio.sleep(0)
        lookup._discard(held)  # broken while the lookup waits: its place goes to the lookup, which opens one
        assert lookup.connections == 1 and held.gone
        assert (await waiting).customer is not None
        assert lookup.connections == 1 and len(lookup._idle) == 1 and lookup._idle[0] is not held
        await lookup.aclose()

    asyncio.run(scenario())


def test_the_deferred_lookup_answers_from_the_connections_reader(demo_pg: Any) -> None:
    """The routed call's miss: its coroutine is resumed by the reader callback that read the answer (no asyncio
    Task, no loop turn in between); with no idle connection it goes the coroutine's way (opened, then kept)."""
    _, engine, sessions = demo_pg
    number = _numbers(sessions)[0]
    lookup = LoopLookup.from_engine(engine, CustomerDirectory(sessions), max_connections=1)

    async def scenario() -> None:
        first = await _fired(lookup.identify_deferred(number))  # none idle yet: opened by identify()
        assert first.customer is not None and lookup.connections == 1 and len(lookup._idle) == 1
        fired_in: list[Any] = []
        conn = lookup._idle[0]
        reader = conn._readable

        def watched() -> None:
            fired_in.append("reader")
            reader()
            fired_in.append("reader done")

        loop = asyncio.get_running_loop()
        loop.remove_reader(conn.fd)
        loop.add_reader(conn.fd, watched)
        answer = lookup.identify_deferred(number)
        answer.addCallback(lambda identity: fired_in.append(identity) or identity)
        assert not answer.called and lookup._idle == []
        assert await _fired(answer) == first
        assert fired_in[:3] == ["reader", first, "reader done"] and lookup._idle == [conn]
        await lookup.aclose()

    asyncio.run(scenario())


def test_screen_pop_finds_callers_on_the_loop_and_falls_back_to_a_worker_thread(demo_pg: Any) -> None:
    """A pop's card by the caller's number: through the screen pop's own loop lookup (no worker thread), the same
    customer and the other customers on that number as the directory; a lookup that fails sends it through the
    thread path."""
    from ccserver.events import EventHub
    from ccserver.server import screenpop_lookup
    from screenpop.wiring import build_screenpop

    pg_url, engine, sessions = demo_pg
    directory = CustomerDirectory(sessions)
    numbers = _numbers(sessions)
    common_number = next(n for n in numbers
                  if directory.identify(n, store_id=None, line=None, create_prospect=False).other_customer_ids)
    threaded: list[str] = []

    async def run_blocking(fn: Any, *args: Any, **kwargs: Any) -> Any:
        threaded.append(getattr(fn, "__name__", repr(fn)))
        return fn(*args, **kwargs)

    class Broken:
        def identify_deferred(self, e164: str) -> Any:
            raise LookupBusy("every connection busy")

        async def aclose(self) -> None:
            pass

    config = load_config(environ={"CCSERVER_DATABASE_URL": pg_url})

    async def card(lookup: Any, number: str) -> Any:
        from twisted.internet.asyncioreactor import AsyncioSelectorReactor

        from ccserver.customers.cache import MemorySummaryCache
        from ccserver.identification import IdentificationService

        # As `ccserver run` wires it: the identification service with the screen pop's own loop lookup.
        lookups = IdentificationService(directory, MemorySummaryCache(), region="CN", run_blocking=run_blocking,
                                        clock=AsyncioSelectorReactor(asyncio.get_running_loop()), loop_lookup=lookup)
        service = build_screenpop(config, sessions=sessions, run_blocking=run_blocking, users=None, hub=EventHub(),
                                  identification=lookups, ws_port=0)
        assert service.pop is not None
        try:
            return await service.pop.cards.prefetch("1700000000.1", None, number)
        finally:
            for close in service.closers:
                await close()

    lookup = screenpop_lookup(sessions, directory)
    assert isinstance(lookup, LoopLookup) and lookup.max_connections == 2
    found = asyncio.run(card(lookup, common_number))
    expected = directory.identify(common_number, store_id=None, line=None, create_prospect=False)
    assert found.data is not None and str(found.data["id"]) == str(expected.customer.id)
    assert {cid for cid, _name in found.facts.variants} == {str(i) for i in expected.other_customer_ids}
    assert "identify" not in threaded  # found on the loop (the card and the names are read in threads)
    threaded.clear()
    again = asyncio.run(card(Broken(), common_number))
    assert "identify" in threaded and str(again.data["id"]) == str(expected.customer.id)
    assert screenpop_lookup(session_factory(make_engine("sqlite://")), directory) is None
