"""The KPI API over HTTP: live queues and agents from the recorded busy hour, reports from SQL (JSON and CSV),
roles, the store manager's view, the audit of exports and errors that name the field."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from typing import Any

import pytest
from sqlalchemy import select, update
from twisted.internet.address import IPv4Address
from twisted.web.test.requesthelper import DummyRequest

from ccserver.ami.link import asterisk_status
from ccserver.clock import ManualClock
from ccserver.db.models import AuditLog, Customer, Queue, User
from ccserver.events import EventHub
from ccserver.kpi import KpiSettings
from ccserver.kpi.service import KpiService
from ccserver.kpi.store import KpiStore
from ccserver.state import StateTracker
from ccserver.web.app import build_router
from ccserver.web.sql_users import SQLUserStore
from tests.test_kpi_service import drained
from tests.test_state_support import timed_messages
from tests.web_support import make_context

BUSY = timed_messages("ami-inbound-load-40-calls")
NO_LINK = asterisk_status(None)  # make_context has no Asterisk: /api/queues says so (test_asterisk_link)
DAY = "2026-11-23"  # the busy hour was recorded in the afternoon of 23 November 2026, Shanghai time


async def get(router: Any, path: str, token: str | None) -> tuple[int, dict[str, str], bytes]:
    path_only, _, query = path.partition("?")
    req = DummyRequest([p.encode() for p in path_only.split("/") if p], client=IPv4Address("TCP", "192.0.2.7", 1))
    req.client = IPv4Address("TCP", "192.0.2.7", 1)
    req.method, req.path, req.uri = b"GET", path_only.encode(), path.encode()
    if query:
        from urllib.parse import parse_qs

        req.args = {k.encode(): [x.encode() for x in v] for k, v in parse_qs(query).items()}
    req.content = io.BytesIO(b"")
    if token:
        req.requestHeaders.addRawHeader("Authorization", f"Bearer {token}")
    router.render(req)
    while not req.finished:
        await asyncio.sleep(0)
    headers = {k.decode().lower(): v[0].decode() for k, v in req.responseHeaders.getAllRawHeaders()}
    return req.responseCode or 200, headers, b"".join(req.written)


async def get_json(router: Any, path: str, token: str | None) -> tuple[int, Any]:
    status, _headers, body = await get(router, path, token)
    return status, json.loads(body)


@pytest.fixture
def site(loaded: Any) -> Any:
    _url, sessions = loaded
    with sessions.begin() as s:
        s.add(Queue(name="bulk", store_id=1, line="hotline", strategy="rrmemory"))  # the lab's queue, store 1's
    with sessions() as s:
        users = {u.username: u for u in s.scalars(select(User))}

    def token(ctx: Any, username: str) -> str:
        u = users[username]
        return ctx.signer.issue(u.id, u.username, u.role)[0]

    def manage(username: str, store_id: int | None) -> None:
        with sessions.begin() as s:
            s.execute(update(User).where(User.username == username).values(store_id=store_id))

    return sessions, token, manage


async def busy_hour(sessions: Any, stop_after_joins: int | None = None) -> tuple[Any, Any, Any, Any]:
    """The recorded busy hour through tracker → hub → KPI service; returns (router, ctx, tracker, kpi)."""

    async def thread(fn: Any, *a: Any, **kw: Any) -> Any:
        return await asyncio.to_thread(fn, *a, **kw)

    hub = EventHub()
    tracker = StateTracker(publish=hub.publish)
    clock = ManualClock(BUSY[0][1])
    kpi = KpiService(KpiSettings(), store=KpiStore(sessions), run_blocking=thread, clock=clock,
                     servers=["default"], tracker=tracker)
    kpi.subscribe(hub)
    hub.start()
    joins = 0
    for msg, t in BUSY:
        joins += msg.get("Event") == "QueueCallerJoin"
        if stop_after_joins is not None and joins > stop_after_joins:
            break
        tracker.handle(msg, t)
    await drained(hub, kpi)
    await clock.advance(tracker.now - clock.time())
    ctx = make_context(SQLUserStore(sessions))
    ctx.run_blocking = thread
    ctx.tracker, ctx.session_factory, ctx.kpi = tracker, sessions, kpi
    return build_router(ctx), ctx, tracker, kpi


def test_live_queues_and_agents_by_role_and_store(site: Any) -> None:
    sessions, token, manage = site

    async def main() -> dict[str, Any]:
        router, ctx, tracker, _kpi = await busy_hour(sessions, stop_after_joins=30)
        # One waiting caller is a known customer whose channel did not carry CC_TIER.
        waiting = tracker.calls_in_queue("bulk")
        with sessions() as s:
            customer = s.scalars(select(Customer).order_by(Customer.id).limit(1)).one()
        waiting[0].customer_id, waiting[0].tier = str(customer.id), None
        boss, agent = token(ctx, "supervisor1"), token(ctx, "agent8001")
        out = {"queues": await get_json(router, "/api/queues", boss),
               "one": await get_json(router, "/api/queues?queue=bulk", boss),
               "none": await get_json(router, "/api/queues?queue=sales", boss),
               "bad": await get_json(router, "/api/queues?queue=bu%20lk", boss),
               "agents": await get_json(router, "/api/agents", boss),
               "agent_role": await get_json(router, "/api/queues", agent),
               "agent_role_agents": await get_json(router, "/api/agents", agent),
               "anonymous": await get_json(router, "/api/queues", None),
               "admin": await get_json(router, "/api/queues", token(ctx, "admin")),
               "tracker_waiting": len(waiting), "tier": customer.tier, "now": ctx.kpi.clock.time()}
        manage("supervisor2", 1)  # a store manager of the store that owns `bulk`
        out["store1"] = await get_json(router, "/api/queues", token(ctx, "supervisor2"))
        out["store1_agents"] = await get_json(router, "/api/agents", token(ctx, "supervisor2"))
        manage("supervisor2", 2)  # … of another store
        out["store2"] = await get_json(router, "/api/queues", token(ctx, "supervisor2"))
        out["store2_agents"] = await get_json(router, "/api/agents", token(ctx, "supervisor2"))
        return out

    got = asyncio.run(main())
    status, body = got["queues"]
    assert status == 200
    (bulk,) = [q for q in body["queues"] if q["queue"] == "bulk"]
    assert bulk["server"] == "default" and bulk["sl_threshold"] == 20.0
    assert bulk["waiting"] == got["tracker_waiting"] > 5 and len(bulk["callers"]) == bulk["waiting"]
    first = bulk["callers"][0]
    assert first["tier"] == got["tier"]  # looked up: the customer's current tier
    assert first["wait"] == bulk["longest_wait"] > 0 and first["state"] in ("queued", "ringing")
    assert {"uniqueid", "position", "priority", "caller_number", "customer_id", "joined_at"} <= set(first)
    members = len(bulk["members"])  # the recording has no QueueStatus at its start: the members rung so far
    assert members >= 5 and bulk["logged_in"] == members
    assert {m["state"] for m in bulk["members"]} <= {"idle", "ringing", "talking", "logged_out"}
    assert any(m["state"] == "talking" for m in bulk["members"])
    today = bulk["today"]
    assert today["answered"] >= 5 and today["offered"] == today["answered"] + today["abandoned"]
    assert bulk["asterisk"]["holdtime"] > 0
    assert got["one"][1]["queues"] == body["queues"]
    assert got["none"] == (200, {"at": body["at"], "queues": [], "asterisk_link": NO_LINK})
    assert got["bad"][0] == 400 and got["bad"][1]["field"] == "queue"
    status, agents = got["agents"]
    assert status == 200 and len(agents["agents"]) == members
    talking = [a for a in agents["agents"] if a["state"] == "talking"]
    assert talking and all(a["call"] and a["in_state"] >= 0 for a in talking)
    assert sum(a["today"]["handled"] for a in agents["agents"]) >= 1
    assert all(a["queues"] == ["bulk"] for a in agents["agents"])
    assert got["agent_role"][0] == 403 and got["agent_role_agents"][0] == 403
    assert got["anonymous"][0] == 401
    assert got["admin"][1]["queues"] == body["queues"]
    assert got["store1"][1]["queues"] == body["queues"] and len(got["store1_agents"][1]["agents"]) == members
    assert got["store2"] == (200, {"at": body["at"], "queues": [], "asterisk_link": NO_LINK})
    assert got["store2_agents"][1]["agents"] == []


def test_reports_json_csv_audit_roles_and_errors(site: Any) -> None:
    sessions, token, manage = site

    async def main() -> dict[str, Any]:
        router, ctx, tracker, kpi = await busy_hour(sessions)
        await kpi.roll(kpi.books["default"].end)  # the interval ends: its rows go to SQL
        # A queue and an agent with hostile names (Asterisk allows them) land in SQL too.
        KpiStore(sessions).write([
            {"kind": "queue", "server": "default", "queue": "=HYPERLINK(\"http://x\")", "interval_start":
             kpi.books["default"].start, "day": DAY, "sl_threshold": 20.0, "offered": 1, "answered": 1},
            {"kind": "agent", "server": "default", "interface": "PJSIP/9999", "name": "+SUM(A1)", "interval_start":
             kpi.books["default"].start, "day": DAY, "handled": 1, "talk": 5.0, "queues": ["bulk"]},
        ])
        boss = token(ctx, "supervisor1")
        q = f"/api/reports/queues?from={DAY}&to={DAY}"
        a = f"/api/reports/agents?from={DAY}&to={DAY}"
        out: dict[str, Any] = {
            "day": await get_json(router, q, boss),
            "15m": await get_json(router, q + "&interval=15m&queue=bulk", boss),
            "other_day": await get_json(router, "/api/reports/queues?from=2026-11-22", boss),
            "agents": await get_json(router, a + "&agent=Local/8010@agent-phones/n", boss),
            "agents_q": await get_json(router, a + "&queue=bulk", boss),
            "csv": await get(router, q + "&format=csv", boss),
            "agents_csv": await get(router, a + "&format=csv", boss),
            "agent_role": await get_json(router, q, token(ctx, "agent8001")),
            "errors": [await get_json(router, path, boss) for path in (
                "/api/reports/queues?interval=1h", "/api/reports/queues?from=22-11-2026",
                f"/api/reports/queues?from={DAY}&to=2026-11-21", "/api/reports/queues?from=2026-01-01&to=2026-12-31"
                "&interval=15m", "/api/reports/queues?format=xml", "/api/reports/queues?queue=%3Dx",
                "/api/reports/agents?agent=PJSIP/80%0A01", "/api/reports/queues?from=2020-01-01&to=2026-01-01")],
        }
        manage("supervisor2", 2)
        out["store2"] = await get_json(router, q, token(ctx, "supervisor2"))
        out["store2_agents"] = await get_json(router, a, token(ctx, "supervisor2"))
        manage("supervisor2", 1)
        out["store1"] = await get_json(router, q, token(ctx, "supervisor2"))
        with sessions() as s:
            out["audit"] = [(r.action, r.actor_name, r.ip, r.detail) for r in
                            s.scalars(select(AuditLog).where(AuditLog.action == "report.export").order_by(AuditLog.id))]
        return out

    got = asyncio.run(main())
    status, day = got["day"]
    assert status == 200 and day["interval"] == "day" and day["time_zone"] == "Asia/Shanghai"
    assert day["from"] == f"{DAY}T00:00:00+08:00" and day["to"] == "2026-11-24T00:00:00+08:00"
    bulk = next(r for r in day["rows"] if r["queue"] == "bulk")
    assert (bulk["period"], bulk["offered"], bulk["answered"], bulk["abandoned"]) == (DAY, 40, 26, 14)
    assert bulk["asa"] == pytest.approx(13.5, abs=0.1) and bulk["service_level"] == 47.5
    (interval_row,) = got["15m"][1]["rows"]
    assert interval_row["period"].startswith(f"{DAY}T15:") and interval_row["offered"] == 40
    assert got["other_day"][1]["rows"] == []
    (agent_row,) = got["agents"][1]["rows"]
    assert agent_row["interface"] == "Local/8010@agent-phones/n" and agent_row["handled"] == 2
    assert len(got["agents_q"][1]["rows"]) == 21
    status, headers, body = got["csv"]
    assert status == 200 and headers["content-type"] == "text/csv; charset=utf-8"
    assert headers["content-disposition"] == f'attachment; filename="ccserver-queues-{DAY}-day.csv"'
    parsed = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    assert [r["queue"] for r in parsed] == ["'=HYPERLINK(\"http://x\")", "bulk"]
    assert parsed[1]["offered"] == "40" and parsed[1]["answered"] == "26"
    agents_csv = list(csv.DictReader(io.StringIO(got["agents_csv"][2].decode("utf-8-sig"), newline="")))
    assert "'+SUM(A1)" in [r["name"] for r in agents_csv] and len(agents_csv) == 21
    assert got["agent_role"][0] == 403
    fields = [(status, body.get("field")) for status, body in got["errors"]]
    assert fields == [(400, "interval"), (400, "from"), (400, "to"), (400, "to"), (400, "format"), (400, "queue"),
                      (400, "agent"), (400, "to")]
    assert all(body["error"] for _status, body in got["errors"])
    assert got["store2"][1]["rows"] == [] and got["store2_agents"][1]["rows"] == []
    assert [r["queue"] for r in got["store1"][1]["rows"]] == ["bulk"]
    assert [(action, who, ip, detail["report"], detail["rows"]) for action, who, ip, detail in got["audit"]] == [
        ("report.export", "supervisor1", "192.0.2.7", "queues", 2),
        ("report.export", "supervisor1", "192.0.2.7", "agents", 21)]
    assert got["audit"][0][3]["from"] == f"{DAY}T00:00:00+08:00"
