"""Shared fixtures: real PostgreSQL and Redis, never silently skipped.

TEST_DATABASE_URL (default: local PostgreSQL database `test`) and TEST_REDIS_URL (default: local Redis)
are the test suite's own settings, not server config. If either service cannot be reached the whole
run stops with a message naming it.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _check_services() -> None:
    import redis
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(TEST_DATABASE_URL)
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("select 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means the service is unusable
        pytest.exit(f"PostgreSQL unreachable at TEST_DATABASE_URL={TEST_DATABASE_URL}: {exc}", returncode=3)
    try:
        redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001
        pytest.exit(f"Redis unreachable at TEST_REDIS_URL={TEST_REDIS_URL}: {exc}", returncode=3)


def pytest_sessionstart(session: pytest.Session) -> None:
    _check_services()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh, private schema (dropped afterwards)."""
    import sqlalchemy

    schema = "t_" + secrets.token_hex(6)
    engine = sqlalchemy.create_engine(TEST_DATABASE_URL)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f"create schema {schema}"))
    sep = "&" if "?" in TEST_DATABASE_URL else "?"
    yield f"{TEST_DATABASE_URL}{sep}options={quote(f'-csearch_path={schema}')}"
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f"drop schema {schema} cascade"))
    engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'ccserver.sqlite3'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Run the test once on SQLite and once on PostgreSQL."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The test Redis, flushed before and after (database 15 is the suite's own)."""
    import redis

    client = redis.Redis.from_url(TEST_REDIS_URL)
    client.flushdb()
    yield TEST_REDIS_URL
    client.flushdb()
    client.close()


DEMO_AS_OF = "2026-11-23"


@pytest.fixture
def loaded(db_url: str) -> Iterator[tuple[str, object]]:
    """300 demo customers (seed 7, as of 2026-11-23) in ``db_url``: (url, session factory)."""
    from datetime import date

    from ccserver.db.engine import make_engine, session_factory
    from ccserver.demo import generate

    generate(db_url, customers=300, seed=7, as_of=date.fromisoformat(DEMO_AS_OF))
    engine = make_engine(db_url)
    yield db_url, session_factory(engine)
    engine.dispose()


@pytest.fixture
def aio_reactor() -> Iterator[Any]:
    """A private Twisted asyncio reactor on its own loop (never installed: the global reactor stays untouched)."""
    from twisted.internet.asyncioreactor import AsyncioSelectorReactor

    loop = asyncio.new_event_loop()
    reactor = AsyncioSelectorReactor(loop)
    yield reactor
    loop.close()
