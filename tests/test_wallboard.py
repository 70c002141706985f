"""The wallboard: pure snapshot and charts, the coalescing publisher on a ManualClock (one encoding per update,
shared by every subscriber, at most two updates a second), the source over the replayed tracker, the endpoint."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from ccserver.clock import ManualClock
from ccserver.kpi.views import LiveViews
from ccserver.state.tracker import StateTracker
from ccserver.wallboard import WallboardPublisher, WallboardSource
from ccserver.wallboard.charts import Series, bar_chart, day_slots, figure, hour_labels, line_chart
from ccserver.wallboard.snapshot import build_snapshot, for_queues, sl_status
from ccserver.web.app import build_router
from tests.test_state_support import replay
from tests.web_support import MemoryUsers, call, make_context, router_with_logins

NOW = 1_795_416_923.0


def queue(name: str, callers: list[dict[str, Any]], sl: float | None, **today: Any) -> dict[str, Any]:
    return {"queue": name, "server": "default", "waiting": len(callers),
            "longest_wait": max((c["wait"] for c in callers), default=0.0), "callers": callers, "logged_in": 3,
            "available": 1, "sl_threshold": 20.0,
            "today": {"offered": 10, "answered": 8, "abandoned": 2, "service_level": sl, "asa": 9.5, **today}}


def test_sl_status_against_the_target() -> None:
    assert [sl_status(v, 80.0) for v in (None, 80.0, 95.0, 70.0, 69.9, 0.0)] == [
        "none", "ok", "ok", "warn", "bad", "bad"]


def test_snapshot_tiles_vip_alert_and_agent_grid() -> None:
    queues = [queue("sales", [{"uniqueid": "1.1", "tier": "silver", "wait": 12.0, "caller_name": "Liu"}], 91.0),
              queue("vip", [{"uniqueid": "1.2", "tier": "gold", "wait": 40.0, "caller_name": "张伟 <b>"},
                            {"uniqueid": "1.3", "tier": "diamond", "wait": 5.0, "caller_name": None},
                            {"uniqueid": "1.4", "tier": "bronze", "wait": 50.0, "caller_name": "Chen"}], 60.0),
              queue("hotline", [], None)]
    agents = [{"name": "Wang Fang", "interface": "PJSIP/8001", "state": "talking", "in_state": 30.0,
               "today": {"handled": 4}},
              {"name": "Li Wei", "interface": "PJSIP/8002", "state": "idle", "in_state": 100.0, "today": {}},
              {"name": "Gone", "interface": "PJSIP/8003", "state": "logged_out", "in_state": None, "today": {}}]
    snap = build_snapshot(queues, agents, [{"ticket_id": 7, "stage": "breach"}], now=NOW, target=80.0,
                          vip_tiers=("diamond", "gold"), version=3)
    assert [t["queue"] for t in snap["queues"]] == ["vip", "sales", "hotline"]  # most waiting first
    vip = snap["queues"][0]
    assert (vip["sl_status"], vip["waiting"], vip["longest_wait"]) == ("bad", 3, 50.0)
    assert [c["tier"] for c in vip["callers"]] == ["bronze", "gold", "diamond"]  # longest wait first
    assert vip["oldest_joined"] == NOW - 50.0
    assert [(c["tier"], c["queue"], c["name"]) for c in snap["vip_waiting"]] == [
        ("gold", "vip", "张伟 <b>"), ("diamond", "vip", None)]
    assert snap["queues"][1]["sl_status"] == "ok" and snap["queues"][2]["sl_status"] == "none"
    assert [a["name"] for a in snap["agents"]] == ["Wang Fang", "Li Wei"]  # talking before idle, signed out gone
    assert snap["agents"][0]["since"] == NOW - 30.0
    assert snap["totals"] == {"waiting": 4, "longest_wait": 50.0, "available": 1, "agents": 2, "offered": 30,
                              "answered": 24, "abandoned": 6}
    mine = for_queues(snap, {"sales"})
    assert [t["queue"] for t in mine["queues"]] == ["sales"] and mine["vip_waiting"] == []
    assert mine["totals"]["waiting"] == 1 and snap["totals"]["waiting"] == 4  # the shared one is untouched


def test_charts_are_pure_escaped_svg() -> None:
    day = 1_795_363_200.0  # a local midnight stands for any day start
    rows = [{"interval_start": day + 900 * 36, "offered": 10, "answered": 9, "abandoned": 1, "short_abandoned": 0,
             "answered_in_sl": 8},
            {"interval_start": day + 900 * 36, "offered": 10, "answered": 10, "abandoned": 0, "short_abandoned": 0,
             "answered_in_sl": 10},
            {"interval_start": day + 900 * 40, "offered": 4, "answered": 2, "abandoned": 2, "short_abandoned": 2,
             "answered_in_sl": 2},
            {"interval_start": day - 900, "offered": 99}]  # the day before: not this day's
    slots = day_slots(rows, day)
    assert len(slots) == 96 and slots[35] is None
    assert (slots[36]["offered"], slots[36]["service_level"], slots[36]["abandon_rate"]) == (20, 90.0, 5.0)
    assert slots[40]["service_level"] == 100.0  # 2 / (4 - 2 short abandons)
    values = figure(slots, "service_level")
    svg = line_chart([Series("<script>x</script>", values, "today"), Series("", [50.0] * 96, "yesterday")],
                     hour_labels(), title="SL & co", label_every=8, target=80.0)
    assert svg.startswith("<svg") and "<script>" not in svg and "&lt;script&gt;x&lt;/script&gt;" in svg
    assert "SL &amp; co" in svg and "style=" not in svg
    assert svg.count("<polyline") == 1  # today: two lone points (markers, no line across the gap); yesterday: a line
    assert svg.count("<circle") == 2 + 1  # today's two points and its legend marker
    assert 'stroke-dasharray="8 5"' in svg  # the second series is dashed, not only another colour
    bars = bar_chart(["A&B", "C"], [12.0, None], title="t", unit="%")
    assert "A&amp;B" in bars and ">12%<" in bars and bars.count('class="bar') == 1
    assert "rotate(" not in bars and 'viewBox="0 0 960 300"' in bars  # short labels stay level


def test_bar_chart_slants_labels_too_wide_for_their_bars():
    import re

    # Twenty agents' names (the agents report) are wider than a bar's 44 px: level, they would overprint each other.
    names = [f"Zhang Jianguo 张建国 {i}" for i in range(19)] + ["<b>Liao Jianhua 廖建华 of the Beijing store</b>"]
    svg = bar_chart(names, [float(i) for i in range(20)], title="handled")
    labels = re.findall(r'<text class="axis"[^>]*transform="rotate\(-35 [^"]+\)">([^<]*)</text>', svg)
    assert len(labels) == 20
    assert labels[0] == "Zhang Jianguo 张建国 0"
    long = labels[-1]
    assert long.endswith("…") and long.startswith("&lt;b&gt;Liao Jianhua")  # shortened, and escaped
    assert "<title>&lt;b&gt;Liao Jianhua 廖建华 of the Beijing store&lt;/b&gt;</title>" in svg  # whole, as a tooltip
    height = int(re.search(r'viewBox="0 0 960 (\d+)"', svg).group(1))
    assert height > 300  # room below the plot for the slanted labels; the bars keep their scale
    tallest = max(float(h) for h in re.findall(r'<rect class="bar[^"]*"[^>]* height="([\d.]+)"', svg))
    assert tallest == pytest.approx(300 - 24 - 56)


# -- the publisher ------------------------------------------------------------------------------------------------
class Board:
    def __init__(self, clock: ManualClock, rate: float = 2.0) -> None:
        self.builds = 0
        self.clock = clock
        self.publisher = WallboardPublisher(self.build, clock, max_rate=rate, refresh_seconds=5.0)
        self.sent: list[list[Any]] = [[], [], []]
        for k in range(3):
            self.publisher.subscribe(self.sent[k].append)

    async def build(self, version: int) -> dict[str, Any]:
        self.builds += 1
        return {"version": version, "at": self.clock.time(), "queues": [{"queue": "vip", "name": "王芳"}]}


def test_publisher_coalesces_to_two_updates_a_second_with_one_shared_encoding() -> None:
    async def main() -> tuple[Board, list[float]]:
        clock = ManualClock(NOW)
        board = Board(clock)
        flushed_at: list[float] = []
        board.publisher.subscribe(lambda frame: flushed_at.append(clock.monotonic()))
        for _ in range(300):  # a burst: one update at once ...
            board.publisher.notify()
        await clock.advance(0)
        for _step in range(30):  # ... then events every 0.1 s for 3 s
            board.publisher.notify()
            await clock.advance(0.1)
        await clock.advance(1.0)
        return board, flushed_at

    board, flushed_at = asyncio.run(main())
    assert flushed_at[0] == 0.0
    gaps = [b - a for a, b in zip(flushed_at, flushed_at[1:], strict=False)]
    assert all(g >= 0.5 - 1e-9 for g in gaps), gaps  # never more than two a second
    assert 6 <= len(flushed_at) <= 8  # 3 s of steady changes: about two a second, not 330
    assert board.builds == board.publisher.encodings == len(flushed_at)
    for a, b, c in zip(*board.sent, strict=True):
        assert a is b is c  # every subscriber gets the same frame object ...
        assert a.data is b.data  # ... and the same bytes: one encoding per update
    last = board.sent[0][-1]
    assert json.loads(last.data) == {"version": last.version, "at": last.snapshot["at"],
                                     "queues": [{"queue": "vip", "name": "王芳"}]}
    assert "王芳".encode() in last.data  # UTF-8, not \\u escapes


def test_publisher_refreshes_without_events_and_frame_builds_once() -> None:
    async def main() -> Board:
        clock = ManualClock(NOW)
        board = Board(clock)
        first, second = await asyncio.gather(board.publisher.frame(), board.publisher.frame())
        assert first is second and board.builds == 1
        board.publisher.start()
        await clock.advance(5.0)  # quiet: the periodic refresh still rebuilds
        await clock.advance(5.0)
        board.publisher.stop()
        await clock.advance(20.0)
        return board

    board = asyncio.run(main())
    assert board.builds == 3


def test_with_nobody_subscribed_events_build_nothing_and_a_poll_builds_at_most_twice_a_second() -> None:
    async def main() -> tuple[int, list[int]]:
        clock = ManualClock(NOW)
        builds = 0

        async def build(version: int) -> dict[str, Any]:
            nonlocal builds
            builds += 1
            return {"version": version}

        publisher = WallboardPublisher(build, clock, max_rate=2.0)
        for _ in range(1000):  # the busy hour's events with no wallboard open
            publisher.notify()
            await clock.advance(0.01)
        idle = builds
        versions = []
        for _ in range(4):  # a page polling every 0.2 s while events keep coming
            publisher.notify()
            versions.append((await publisher.frame()).version)
            await clock.advance(0.2)
        return idle, versions

    idle, versions = asyncio.run(main())
    assert idle == 0
    assert versions == [1, 1, 1, 2]  # built on the first poll, then again once 0.5 s had passed


def test_a_failed_update_is_logged_and_the_next_one_goes_out(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> tuple[Board, list[Any]]:
        clock = ManualClock(NOW)
        board = Board(clock)
        real = board.build
        calls = {"n": 0}

        async def flaky(version: int) -> dict[str, Any]:
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("SQL away")
            return await real(version)

        board.publisher._build = flaky  # noqa: SLF001 - the builder that fails once
        board.publisher.notify()
        await clock.advance(0)
        board.publisher.notify()
        await clock.advance(1.0)
        return board, board.sent[0]

    board, sent = asyncio.run(main())
    assert "wallboard update failed" in caplog.text
    assert len(sent) == 1 and board.publisher.current is sent[0]


# -- the source over the replayed tracker ------------------------------------------------------------------------
async def _inline(fn: Any, *a: Any, **k: Any) -> Any:
    return fn(*a, **k)


def test_source_shows_the_recorded_vip_caller_waiting_then_answered() -> None:
    from ccserver.config import load_config

    config = load_config(environ={})
    tracker = StateTracker()
    rest = replay(tracker, "ami-inbound-vip-answered", server="default",
                  stop=lambda m: m.get("Event") == "QueueCallerLeave")
    clock = ManualClock(tracker.now + 3.0)
    source = WallboardSource(LiveViews(None, tracker, None, _inline, config), None, _inline, "Asia/Shanghai",
                             target=80.0, vip_tiers=("diamond", "gold"), clock=clock)
    waiting = asyncio.run(source.build(1))
    tile = next(t for t in waiting["queues"] if t["queue"] == "vip")
    assert tile["waiting"] == 1 and tile["callers"][0]["vip"]
    assert [(c["queue"], c["name"], c["tier"]) for c in waiting["vip_waiting"]] == [("vip", "Zhang Wei", "gold")]
    assert waiting["charts"]["service_level"].startswith("<svg")
    for msg, arrival in rest:  # the caller leaves the queue, answered by the agent
        tracker.handle(msg, arrival)
        if msg.get("Event") == "AgentConnect":
            break
    answered = asyncio.run(source.build(2))
    assert answered["vip_waiting"] == []
    assert next(t for t in answered["queues"] if t["queue"] == "vip")["waiting"] == 0
    assert any(a["state"] == "talking" for a in answered["agents"])


# -- the endpoint -------------------------------------------------------------------------------------------------
def test_api_wallboard_shares_the_frame_with_etag_and_refuses_agents() -> None:
    router, ctx, logins = router_with_logins(("agent8001", "agent", "pw-agent-1"), ("boss", "supervisor", "pw-boss-1"))
    boss = logins["boss"]
    assert call(router, "GET", "/api/wallboard", headers=boss).status == 503  # not running here
    clock = ManualClock(NOW)
    board = Board(clock)
    ctx.wallboard = board.publisher
    first = call(router, "GET", "/api/wallboard", headers=boss)
    assert first.status == 200 and first.json()["version"] == 1 and first.header("ETag") == '"wb-1"'
    assert first.body == board.publisher.current.data  # the shared bytes themselves
    again = call(router, "GET", "/api/wallboard", headers={**boss, "If-None-Match": '"wb-1"'})
    assert again.status == 304 and again.body == b""
    assert board.builds == 1
    assert call(router, "GET", "/api/wallboard",
                headers=logins["agent8001"]).status == 403
    page = call(router, "GET", "/wallboard", headers=boss)
    assert page.status == 200 and b'src="/static/wallboard.js"' in page.body and b"<script>" not in page.body


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_wallboard_page_in_both_languages(lang: str) -> None:
    from agents_ui import Pages

    html = Pages().render("wallboard.html", lang, principal=None, csrf_token="t", target=80.0)
    labels = json.loads(html.split('id="wallboard-labels">', 1)[1].split("</script>", 1)[0])
    assert labels["tier"]["gold"] == ("金牌" if lang == "zh-CN" else "Gold")
    assert labels["sl"]["bad"] == ("低于目标" if lang == "zh-CN" else "Below target")


# -- the fan-out over real websockets ------------------------------------------------------------------------------
def test_fanout_writes_one_prebuilt_frame_that_every_client_reads() -> None:
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve

    from ccserver.wallboard.fanout import SharedFrameFanout

    async def main() -> tuple[list[Any], SharedFrameFanout, int]:
        clock = ManualClock(NOW)
        board = Board(clock)
        connected: list[Any] = []

        async def handler(ws: Any) -> None:
            connected.append(ws)
            await ws.wait_closed()

        fanout = SharedFrameFanout()
        board.publisher.subscribe(lambda frame: fanout.send(connected, frame))
        async with serve(handler, "127.0.0.1", 0) as server:  # compression allowed: one client negotiates it
            port = server.sockets[0].getsockname()[1]
            clients = [await connect(f"ws://127.0.0.1:{port}/", compression=None) for _ in range(2)]
            clients.append(await connect(f"ws://127.0.0.1:{port}/"))  # permessage-deflate: the library's path
            while len(connected) < 3:
                await asyncio.sleep(0.01)
            await board.publisher.flush()
            await board.publisher.flush()
            got = [[await asyncio.wait_for(c.recv(), 5) for _ in range(2)] for c in clients]
            slow = SharedFrameFanout(max_buffer=-1)  # every buffer counts as full: nobody is written to
            skipped = slow.send([ws for ws in connected if not ws.protocol.extensions], board.publisher.current)
            for c in clients:
                await c.close()
        return got, slow, skipped

    got, slow, sent = asyncio.run(main())
    assert [json.loads(m)["version"] for m in got[0]] == [1, 2]
    assert got[0] == got[1] == got[2]  # the same text, by the shared frame or the fallback
    assert "王芳" in got[0][0]
    assert sent == 0 and slow.skipped_slow == 2


def test_a_store_manager_gets_only_their_stores_tiles(sqlite_url: str) -> None:
    from ccserver.db import migrate
    from ccserver.db.engine import make_engine, session_factory
    from ccserver.db.models import DealerGroup, Queue, Store, User

    migrate.upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    sessions = session_factory(engine)
    with sessions.begin() as s:
        s.add(DealerGroup(id=1, name="Group"))
        s.flush()
        s.add(Store(id=1, group_id=1, code="bj", name="BJ", brand="Volvo", city="Beijing"))
        s.flush()
        s.add_all([Queue(name="bj-sales", store_id=1), Queue(name="vip"),
                   User(id=3, username="bj-manager", display_name="BJ", role="supervisor", store_id=1)])
    users = MemoryUsers()
    users.add(2, "boss", "supervisor", "pw-boss-1")
    users.add(3, "bj-manager", "supervisor", "pw-bj-1")
    ctx = make_context(users)
    ctx.session_factory = sessions
    clock = ManualClock(NOW)
    queues = [queue("bj-sales", [{"uniqueid": "1.1", "tier": "gold", "wait": 3.0, "caller_name": "A"}], 90.0),
              queue("vip", [{"uniqueid": "1.2", "tier": "diamond", "wait": 9.0, "caller_name": "B"}], 50.0)]

    async def build(version: int) -> dict[str, Any]:
        return build_snapshot(queues, [], [], now=clock.time(), target=80.0, vip_tiers=("diamond", "gold"),
                              version=version)

    ctx.wallboard = WallboardPublisher(build, clock)
    router = build_router(ctx)
    tokens = {n: call(router, "POST", "/api/login", json_body={"username": n, "password": p}).json()["token"]
              for n, p in (("boss", "pw-boss-1"), ("bj-manager", "pw-bj-1"))}
    boss = call(router, "GET", "/api/wallboard", headers={"Authorization": f"Bearer {tokens['boss']}"})
    mine = call(router, "GET", "/api/wallboard", headers={"Authorization": f"Bearer {tokens['bj-manager']}"})
    assert [t["queue"] for t in boss.json()["queues"]] == ["bj-sales", "vip"]
    assert [t["queue"] for t in mine.json()["queues"]] == ["bj-sales"]
    assert [c["queue"] for c in mine.json()["vip_waiting"]] == ["bj-sales"]
    assert mine.header("ETag") != boss.header("ETag")
    again = call(router, "GET", "/api/wallboard", headers={"Authorization": f"Bearer {tokens['bj-manager']}",
                                                           "If-None-Match": mine.header("ETag") or ""})
    assert again.status == 304
    engine.dispose()
