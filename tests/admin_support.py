"""What the admin API tests start from: a migrated database holding the bj-volvo store (``store_database``; on
SQLite the ``admin_db`` fixture), users added as the admin tools add them, whose password is ``password-<name>``,
and their logins: through the API (a bearer token) or through the login page (a page's cookie session)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from ccserver.admin import org
from ccserver.admin import users as admin_users
from ccserver.db import migrate
from ccserver.db.engine import make_engine, session_factory
from ccserver.passwords import hash_password
from tests.web_support import call

SYSTEM = admin_users.Actor(None, "test")


@contextmanager
def store_database(url: str) -> Iterator[sessionmaker[Session]]:
    """The session factory of the new database at ``url``, migrated, with the store ``bj-volvo`` (Beijing)."""
    migrate.upgrade(url)
    engine = make_engine(url)
    sessions = session_factory(engine)
    org.save_store(sessions, SYSTEM, {"code": "bj-volvo", "name": "北京沃尔沃", "brand": "Volvo", "city": "Beijing",
                                      "time_zone": "Asia/Shanghai"})
    try:
        yield sessions
    finally:
        engine.dispose()


@pytest.fixture
def admin_db(sqlite_url: str) -> Iterator[sessionmaker[Session]]:
    """:func:`store_database` on SQLite."""
    with store_database(sqlite_url) as sessions:
        yield sessions


def add_user(sessions: sessionmaker[Session], name: str, role: str, **more: Any) -> None:
    """A user whose password is ``password-<name>``, already chosen (no change asked at the first login);
    ``more``: admin_users.add_user's keywords (store, extension, interface …)."""
    admin_users.add_user(sessions, SYSTEM, name, role, hash_password("password-" + name, n=2**10),
                         must_change_password=False, **more)


def login(router: Any, name: str) -> dict[str, str]:
    """The Authorization header of ``name`` logged in through /api/login."""
    reply = call(router, "POST", "/api/login", json_body={"username": name, "password": "password-" + name})
    assert reply.status == 200, reply.body
    return {"Authorization": f"Bearer {reply.json()['token']}"}


def page_session(router: Any, name: str) -> dict[str, str]:
    """The Cookie header of ``name`` logged in through the login page: a page's session, with no CSRF header — what
    a forged cross-site request would carry."""
    page = call(router, "GET", "/login")
    csrf = page.body.decode().split('name="csrf_token" value="')[1].split('"')[0]
    login = call(router, "POST", "/login", headers={"Cookie": f"ccserver_login={page.cookies()['ccserver_login']}"},
                 form={"csrf_token": csrf, "username": name, "password": "password-" + name, "next": "/"})
    return {"Cookie": f"ccserver_session={login.cookies()['ccserver_session']}"}
