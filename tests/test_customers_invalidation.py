"""A full score recompute reaches the call path: the nightly job (once per cluster), `ccserver scores recompute`
in another process, and a single node without Redis watching for a recompute made elsewhere."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis
from twisted.internet import defer, task

from ccserver import cli
from ccserver.cluster import ClusterJobs
from ccserver.customers.cache import MemorySummaryCache, RedisSummaryCache
from ccserver.customers.changes import CutoffsWatcher, Invalidator, latest_cutoffs_id
from ccserver.customers.directory import CustomerDirectory
from ccserver.customers.scores import NightlyRecompute, recompute_all
from ccserver.db.engine import make_engine, session_factory
from routing.value import TierShares

AS_OF = date(2026, 11, 23)
WIDE_DIAMOND = TierShares(diamond=0.3, gold=0.1, silver=0.2)  # the top 30 % are diamond: silver ones too


def a_silver_number(sessions: Any) -> str:
    """The primary number of a silver customer (top 10-30 % by score): diamond under WIDE_DIAMOND."""
    from sqlalchemy import select

    from ccserver.db.models import Customer, PhoneNumber, customer_phones

    with sessions() as s:
        return str(s.execute(
            select(PhoneNumber.e164).join(customer_phones).join(Customer)
            .where(Customer.tier == "silver", customer_phones.c.is_primary, ~PhoneNumber.shared)
            .order_by(Customer.value_score.desc()).limit(1)
        ).scalar_one())


@pytest.fixture
def keep_logging():
    """``ccserver`` commands point the root logger at the (captured) stderr of the moment: put it back."""
    import logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


async def no_wait(_seconds: float) -> None:
    return None


async def tier_on_next_call(cache: Any, directory: CustomerDirectory, e164: str) -> str:
    """What the routing service does for a call: the cache, and on a miss SQL (then cached)."""
    identity, _ = await cache.lookup(e164, datetime.now(UTC).timestamp())
    if identity is None:
        identity = directory.identify(e164, store_id=None, line="service", create_prospect=False)
        await cache.store(e164, identity)
    assert identity.customer is not None
    return identity.customer.tier


def in_thread_now(fn: Any, *args: Any) -> Any:
    return defer.maybeDeferred(fn, *args)


def nightly_clock() -> task.Clock:
    clock = task.Clock()
    clock.advance(datetime(2026, 11, 22, 19, 0, tzinfo=UTC).timestamp())  # 03:00 in Shanghai on AS_OF
    return clock


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_nightly_recompute_that_changes_a_tier_reaches_the_next_call(loaded, kind, request):
    _, sessions = loaded
    recompute_all(sessions, as_of=AS_OF)
    directory = CustomerDirectory(sessions)
    number = a_silver_number(sessions)

    async def main() -> None:
        client = aioredis.Redis.from_url(request.getfixturevalue("redis_url")) if kind == "redis" else None
        cache = RedisSummaryCache(client) if client is not None else MemorySummaryCache(100)
        try:
            assert await tier_on_next_call(cache, directory, number) == "silver"
            assert (await cache.lookup(number, 0.0))[0] is not None  # cached for the calls that follow
            nightly = NightlyRecompute(sessions, clock=nightly_clock(), run_in_thread=in_thread_now,
                                       shares=WIDE_DIAMOND, cluster=ClusterJobs(client, "node-a"),
                                       after=lambda _summary: Invalidator(cache, sleep=no_wait).everything())
            summary = await nightly.run_now().asFuture(asyncio.get_running_loop())
            assert summary["as_of"] == AS_OF.isoformat() and nightly.runs == 1
            assert await tier_on_next_call(cache, directory, number) == "diamond"
        finally:
            if client is not None:
                await client.aclose()

    asyncio.run(main())


def test_nightly_recompute_runs_on_one_node_of_two(sqlite_url, redis_url):
    from ccserver.demo import generate

    generate(sqlite_url, customers=50, seed=2, as_of=AS_OF)
    engine = make_engine(sqlite_url)
    sessions = session_factory(engine)
    ran: list[str] = []

    def job_of(node: str) -> Any:
        def job(as_of: date) -> dict[str, Any]:
            ran.append(node)
            return recompute_all(sessions, as_of=as_of)
        return job

    async def main() -> None:
        client = aioredis.Redis.from_url(redis_url)
        try:
            nodes = [NightlyRecompute(None, clock=nightly_clock(), run_in_thread=in_thread_now, job=job_of(name),
                                      cluster=ClusterJobs(client, name)) for name in ("node-a", "node-b")]
            loop = asyncio.get_running_loop()
            await asyncio.gather(*(n.run_now().asFuture(loop) for n in nodes))
            assert len(ran) == 1
            assert sorted((n.runs, n.elsewhere) for n in nodes) == [(0, 1), (1, 0)]
        finally:
            await client.aclose()

    asyncio.run(main())
    engine.dispose()


def test_scores_recompute_command_drops_the_servers_cached_customers(tmp_path, redis_url, monkeypatch, capsys,
                                                                     keep_logging):
    """`ccserver scores recompute` runs in its own process: it reaches the servers' cache through Redis."""
    data = ["--data-dir", str(tmp_path), "--redis-url", redis_url]
    monkeypatch.setattr(cli, "CACHE_SETTLE_SECONDS", 0.0)
    assert cli.main(["db", "upgrade", *data]) == 0
    assert cli.main(["demo-data", "--customers", "300", "--seed", "7", "--as-of", AS_OF.isoformat(), *data]) == 0
    engine = make_engine(f"sqlite:///{tmp_path / 'ccserver.sqlite3'}")
    sessions = session_factory(engine)
    directory = CustomerDirectory(sessions)
    number = a_silver_number(sessions)

    async def next_call() -> str:
        client = aioredis.Redis.from_url(redis_url)
        try:
            return await tier_on_next_call(RedisSummaryCache(client), directory, number)
        finally:
            await client.aclose()

    assert asyncio.run(next_call()) == "silver"  # a server's call cached the customer as silver
    capsys.readouterr()
    monkeypatch.setenv("CCSERVER_SCORES_TIER_SHARES", '{"diamond": 0.3, "gold": 0.1, "silver": 0.2}')
    assert cli.main(["scores", "recompute", "--as-of", AS_OF.isoformat(), *data]) == 0
    assert "cached customers dropped" in capsys.readouterr().out
    assert asyncio.run(next_call()) == "diamond"
    engine.dispose()


def test_a_node_without_redis_sees_a_recompute_made_by_another_process(sqlite_url):
    from ccserver.demo import generate

    generate(sqlite_url, customers=300, seed=7, as_of=AS_OF)
    engine = make_engine(sqlite_url)
    sessions = session_factory(engine)
    directory = CustomerDirectory(sessions)
    recompute_all(sessions, as_of=AS_OF)
    number = a_silver_number(sessions)

    async def main() -> None:
        cache = MemorySummaryCache(100)
        watcher = CutoffsWatcher(lambda: asyncio.to_thread(latest_cutoffs_id, sessions),
                                 Invalidator(cache, sleep=no_wait))
        assert not await watcher.check()  # the baseline
        assert await tier_on_next_call(cache, directory, number) == "silver"
        assert not await watcher.check()
        recompute_all(sessions, as_of=AS_OF, shares=WIDE_DIAMOND)  # as `ccserver scores recompute` would
        assert await watcher.check() and watcher.sweeps == 1
        assert await tier_on_next_call(cache, directory, number) == "diamond"
        assert not await watcher.check()

    asyncio.run(main())
    engine.dispose()
