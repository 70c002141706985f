"""`ccserver stores delete CODE` and `ccserver queues delete NAME`: the web admin's removals from a shell, refused
alike while something uses the row, audited as cli:<os user>, the running servers told to reload."""

from __future__ import annotations

import json

import pytest
import redis
from sqlalchemy import select

from ccserver.admin import org
from ccserver.admin.reload import CHANNEL
from ccserver.admin.users import Actor
from ccserver.cli import main
from ccserver.db.engine import make_engine, session_factory
from ccserver.db.models import AuditLog, Queue, Store
from tests.conftest import TEST_REDIS_URL

SYSTEM = Actor(None, "test")


@pytest.fixture
def data(tmp_path):
    """A migrated database with two stores, bj-volvo used by a queue and a DID, and three queues."""
    args = ["--data-dir", str(tmp_path)]
    assert main(["db", "upgrade", *args]) == 0
    engine = make_engine(f"sqlite:///{tmp_path / 'ccserver.sqlite3'}")
    sessions = session_factory(engine)
    for code in ("bj-volvo", "gz-tpyo"):
        org.save_store(sessions, SYSTEM, {"code": code, "name": code, "brand": "x", "city": "x",
                                          "time_zone": "Asia/Shanghai"})
    org.set_hours(sessions, SYSTEM, "gz-tpyo", [{"weekday": 0, "opens": "09:00", "closes": "18:00"}])
    for name in ("bj-sales", "tmp-queue", "vip"):  # vip: the built-in routing rules send diamond callers there
        org.save_queue(sessions, SYSTEM, {"name": name, "store": "bj-volvo" if name == "bj-sales" else None})
    org.save_did(sessions, SYSTEM, {"number": "01064881000", "line": "sales", "store": "bj-volvo",
                                    "default_queue": "bj-sales"})
    yield args, sessions
    engine.dispose()


def _exists(sessions, model, column, value) -> bool:
    with sessions() as session:
        return session.scalars(select(model.id).where(column == value)).first() is not None


def _audited(sessions, action: str) -> list[AuditLog]:
    with sessions() as session:
        return list(session.scalars(select(AuditLog).where(AuditLog.action == action)))


def test_a_store_nothing_uses_is_deleted_with_its_hours_and_audited(data, capsys):
    args, sessions = data
    assert main(["stores", "delete", "gz-tpyo", *args]) == 0
    assert capsys.readouterr().out.strip() == "store 'gz-tpyo' deleted"
    assert not _exists(sessions, Store, Store.code, "gz-tpyo")
    [row] = _audited(sessions, "store.deleted")
    assert row.actor_name.startswith("cli:") and row.actor_id is None and row.target == "store:gz-tpyo"
    assert row.detail["before"]["code"] == "gz-tpyo" and row.detail["after"] is None


def test_a_store_in_use_is_refused_naming_what_uses_it(data, capsys):
    args, sessions = data
    assert main(["stores", "delete", "bj-volvo", *args]) == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.strip() == ("ccserver stores: store 'bj-volvo' is still used by 1 queue(s), 1 DID(s): "
                               "move or remove them first")
    assert _exists(sessions, Store, Store.code, "bj-volvo") and _audited(sessions, "store.deleted") == []


def test_an_unknown_store_code_is_refused(data, capsys):
    args, sessions = data
    assert main(["stores", "delete", "nowhere", *args]) == 1
    assert capsys.readouterr().err.strip() == "ccserver stores: unknown store 'nowhere'"
    with sessions() as session:
        first = session.scalars(select(Store.id).order_by(Store.id)).first()
    assert main(["stores", "delete", str(first), *args]) == 1  # a code, never an id
    assert capsys.readouterr().err.strip() == f"ccserver stores: unknown store '{first}'"
    assert _exists(sessions, Store, Store.id, first)


def test_a_queue_nothing_routes_to_is_deleted_and_audited(data, capsys):
    args, sessions = data
    assert main(["queues", "delete", "tmp-queue", *args]) == 0
    assert capsys.readouterr().out.strip() == "queue 'tmp-queue' deleted"
    assert not _exists(sessions, Queue, Queue.name, "tmp-queue")
    [row] = _audited(sessions, "queue.deleted")
    assert row.actor_name.startswith("cli:") and row.target == "queue:tmp-queue"


def test_a_queue_in_use_is_refused_naming_what_uses_it(data, capsys):
    args, sessions = data
    assert main(["queues", "delete", "bj-sales", *args]) == 1
    assert capsys.readouterr().err.strip() == ("ccserver queues: queue 'bj-sales' is still used by the DID(s) "
                                               "01064881000 (default queue): change them first")
    assert main(["queues", "delete", "vip", *args]) == 1  # the routing rules in use (here: the built-in ones)
    err = capsys.readouterr().err
    assert err.startswith("ccserver queues: queue 'vip' is still used by the routing rules (routing.queues.")
    assert _exists(sessions, Queue, Queue.name, "bj-sales") and _exists(sessions, Queue, Queue.name, "vip")
    assert _audited(sessions, "queue.deleted") == []


def test_an_unknown_queue_is_refused(data, capsys):
    args, _ = data
    assert main(["queues", "delete", "nope", *args]) == 1
    assert capsys.readouterr().err.strip() == "ccserver queues: no queue named 'nope'"


def test_the_running_servers_are_told_to_reload(data, capsys):
    args, _ = data
    client = redis.Redis.from_url(TEST_REDIS_URL)
    pubsub = client.pubsub()
    pubsub.subscribe(CHANNEL)
    try:
        confirmed = pubsub.get_message(timeout=5.0)  # subscribed from here on
        assert confirmed is not None and confirmed["type"] == "subscribe"
        assert main(["queues", "delete", "tmp-queue", "--redis-url", TEST_REDIS_URL, *args]) == 0
        # (channels are shared by every Redis db: another test run's reload may come first)
        told = [json.loads(m["data"]) for m in iter(lambda: pubsub.get_message(timeout=2.0), None)]
        assert {"what": "queue"} in [{"what": t.get("what")} for t in told], told
    finally:
        pubsub.close()
        client.close()
