"""The wallboard and the reports page in a real browser against a real `ccserver run` whose Asterisk is the replay
peer playing the recorded VIP call 20 times slower than it happened: the vip tile changes when the call arrives, the
VIP alert shows while the gold caller waits and goes when an agent answers; zh-CN and en; screenshots of both."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from tests.browser import browser, screenshot, signed_in_page  # noqa: F401 - browser is a fixture
from tests.live_server import LiveServer

# ami-inbound-vip-answered: the caller (Zhang Wei, CC_TIER gold) joins queue vip 0.5 s in, an agent answers 1 s later.
SPEED = 0.05  # joins ~10 s after ccserver connects, answered ~20 s later


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    data = tmp_path_factory.mktemp("wallboard")
    live = LiveServer(data, transcript="ami-inbound-vip-answered", speed=SPEED, retime=True,
                      extra_env={"CCSERVER_RECORDINGS_DIR": str(data / "recordings")})
    live.start()
    yield live
    live.stop()


def board(browser: Any, server: LiveServer, locale: str) -> Any:  # noqa: F811
    context, page, errors = signed_in_page(browser, server.url, "supervisor1", server.demo_password, "/wallboard",
                                           locale=locale, viewport={"width": 1920, "height": 1080})
    page.wait_for_function("() => document.getElementById('wallboard').dataset.version")
    return context, page, errors


def waiting_in(page: Any, queue: str) -> str:
    return str(page.evaluate(
        "(q) => document.querySelector(`.tile[data-queue='${q}'] .waiting .big`)?.textContent ?? 'none'", queue))


def test_tile_changes_when_the_call_arrives_and_the_vip_alert_shows(server: LiveServer, browser: Any) -> None:  # noqa: F811
    zh, zh_page, zh_errors = board(browser, server, "zh-CN")
    en, en_page, en_errors = board(browser, server, "en-US")
    assert zh_page.get_attribute("html", "lang") == "zh-CN" and en_page.get_attribute("html", "lang") == "en"
    # Before the call: nobody waits, no alert.
    assert waiting_in(zh_page, "vip") in ("none", "0"), "the call arrived before the board was open"
    assert zh_page.is_hidden("#vip-alert")
    # The call arrives: the vip tile shows one caller, with the gold badge and a counting wait; the alert shows.
    zh_page.wait_for_function(
        "() => document.querySelector(\".tile[data-queue='vip'] .waiting .big\")?.textContent === '1'",
        timeout=40_000)
    zh_page.wait_for_selector("#vip-alert:not([hidden])", timeout=5_000)
    alert = zh_page.inner_text("#vip-alert")
    assert "VIP 客户等待中" in alert and "金牌" in alert and "Zhang Wei" in alert and "vip" in alert
    tile = zh_page.inner_text(".tile[data-queue='vip']")
    assert "金牌" in tile and "等待" in tile
    assert zh_page.get_attribute("#vip-alert", "role") == "alert"
    en_page.wait_for_selector("#vip-alert:not([hidden])", timeout=5_000)
    assert "VIP waiting" in en_page.inner_text("#vip-alert") and "Gold" in en_page.inner_text("#vip-alert")
    # The wait counts up on the page between snapshots.
    first = zh_page.inner_text("#vip-alert .wait")
    assert first.startswith("0:"), first  # seconds, measured on today's clock
    time.sleep(2.2)
    later = zh_page.inner_text("#vip-alert .wait")
    assert later != first, zh_page.evaluate(
        "() => [Date.now() / 1000, document.querySelector('#vip-alert .wait').dataset.since, "
        "document.getElementById('wallboard').dataset.version]")
    screenshot(zh_page, "wallboard-vip-zh-CN")
    screenshot(en_page, "wallboard-vip-en")
    # Colour is not the only signal: the tile's status has an icon and a word.
    assert en_page.inner_text(".tile[data-queue='vip'] .sl-word") in (
        "On target", "Near target", "Below target", "No calls yet")
    # An agent answers: the alert goes, the tile is back to 0, the agent is talking.
    zh_page.wait_for_selector("#vip-alert[hidden]", state="attached", timeout=40_000)
    zh_page.wait_for_function(
        "() => document.querySelector(\".tile[data-queue='vip'] .waiting .big\")?.textContent === '0'",
        timeout=5_000)
    zh_page.wait_for_selector(".agent.state-talking", timeout=5_000)
    assert "通话中" in zh_page.inner_text(".agent.state-talking")
    screenshot(zh_page, "wallboard-answered-zh-CN")
    assert zh_errors == [] and en_errors == []
    zh.close()
    en.close()


def _seed_intervals(server: LiveServer) -> None:
    """Two days of 15-minute rows for three queues of two stores, as the KPI job writes them."""
    from sqlalchemy import select

    from ccserver.db.engine import make_engine, session_factory
    from ccserver.db.models import KpiQueueInterval, Queue

    engine = make_engine(f"sqlite:///{server.data_dir / 'ccserver.sqlite3'}")
    sessions = session_factory(engine)
    with sessions.begin() as s:
        names = [q for q in s.scalars(select(Queue.name).where(Queue.store_id.is_not(None))).all()][:3] + ["vip"]
        today = date(2026, 11, 30)
        for d in range(2):
            day = today - timedelta(days=d)
            for slot in range(36, 72):
                start = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(minutes=15 * slot - 480)
                for k, q in enumerate(names):
                    offered = 4 + (slot + k) % 5
                    abandoned = (slot + k + d) % 3 == 0
                    answered = offered - int(abandoned)
                    s.add(KpiQueueInterval(server="default", queue=q, interval_start=start, day=day,
                                           sl_threshold=20.0, offered=offered, answered=answered,
                                           abandoned=int(abandoned), short_abandoned=0, unanswered=0,
                                           answered_in_sl=max(0, answered - (slot + k) % 3 - k),
                                           wait_answered=answered * (8.0 + k), wait_abandoned=0.0, max_wait=40.0,
                                           handled=answered, talk=answered * 180.0, wrapup=answered * 10.0,
                                           transfers=0, callbacks=0))
    engine.dispose()


def test_reports_page_charts_and_export(server: LiveServer, browser: Any) -> None:  # noqa: F811
    _seed_intervals(server)
    for locale, lang in (("zh-CN", "zh-CN"), ("en-US", "en")):
        context, page, errors = signed_in_page(browser, server.url, "supervisor1", server.demo_password,
                                               "/reports?from=2026-11-29&to=2026-11-30&interval=day", locale=locale,
                                               viewport={"width": 1400, "height": 1000}, watch=("console",))
        assert page.locator("figure.report-chart svg.chart polyline").count() >= 1
        assert page.locator("#report-table tbody tr").count() >= 8  # 2 days × 4 queues
        href = page.get_attribute("a.export", "href")
        assert href is not None and "format=csv" in href and "from=2026-11-29" in href
        screenshot(page, f"reports-queues-{lang}")
        page.goto(f"{server.url}/reports?view=stores&from=2026-11-29&to=2026-11-30")
        assert page.locator("figure.report-chart svg.chart rect.bar").count() >= 2  # stores side by side
        screenshot(page, f"reports-stores-{lang}")
        assert errors == []
        context.close()


def _seed_console(server: LiveServer) -> int:
    """Agent 8001 signed in from the recorded agent's phone, and one recorded call with its file."""
    import wave

    from sqlalchemy import select

    from ccserver.db.engine import make_engine, session_factory
    from ccserver.db.models import AgentSession, Call, User

    folder = server.data_dir / "recordings" / "2026" / "11" / "30"
    folder.mkdir(parents=True)
    with wave.open(str(folder / "abcd1234abcd1234.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x00" * 8000)  # one second of silence
    engine = make_engine(f"sqlite:///{server.data_dir / 'ccserver.sqlite3'}")
    sessions = session_factory(engine)
    with sessions.begin() as s:
        agent = s.scalars(select(User).where(User.extension == "8001")).one()
        s.add(AgentSession(user_id=agent.id, extension="8001", interface="Local/8001@agent-phones/n",
                           member_name=agent.display_name, server="default", queues={"vip": 0}))
        call = Call(uniqueid="1795000000.9", server="default", queue="vip", caller_raw="13800138000",
                    entered_at=datetime(2026, 11, 30, 2, 0, tzinfo=UTC), outcome="answered",
                    recording_path="2026/11/30/abcd1234abcd1234.wav")
        s.add(call)
        s.flush()
        call_id = call.id
    engine.dispose()
    return int(call_id)


def test_supervisor_console_actions_and_recording_player(server: LiveServer, browser: Any) -> None:  # noqa: F811
    call_id = _seed_console(server)
    for locale, lang in (("zh-CN", "zh-CN"), ("en-US", "en")):
        context, page, errors = signed_in_page(browser, server.url, "supervisor1", server.demo_password,
                                               "/supervisor", locale=locale, viewport={"width": 1400, "height": 900},
                                               watch=("pageerror",))
        row = page.locator("#agents tr[data-extension='8001']")
        assert row.count() == 1
        page.wait_for_function("() => document.querySelector(\"#agents tr[data-extension='8001'] .state\")"
                               ".textContent !== '–'")
        # Listen: refused with a reason the supervisor can act on (not on a call, or no phone of theirs on record)
        row.locator("button[data-spy='listen']").click()
        page.wait_for_function("() => document.getElementById('message').textContent.length > 0")
        assert page.get_attribute("#message", "class") == "message error"
        said = page.inner_text("#message")  # the API's reason, in the page's language
        reasons = ("当前没有通话", "没有登记话机") if lang == "zh-CN" else ("not on a call", "no phone")
        assert any(reason in said for reason in reasons), said
        if row.locator(".state").inner_text() in ("通话中", "Talking"):
            # With a phone given, the Originate goes to Asterisk (this recording has no answer for it: refused)
            page.fill("#phone", "PJSIP/8100")
            page.evaluate("() => { document.getElementById('message').textContent = ''; }")
            row.locator("button[data-spy='barge']").click()
            page.wait_for_function("() => document.getElementById('message').textContent.length > 0")
            assert "Originate refused by Asterisk" in page.inner_text("#message")
        # The recorded call plays from the range-capable download
        audio = page.locator(f"#recordings tr[data-call='{call_id}'] audio")
        audio.wait_for()
        assert audio.get_attribute("src") == f"/api/recordings/{call_id}"
        status = page.evaluate("async (src) => (await fetch(src, {headers: {Range: 'bytes=0-43'}})).status",
                               f"/api/recordings/{call_id}")
        assert status == 206
        page.evaluate("(sel) => document.querySelector(sel).load()", f"#recordings tr[data-call='{call_id}'] audio")
        page.wait_for_function("(sel) => document.querySelector(sel).readyState >= 1 && "
                               "Math.abs(document.querySelector(sel).duration - 1) < 0.01",
                               arg=f"#recordings tr[data-call='{call_id}'] audio", timeout=10_000)
        screenshot(page, f"supervisor-console-{lang}")
        assert errors == []
        context.close()
