"""The loop lookup after a migration: a prepared statement gone stale costs no lookup (found in review)."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy

from ccserver.customers.directory import CustomerDirectory
from ccserver.customers.loop_lookup import LoopLookup
from tests.test_customers_loop_lookup import _numbers, demo_pg  # noqa: F401 - the fixture


def test_a_column_type_change_does_not_break_every_later_lookup(demo_pg: Any) -> None:  # noqa: F811
    """A migration that widens a column the query returns (varchar(120) -> varchar(200)) invalidates the
    server-side prepared statement's result type: PostgreSQL answers "cached plan must not change result type".
    The lookup treats that as "a query PostgreSQL refuses": the connection is kept, with its stale statement, so
    every later lookup on it fails the same way until the process restarts (every routed call loses its tier)."""
    url, engine, sessions = demo_pg
    number = _numbers(sessions)[0]
    lookup = LoopLookup.from_engine(engine, CustomerDirectory(sessions), max_connections=1)
    admin = sqlalchemy.create_engine(url)

    async def scenario() -> list[str]:
        first = await lookup.identify(number)
        with admin.begin() as c:
            c.execute(sqlalchemy.text("alter table customers alter column name type varchar(200)"))
        errors = []
        for _ in range(3):
            try:
                assert await lookup.identify(number) == first
            except Exception as exc:  # noqa: BLE001
                errors.append(f"{type(exc).__name__}: {exc}")
        await lookup.aclose()
        return errors

    errors = asyncio.run(scenario())
    admin.dispose()
    # The stale statement is found out by the first lookup, which is tried again on a new connection (as after a
    # broken one): no caller loses their tier. Unfixed: three failures in a row, and every later one too.
    assert errors == [], errors


def test_probe_a_cancelled_deferred_lookup_keeps_its_connection(demo_pg: Any) -> None:  # noqa: F811
    """Probe (expected to pass): the routed call's Deferred cancelled while its query runs: the late answer is
    dropped quietly and the connection goes back idle (not closed, no AlreadyCalledError)."""
    from twisted.internet.defer import CancelledError

    url, engine, sessions = demo_pg
    number = _numbers(sessions)[0]
    lookup = LoopLookup.from_engine(engine, CustomerDirectory(sessions), max_connections=1)

    async def scenario() -> None:
        await lookup.identify(number)
        answer = lookup.identify_deferred(number)
        failures: list[Any] = []
        answer.addErrback(lambda f: failures.append(f.type))
        answer.cancel()
        assert failures == [CancelledError]
        for _ in range(200):
            if lookup._idle:
                break
            await asyncio.sleep(0.005)
        assert len(lookup._idle) == 1 and lookup.connections == 1
        await lookup.aclose()

    asyncio.run(scenario())
