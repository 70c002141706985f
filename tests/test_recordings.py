"""Recordings: which calls the routing answer records (CC_RECORD over the recorded FastAGI session), the file name
onto the call record, the range-capable download that never leaves the folder, the retention job under a lease."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ccserver.clock import ManualClock
from ccserver.cluster import ClusterJobs
from ccserver.customers.directory import CustomerDirectory
from ccserver.db import migrate
from ccserver.db.engine import make_engine, session_factory
from ccserver.db.models import Call, RoutingDecision
from ccserver.recordings import RangeNotSatisfiable, RecordingFiles, RecordingPolicy, parse_range
from ccserver.recordings.cleanup import RecordingCleanup, expired_days
from ccserver.state.records import sql_sink
from ccserver.web.app import build_router
from tests.test_callrouting_service import Service, demo, mset  # noqa: F401 - the module's demo fixture
from tests.web_support import MemoryUsers, call, make_context

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC).timestamp()


# -- policy -------------------------------------------------------------------------------------------------------
def test_policy_by_queue_line_and_star() -> None:
    p = RecordingPolicy(queues=frozenset({"complaints"}), lines=frozenset({"insurance"}), dir="/rec",
                        notice_prompt="cc-recording-notice")
    assert p.records("complaints", "sales") and p.records("sales", "insurance") and not p.records("sales", "sales")
    assert p.variables("sales", "sales", "abcd1234abcd1234", NOW) == {}
    assert p.variables("complaints", None, "abcd1234abcd1234", NOW) == {
        "CC_RECORD": "1", "CC_RECORDING": "2026/12/01/abcd1234abcd1234.wav", "CC_RECORDING_DIR": "/rec",
        "CC_RECORDING_NOTICE": "cc-recording-notice"}
    assert p.variables("complaints", None, "../../etc", NOW) == {}  # never a name built from odd input
    assert RecordingPolicy(queues=frozenset({"*"})).records(None, None)
    assert not RecordingPolicy().enabled


def test_routing_answer_carries_cc_record_in_the_one_mset(demo: Any) -> None:  # noqa: F811
    sessions, data = demo
    svc = Service(data, CustomerDirectory(sessions))
    svc.service.recording_policy = RecordingPolicy(queues=frozenset({"vip"}), dir="/var/spool/asterisk/monitor/cc")
    h = svc.call("agi-01-13800138000")  # the diamond caller: queue vip
    variables = mset(h.peer)
    did = variables["CC_DECISION_ID"]
    day = datetime.fromtimestamp(svc.records[0]["made_at"], UTC)
    assert variables["CC_QUEUE"] == "vip" and variables["CC_RECORD"] == "1"
    assert variables["CC_RECORDING"] == f"{day:%Y/%m/%d}/{did}.wav"
    assert variables["CC_RECORDING_DIR"] == "/var/spool/asterisk/monitor/cc"
    assert svc.records[0]["variables"]["CC_RECORDING"] == variables["CC_RECORDING"]
    other = Service(data, CustomerDirectory(sessions))
    other.service.recording_policy = RecordingPolicy(queues=frozenset({"complaints"}))
    assert "CC_RECORD" not in mset(other.call("agi-01-13800138000").peer)


# -- the call record ----------------------------------------------------------------------------------------------
@pytest.fixture
def sessions(sqlite_url: str) -> Any:
    migrate.upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    yield session_factory(engine)
    engine.dispose()


def test_call_record_takes_the_recording_from_its_decision(sessions: Any) -> None:
    made = datetime.fromtimestamp(NOW, UTC)
    with sessions.begin() as s:
        s.add(RoutingDecision(decision_id="abcd1234abcd1234", made_at=made, server="default", uniqueid="1795.1",
                              queue="vip", variables={"CC_QUEUE": "vip", "CC_RECORD": "1",
                                                      "CC_RECORDING": "2026/12/01/abcd1234abcd1234.wav"}))
        s.add(RoutingDecision(decision_id="efgh1234abcd1234", made_at=made, server="default", uniqueid="1795.2",
                              queue="sales", variables={"CC_QUEUE": "sales"}))
    sql_sink(sessions)([
        {"uniqueid": "1795.1", "server": "default", "decision_id": "abcd1234abcd1234", "entered_at": NOW,
         "ended_at": NOW + 60, "queue": "vip", "outcome": "answered"},
        {"uniqueid": "1795.2", "server": "default", "entered_at": NOW, "ended_at": NOW + 30, "queue": "sales"}])
    with sessions() as s:
        rows = {c.uniqueid: c.recording_path for c in s.scalars(select(Call))}
    assert rows == {"1795.1": "2026/12/01/abcd1234abcd1234.wav", "1795.2": None}


# -- files and ranges ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("header", "size", "expected"), [
    (None, 1000, None), ("bytes=0-99", 1000, (0, 99)), ("bytes=900-", 1000, (900, 999)),
    ("bytes=-100", 1000, (900, 999)), ("bytes=990-5000", 1000, (990, 999)), ("bytes=-5000", 1000, (0, 999)),
    ("items=0-1", 1000, None),
])
def test_parse_range(header: str | None, size: int, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5-2", "bytes=0-1,5-6", "bytes=-0", "bytes=x-y", "bytes=-"])
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 1000)


def test_stored_names_never_leave_the_folder(tmp_path: Path) -> None:
    root = tmp_path / "rec"
    (root / "2026/12/01").mkdir(parents=True)
    (root / "2026/12/01/a.wav").write_bytes(b"RIFF")
    (tmp_path / "secret").write_text("x")
    os.symlink(tmp_path / "secret", root / "2026/12/01/link.wav")
    files = RecordingFiles(root)
    assert files.resolve("2026/12/01/a.wav") == (root / "2026/12/01/a.wav").resolve()
    for bad in ("../../etc/passwd", "/etc/passwd", "2026/../../secret", "2026//a.wav", "a\\..\\b", "a\x00.wav",
                "2026/12/01/link.wav", "", None, "./a.wav"):
        assert files.resolve(bad) is None, bad


# -- the download -------------------------------------------------------------------------------------------------
AUDIO = bytes(range(256)) * 40  # 10,240 bytes


@pytest.fixture
def site(sessions: Any, tmp_path: Path) -> Any:
    root = tmp_path / "rec"
    (root / "2026/12/01").mkdir(parents=True)
    (root / "2026/12/01/abcd.wav").write_bytes(AUDIO)
    at = datetime.fromtimestamp(NOW, UTC)
    with sessions.begin() as s:
        for i, path in ((1, "2026/12/01/abcd.wav"), (2, "../../etc/passwd"), (3, None), (4, "2026/12/01/gone.wav")):
            s.add(Call(id=i, uniqueid=f"1795.{i}", server="default", entered_at=at, recording_path=path))
    users = MemoryUsers()
    users.add(1, "agent8001", "agent", "pw-agent-1")
    users.add(2, "boss", "supervisor", "pw-boss-1")
    users.add(3, "bj-manager", "supervisor", "pw-bj-1")
    ctx = make_context(users)
    ctx.session_factory = sessions
    ctx.recordings = RecordingFiles(root)
    router = build_router(ctx)
    tokens = {name: call(router, "POST", "/api/login", json_body={"username": name, "password": pw}).json()["token"]
              for name, pw in (("agent8001", "pw-agent-1"), ("boss", "pw-boss-1"), ("bj-manager", "pw-bj-1"))}
    return router, users, {k: {"Authorization": f"Bearer {v}"} for k, v in tokens.items()}


def test_download_whole_and_ranges(site: Any) -> None:
    router, users, auth = site
    whole = call(router, "GET", "/api/recordings/1", headers=auth["boss"])
    assert whole.status == 200 and whole.body == AUDIO
    assert whole.header("Content-Type") == "audio/wav" and whole.header("Accept-Ranges") == "bytes"
    part = call(router, "GET", "/api/recordings/1", headers={**auth["boss"], "Range": "bytes=100-199"})
    assert part.status == 206 and part.body == AUDIO[100:200]
    assert part.header("Content-Range") == f"bytes 100-199/{len(AUDIO)}"
    tail = call(router, "GET", "/api/recordings/1", headers={**auth["boss"], "Range": "bytes=-40"})
    assert tail.status == 206 and tail.body == AUDIO[-40:]
    bad = call(router, "GET", "/api/recordings/1", headers={**auth["boss"], "Range": "bytes=99999-"})
    assert bad.status == 416 and bad.header("Content-Range") == f"bytes */{len(AUDIO)}"
    plays = [a for a in users.audit_log if a[0] == "recording.play"]
    assert len(plays) == 1 and plays[0][2] == "boss" and plays[0][4] == {"call_id": 1}  # ranged fetches: no more rows


def test_download_refusals(site: Any) -> None:
    router, _users, auth = site
    assert call(router, "GET", "/api/recordings/1", headers=auth["agent8001"]).status == 403
    assert call(router, "GET", "/api/recordings/1").status == 401
    traversal = call(router, "GET", "/api/recordings/2", headers=auth["boss"])
    assert traversal.status == 403 and b"root:" not in traversal.body
    assert call(router, "GET", "/api/recordings/3", headers=auth["boss"]).status == 404
    assert call(router, "GET", "/api/recordings/4", headers=auth["boss"]).status == 404
    assert call(router, "GET", "/api/recordings/99", headers=auth["boss"]).status == 404
    assert call(router, "GET", "/api/recordings/1x", headers=auth["boss"]).status == 400


def test_a_store_manager_plays_only_their_stores_calls(site: Any, sessions: Any) -> None:
    from ccserver.db.models import DealerGroup, Queue, Store, User

    router, _users, auth = site
    at = datetime.fromtimestamp(NOW, UTC)
    with sessions.begin() as s:
        s.add(DealerGroup(id=1, name="Group"))
        s.flush()
        s.add_all([Store(id=1, group_id=1, code="bj", name="BJ", brand="Volvo", city="Beijing"),
                   Store(id=2, group_id=1, code="sh", name="SH", brand="BMW", city="Shanghai")])
        s.flush()
        s.add_all([Queue(name="bj-sales", store_id=1), Queue(name="sh-sales", store_id=2),
                   User(id=3, username="bj-manager", display_name="BJ", role="supervisor", store_id=1)])
        s.add_all([Call(id=5, uniqueid="1795.5", server="default", entered_at=at, queue="bj-sales",
                        recording_path="2026/12/01/abcd.wav"),
                   Call(id=6, uniqueid="1795.6", server="default", entered_at=at, queue="sh-sales",
                        recording_path="2026/12/01/abcd.wav")])
    assert call(router, "GET", "/api/recordings/5", headers=auth["bj-manager"]).status == 200
    assert call(router, "GET", "/api/recordings/6", headers=auth["bj-manager"]).status == 404  # not even "exists"
    assert call(router, "GET", "/api/recordings/1", headers=auth["bj-manager"]).status == 404  # no queue: no store
    assert call(router, "GET", "/api/recordings/6", headers=auth["boss"]).status == 200


# -- retention ----------------------------------------------------------------------------------------------------
def make_days(root: Path, days: list[str]) -> None:
    for d in days:
        folder = root / d
        folder.mkdir(parents=True)
        (folder / "x.wav").write_bytes(b"RIFF")


async def _inline(fn: Any, *a: Any, **k: Any) -> Any:
    return fn(*a, **k)


def test_cleanup_removes_days_past_retention_and_clears_the_calls(sessions: Any, tmp_path: Path) -> None:
    root = tmp_path / "rec"
    make_days(root, ["2026/08/31", "2026/09/01", "2026/09/02", "2026/12/01"])
    (root / "notes").mkdir()
    at = datetime.fromtimestamp(NOW, UTC)
    with sessions.begin() as s:
        s.add(Call(id=1, uniqueid="a", server="default", entered_at=at, recording_path="2026/08/31/x.wav"))
        s.add(Call(id=2, uniqueid="b", server="default", entered_at=at, recording_path="2026/09/02/x.wav"))
    clock = ManualClock(NOW)  # 2026-12-01: 90 days keep 2026-09-02 onwards
    job = RecordingCleanup(root, 90, _inline, clock, session_factory=sessions)
    assert str(job.cutoff()) == "2026-09-02"
    assert asyncio.run(job.tick()) == {"days": 2, "files": 2, "calls": 1}
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("x.wav")) == ["2026/09/02/x.wav",
                                                                                  "2026/12/01/x.wav"]
    assert not (root / "2026/08").exists() and (root / "notes").is_dir()
    with sessions() as s:
        assert {c.id: c.recording_path for c in s.scalars(select(Call))} == {1: None, 2: "2026/09/02/x.wav"}

    async def a_day_later() -> Any:
        await clock.advance(86_400)
        return await job.tick()

    assert asyncio.run(a_day_later()) == {"days": 1, "files": 1, "calls": 1}  # 2026-09-02 expired now
    assert RecordingCleanup(root, 0, _inline, clock).cutoff() and asyncio.run(
        RecordingCleanup(root, 0, _inline, clock).clean()) == {"days": 0, "files": 0, "calls": 0}
    assert expired_days(tmp_path / "missing", job.cutoff()) == []


def test_cleanup_runs_once_per_cluster_and_day(tmp_path: Path, redis_url: str) -> None:
    import redis.asyncio as aioredis

    root = tmp_path / "rec"
    make_days(root, ["2026/01/01"])
    clock = ManualClock(NOW)

    async def main() -> list[Any]:
        clients = [aioredis.Redis.from_url(redis_url) for _ in range(2)]
        try:
            nodes = [RecordingCleanup(root, 30, _inline, clock, cluster=ClusterJobs(c, node_id=f"node{i}"))
                     for i, c in enumerate(clients)]
            first = await nodes[0].tick()
            second = await nodes[1].tick()
            make_days(root, ["2026/01/02"])  # appears later the same day: today's occurrence is done
            again = await nodes[1].tick()
            await clock.advance(86_400)
            tomorrow = await nodes[1].tick()
            return [first, second, again, tomorrow]
        finally:
            for c in clients:
                await c.aclose()

    first, second, again, tomorrow = asyncio.run(main())
    assert first == {"days": 1, "files": 1, "calls": 0}
    assert second is None and again is None
    assert tomorrow == {"days": 1, "files": 1, "calls": 0}
